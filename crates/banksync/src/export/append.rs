//! `--append FILE`: adds to a Beancount, Ledger, CSV or JSON-lines file only the transactions it does not hold yet
//! (matched on Plaid's transaction_id), never rewriting what is there, so a nightly cron never duplicates and the
//! user's edits above stay. Transactions in the file that Plaid has since modified (date or amount) or removed are
//! listed on the report, not rewritten. Balance assertions are appended only for dates after the file's newest
//! entry, so the file keeps passing its validator; an account already opened in the file gets no second `open` or
//! opening balance.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::{Context, ExportError, ExportOptions, ExportSummary, Format, check, run};
use crate::domain::{Transaction, UserId};
use crate::store::Store;

/// What an existing file holds (empty for a plain export).
#[derive(Default)]
pub(crate) struct Existing {
    /// transaction_id → (date, Plaid-sign amount) as the file has them.
    ids: HashMap<String, (Option<NaiveDate>, Option<Decimal>)>,
    /// Journal accounts with an `open` / `account` directive.
    pub opened: HashSet<String>,
    /// The newest dated entry.
    pub max_date: Option<NaiveDate>,
    /// CSV: the file already starts with a header.
    pub has_header: bool,
    seen: Mutex<HashSet<String>>,
    changes: Mutex<Vec<String>>,
}

impl Existing {
    /// True when the file already has `t`; records what Plaid changed since.
    pub(crate) fn check(&self, t: &Transaction) -> bool {
        let Some((date, amount)) = self.ids.get(t.transaction_id.as_str()) else { return false };
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).insert(t.transaction_id.as_str().to_owned());
        let mut what = Vec::new();
        if let Some(date) = date.filter(|d| *d != t.fields.date) {
            what.push(format!("date {date} -> {}", t.fields.date));
        }
        if let Some(amount) = amount.filter(|a| *a != t.fields.amount) {
            what.push(format!("amount {amount} -> {} (Plaid's sign)", t.fields.amount));
        }
        if !what.is_empty() {
            let line =
                format!("modified at Plaid: {} ({}): {}", t.transaction_id.as_str(), t.fields.name, what.join(", "));
            self.changes.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
        true
    }

    fn record(&mut self, id: &str, date: Option<NaiveDate>, amount: Option<Decimal>) {
        self.ids.insert(id.to_owned(), (date, amount));
    }

    fn date(&mut self, date: NaiveDate) -> NaiveDate {
        self.max_date = Some(self.max_date.map_or(date, |m| m.max(date)));
        date
    }
}

/// Appends what `path` is missing (creating the file when it does not exist) and lists on `report` the
/// transactions in it that Plaid changed or removed.
pub async fn append(
    store: &Store,
    user: &UserId,
    opts: &ExportOptions,
    path: &Path,
    report: &mut dyn Write,
) -> Result<ExportSummary, ExportError> {
    check(opts)?;
    if opts.format == Format::Ofx {
        return Err(ExportError::BadInput("--append works with beancount, ledger, csv and json, not ofx".into()));
    }
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(ExportError::BadInput(format!("cannot read {}: {e}", path.display()))),
    };
    let existing = parse(opts.format, &text)?;
    let ctx = Context::load(store, user, opts).await?;
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    if !text.is_empty() && !text.ends_with('\n') {
        file.write_all(b"\n")?;
    }
    let mut summary = run(store, user, opts, &ctx, &existing, &mut file).await?;
    file.sync_all()?;
    let changes = existing.changes.into_inner().unwrap_or_else(|e| e.into_inner());
    for line in &changes {
        writeln!(report, "{line}")?;
    }
    let seen = existing.seen.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut removed = 0;
    // Outside the filters a missing id says nothing; only a whole export can tell removals.
    if opts.account.is_none() && opts.item.is_none() {
        let mut gone: Vec<_> = existing
            .ids
            .iter()
            .filter(|(id, (date, _))| {
                !seen.contains(*id)
                    && date.is_none_or(|d| opts.start.is_none_or(|s| d >= s) && opts.end.is_none_or(|e| d <= e))
            })
            .collect();
        gone.sort();
        for (id, (date, _)) in gone {
            let date = date.map(|d| d.to_string()).unwrap_or_default();
            writeln!(report, "removed at Plaid (or now pending/excluded): {id} {date}")?;
            removed += 1;
        }
    }
    summary.changed = changes.len() as u64 + removed;
    Ok(summary)
}

fn parse(format: Format, text: &str) -> Result<Existing, ExportError> {
    let mut e = Existing::default();
    match format {
        Format::Beancount => parse_beancount(text, &mut e),
        Format::Ledger => parse_ledger(text, &mut e),
        Format::Csv => parse_csv(text, &mut e)?,
        Format::Json => parse_json(text, &mut e)?,
        Format::Ofx => {}
    }
    Ok(e)
}

fn leading_date(line: &str) -> Option<NaiveDate> {
    let head = line.get(..10)?;
    NaiveDate::parse_from_str(head, "%Y-%m-%d").ok()
}

/// The amount of a posting line `  Account  12.34 USD`.
fn posting_amount(line: &str) -> Option<Decimal> {
    let mut words = line.split_whitespace();
    words.next()?;
    words.next()?.parse().ok()
}

fn parse_beancount(text: &str, e: &mut Existing) {
    let (mut date, mut amount) = (None, None);
    for line in text.lines() {
        if let Some(d) = leading_date(line) {
            date = Some(e.date(d));
            let mut words = line[10..].split_whitespace();
            if words.next() == Some("open")
                && let Some(name) = words.next()
            {
                e.opened.insert(name.to_owned());
            }
        } else if let Some(rest) = line.trim_start().strip_prefix("plaid_transaction_id:") {
            let id = rest.trim().trim_matches('"');
            // The metadata follows the account posting, whose amount is the negated Plaid amount.
            e.record(id, date, amount.map(|a: Decimal| -a));
        } else if line.starts_with([' ', '\t']) && !line.trim().is_empty() {
            amount = posting_amount(line);
        }
    }
}

fn parse_ledger(text: &str, e: &mut Existing) {
    let mut current: Option<(String, Option<NaiveDate>)> = None;
    for line in text.lines() {
        if let Some(d) = leading_date(line) {
            let date = Some(e.date(d));
            current = line
                .split_once("plaid_transaction_id:")
                .map(|(_, rest)| rest.split([',', ' ']).next().unwrap_or("").to_owned())
                .map(|id| (id, date));
            if let Some((id, date)) = &current {
                e.record(id, *date, None);
            }
        } else if let Some(name) = line.strip_prefix("account ") {
            let name = name.split("  ").next().unwrap_or("").split(';').next().unwrap_or("").trim();
            e.opened.insert(name.to_owned());
        } else if line.starts_with([' ', '\t'])
            && let Some((id, date)) = current.take()
        {
            // The first posting is the account's: the negated Plaid amount.
            e.record(&id, date, posting_amount(line).map(|a| -a));
        }
    }
}

fn parse_csv(text: &str, e: &mut Existing) -> Result<(), ExportError> {
    let records = super::csv::parse(text);
    let Some(header) = records.first() else { return Ok(()) };
    let col = |name: &str| header.iter().position(|h| h == name);
    let Some(id_col) = col("transaction_id") else {
        return Err(ExportError::BadInput("the CSV file has no transaction_id column: not a banksync export".into()));
    };
    e.has_header = true;
    let (date_col, amount_col) = (col("date"), col("amount"));
    for r in &records[1..] {
        let Some(id) = r.get(id_col).filter(|id| !id.is_empty()) else { continue };
        let date = date_col.and_then(|c| r.get(c)).and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
        if let Some(d) = date {
            e.date(d);
        }
        let amount = amount_col.and_then(|c| r.get(c)).and_then(|a| a.parse().ok());
        e.record(id, date, amount);
    }
    Ok(())
}

fn parse_json(text: &str, e: &mut Existing) -> Result<(), ExportError> {
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|err| ExportError::BadInput(format!("line {} is not JSON: {err}", n + 1)))?;
        let Some(id) = v.get("transaction_id").and_then(|i| i.as_str()) else { continue };
        let date = v.get("date").and_then(|d| d.as_str()).and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
        let amount = v.get("amount").and_then(|a| a.as_str()).and_then(|a| a.parse().ok());
        e.record(id, date, amount);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journals_give_back_ids_dates_plaid_amounts_and_opened_accounts() {
        let bean = "1970-01-01 open Assets:Bank:Checking-0000 USD\n  plaid_account_id: \"acc\"\n\n\
                    2025-03-04 * \"Shop\" \"SHOP 123\"\n  Assets:Bank:Checking-0000  -12.50 USD\n    \
                    plaid_transaction_id: \"tx1\"\n  Expenses:Shops  12.50 USD\n\n\
                    2025-03-06 balance Assets:Bank:Checking-0000  100 USD\n";
        let e = parse(Format::Beancount, bean).unwrap();
        assert_eq!(e.ids["tx1"], (Some("2025-03-04".parse().unwrap()), Some(Decimal::new(1250, 2))));
        assert!(e.opened.contains("Assets:Bank:Checking-0000"));
        assert_eq!(e.max_date, Some("2025-03-06".parse().unwrap()));

        let ledger = "account Assets:Bank:Checking-0000  ; plaid_account_id:acc\n\n\
                      2025-03-04 ! Shop | SHOP 123  ; plaid_transaction_id:tx2\n    \
                      Assets:Bank:Checking-0000  7 USD\n    Income:Refunds  -7 USD\n";
        let e = parse(Format::Ledger, ledger).unwrap();
        assert_eq!(e.ids["tx2"], (Some("2025-03-04".parse().unwrap()), Some(Decimal::new(-7, 0))));
        assert!(e.opened.contains("Assets:Bank:Checking-0000"));

        assert!(parse(Format::Csv, "a,b\r\n1,2\r\n").is_err(), "a CSV that is not ours is refused");
        assert!(parse(Format::Json, "{not json\n").is_err());
    }
}
