//! Beancount syntax (checked by `bean-check`): payee = merchant, narration = Plaid's name, the transaction id as
//! posting metadata, the Plaid account id as `open` metadata.

use std::io::{self, Write};

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::journal::{OPEN_DATE, OPENING, Syntax, one_line};
use crate::domain::Transaction;

pub(crate) struct Beancount;

/// A Beancount string literal.
fn quoted(text: &str) -> String {
    format!("\"{}\"", one_line(text).replace('\\', "\\\\").replace('"', "\\\""))
}

impl Syntax for Beancount {
    fn open(&self, out: &mut dyn Write, name: &str, currency: Option<&str>, plaid_id: Option<&str>) -> io::Result<()> {
        match currency {
            Some(c) => writeln!(out, "{OPEN_DATE} open {name} {c}")?,
            None => writeln!(out, "{OPEN_DATE} open {name}")?,
        }
        if let Some(id) = plaid_id {
            writeln!(out, "  plaid_account_id: {}", quoted(id))?;
        }
        writeln!(out)
    }

    fn needs_open(&self) -> bool {
        true
    }

    fn transaction(
        &self,
        out: &mut dyn Write,
        t: &Transaction,
        flag: char,
        account: &str,
        other: &str,
        amount: Decimal,
        currency: &str,
    ) -> io::Result<()> {
        let f = &t.fields;
        match f.merchant_name.as_deref().filter(|m| !m.trim().is_empty()) {
            Some(payee) => writeln!(out, "{} {flag} {} {}", f.date, quoted(payee), quoted(&f.name))?,
            None => writeln!(out, "{} {flag} {}", f.date, quoted(&f.name))?,
        }
        writeln!(out, "  {account}  {amount} {currency}")?;
        writeln!(out, "    plaid_transaction_id: {}", quoted(t.transaction_id.as_str()))?;
        writeln!(out, "  {other}  {} {currency}", -amount)?;
        writeln!(out)
    }

    fn opening(
        &self,
        out: &mut dyn Write,
        date: NaiveDate,
        account: &str,
        amount: Decimal,
        currency: &str,
    ) -> io::Result<()> {
        writeln!(out, "{date} * \"Opening balance\"\n  {account}  {amount} {currency}\n  {OPENING}\n")
    }

    fn balance(
        &self,
        out: &mut dyn Write,
        date: NaiveDate,
        account: &str,
        amount: Decimal,
        currency: &str,
    ) -> io::Result<()> {
        writeln!(out, "{date} balance {account}  {amount} {currency}\n")
    }
}
