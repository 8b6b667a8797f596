//! The double-entry journals (Beancount and Ledger/hledger) share their logic here; `beancount.rs` and `ledger.rs`
//! only spell the directives.
//!
//! Signs: Plaid's amount is money out of the account, so the account posting is always `-amount` and the category
//! posting `+amount`; for a credit card (a liability) that makes a purchase raise what is owed, as it should.
//! Balances: the account's last known `current` balance (negated for liabilities, where it is the amount owed) is
//! asserted the day after its as-of date. Plaid's history does not start at zero, so an opening-balance transaction
//! (against `Equity:Opening-Balances`) the day before the account's oldest exported transaction makes the
//! assertion hold; it is written once, when the account is first opened in the file. Directives that depend on the
//! whole stream (opening balances, assertions, Beancount's category `open`s) go at the end, which both tools allow.

use std::collections::{BTreeSet, HashMap};
use std::io::{self, Write};

use chrono::{Days, NaiveDate};
use rust_decimal::Decimal;

use super::append::Existing;
use super::{Context, ExportAccount, ExportError, ExportOptions, ExportSummary, Pending, for_each_transaction, names};
use crate::domain::{Transaction, UserId};
use crate::store::Store;

pub(crate) const OPENING: &str = "Equity:Opening-Balances";
/// The date every account is opened on: before any history Plaid can return.
pub(crate) const OPEN_DATE: &str = "1970-01-01";

/// How one journal format spells each directive.
pub(crate) trait Syntax {
    fn open(&self, out: &mut dyn Write, name: &str, currency: Option<&str>, plaid_id: Option<&str>) -> io::Result<()>;
    /// Whether category accounts need an `open` before use.
    fn needs_open(&self) -> bool;
    #[allow(clippy::too_many_arguments)]
    fn transaction(
        &self,
        out: &mut dyn Write,
        t: &Transaction,
        flag: char,
        account: &str,
        other: &str,
        amount: Decimal,
        currency: &str,
    ) -> io::Result<()>;
    fn opening(
        &self,
        out: &mut dyn Write,
        date: NaiveDate,
        account: &str,
        amount: Decimal,
        currency: &str,
    ) -> io::Result<()>;
    fn balance(
        &self,
        out: &mut dyn Write,
        date: NaiveDate,
        account: &str,
        amount: Decimal,
        currency: &str,
    ) -> io::Result<()>;
}

#[derive(Default)]
struct AccountTotals {
    /// Σ of the account postings of exported posted transactions dated before the assertion date.
    posted: Decimal,
    /// The same for pending ones (when they are exported).
    pending: Decimal,
    oldest: Option<NaiveDate>,
}

pub(crate) async fn write(
    syntax: &dyn Syntax,
    store: &Store,
    user: &UserId,
    opts: &ExportOptions,
    ctx: &Context,
    existing: &Existing,
    out: &mut (dyn Write + Send),
) -> Result<ExportSummary, ExportError> {
    let mut summary = ExportSummary::default();
    let mut new_accounts = Vec::new();
    for a in &ctx.accounts {
        if !existing.opened.contains(&a.journal_name) {
            syntax.open(out, &a.journal_name, Some(&a.currency), Some(a.account.account_id.as_str()))?;
            new_accounts.push(a.journal_name.clone());
        }
        summary.accounts += 1;
    }
    let assert_dates: HashMap<&str, NaiveDate> =
        ctx.accounts.iter().filter_map(|a| assertion_date(a, opts).map(|d| (a.journal_name.as_str(), d))).collect();
    let mut totals: HashMap<String, AccountTotals> = HashMap::new();
    let mut categories = BTreeSet::new();
    for_each_transaction(store, user, opts, None, |t| {
        let Some(account) = ctx.get(&t.fields.account_id) else { return Ok(()) };
        let posting = -t.fields.amount;
        let entry = totals.entry(account.journal_name.clone()).or_default();
        if assert_dates.get(account.journal_name.as_str()).is_some_and(|d| t.fields.date < *d) {
            if t.fields.pending {
                entry.pending += posting;
            } else {
                entry.posted += posting;
            }
        }
        entry.oldest = Some(entry.oldest.map_or(t.fields.date, |o| o.min(t.fields.date)));
        if existing.check(t) {
            summary.already_present += 1;
            return Ok(());
        }
        let flag = if t.fields.pending && opts.pending == Pending::Flag { '!' } else { '*' };
        let other = names::category_account(t);
        let currency = names::commodity(t.fields.currency.as_deref().or(Some(account.currency.as_str())));
        syntax.transaction(out, t, flag, &account.journal_name, &other, posting, &currency)?;
        if syntax.needs_open() && !existing.opened.contains(&other) {
            categories.insert(other);
        }
        summary.transactions += 1;
        Ok(())
    })
    .await?;

    if syntax.needs_open() {
        if !new_accounts.is_empty() && !existing.opened.contains(OPENING) {
            categories.insert(OPENING.to_owned());
        }
        for name in &categories {
            syntax.open(out, name, None, None)?;
        }
    }
    for a in &ctx.accounts {
        let Some(&date) = assert_dates.get(a.journal_name.as_str()) else { continue };
        let base = base_balance(a);
        let t = totals.remove(&a.journal_name).unwrap_or_default();
        if new_accounts.contains(&a.journal_name) {
            let day_before = t.oldest.unwrap_or(date).pred_opt().unwrap_or(date);
            syntax.opening(out, day_before, &a.journal_name, base - t.posted, &a.currency)?;
        }
        if existing.max_date.is_none_or(|newest| date > newest) {
            syntax.balance(out, date, &a.journal_name, base + t.pending, &a.currency)?;
            summary.balance_assertions += 1;
        }
    }
    Ok(summary)
}

/// The balance the ledger should show for the account: what the asset holds, or minus what is owed.
fn base_balance(a: &ExportAccount) -> Decimal {
    let current = a.account.balances.current.unwrap_or_default();
    if a.liability { -current } else { current }
}

/// The day after the balance's as-of date, when there is a balance and the export reaches that date.
fn assertion_date(a: &ExportAccount, opts: &ExportOptions) -> Option<NaiveDate> {
    a.account.balances.current?;
    let as_of = a.account.balance_as_of?.date_naive();
    if opts.end.is_some_and(|end| end < as_of) {
        return None;
    }
    as_of.checked_add_days(Days::new(1))
}

/// Text for a quoted or free-form field: one line.
pub(crate) fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}
