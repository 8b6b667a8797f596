//! CSV (RFC 4180): a header row, CRLF line ends, fields quoted when they hold a comma, quote or line break, exact
//! decimal amounts in Plaid's sign (positive = money out, as the API and JSON export), one currency column.

use std::io::Write;

use super::append::Existing;
use super::{Context, ExportError, ExportOptions, ExportSummary, for_each_transaction};
use crate::domain::UserId;
use crate::store::Store;

pub(crate) const HEADER: [&str; 14] = [
    "date",
    "transaction_id",
    "account_id",
    "account",
    "amount",
    "currency",
    "payee",
    "name",
    "category",
    "category_detailed",
    "user_category",
    "pending",
    "authorized_date",
    "note",
];

pub(crate) async fn write(
    store: &Store,
    user: &UserId,
    opts: &ExportOptions,
    ctx: &Context,
    existing: &Existing,
    out: &mut (dyn Write + Send),
) -> Result<ExportSummary, ExportError> {
    let mut summary = ExportSummary { accounts: ctx.accounts.len() as u64, ..ExportSummary::default() };
    if !existing.has_header {
        record(out, HEADER.iter().copied())?;
    }
    for_each_transaction(store, user, opts, None, |t| {
        if existing.check(t) {
            summary.already_present += 1;
            return Ok(());
        }
        let f = &t.fields;
        let account = ctx.get(&f.account_id).map(|a| a.account.name.as_str()).unwrap_or("");
        let (date, amount, authorized) =
            (f.date.to_string(), f.amount.to_string(), f.authorized_date.map(|d| d.to_string()).unwrap_or_default());
        record(
            out,
            [
                date.as_str(),
                t.transaction_id.as_str(),
                f.account_id.as_str(),
                account,
                amount.as_str(),
                f.currency.as_deref().unwrap_or(""),
                f.merchant_name.as_deref().unwrap_or(""),
                f.name.as_str(),
                f.pfc_primary.as_deref().unwrap_or(""),
                f.pfc_detailed.as_deref().unwrap_or(""),
                t.user_category.as_deref().unwrap_or(""),
                if f.pending { "true" } else { "false" },
                authorized.as_str(),
                t.user_note.as_deref().unwrap_or(""),
            ],
        )?;
        summary.transactions += 1;
        Ok(())
    })
    .await?;
    Ok(summary)
}

fn record<'a>(out: &mut dyn Write, fields: impl IntoIterator<Item = &'a str>) -> std::io::Result<()> {
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        if field.contains([',', '"', '\r', '\n']) {
            write!(out, "\"{}\"", field.replace('"', "\"\""))?;
        } else {
            out.write_all(field.as_bytes())?;
        }
    }
    out.write_all(b"\r\n")
}

/// Parses RFC 4180 text into records (quoted fields may hold commas, quotes and line breaks).
pub(crate) fn parse(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_round_trips() {
        let mut out = Vec::new();
        record(&mut out, ["plain", "a,b", "say \"hi\"", "two\nlines", ""]).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\r\n");
        assert_eq!(parse(&text), vec![vec!["plain", "a,b", "say \"hi\"", "two\nlines", ""]]);
    }
}
