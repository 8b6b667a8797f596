//! Ledger/hledger journal syntax (checked by `hledger check`): `payee | note` descriptions, the transaction id as a
//! `plaid_transaction_id:` tag, balance assertions as zero postings with `= balance`.

use std::io::{self, Write};

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::journal::{OPENING, Syntax, one_line};
use crate::domain::Transaction;

pub(crate) struct Ledger;

/// Description text: `;` would start a comment and `|` split payee from note.
fn text(s: &str) -> String {
    one_line(s).replace(';', ",").replace('|', "/").trim().to_owned()
}

impl Syntax for Ledger {
    fn open(&self, out: &mut dyn Write, name: &str, _: Option<&str>, plaid_id: Option<&str>) -> io::Result<()> {
        match plaid_id {
            Some(id) => writeln!(out, "account {name}  ; plaid_account_id:{id}"),
            None => writeln!(out, "account {name}"),
        }
    }

    fn needs_open(&self) -> bool {
        false
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
        let description = match f.merchant_name.as_deref().filter(|m| !m.trim().is_empty()) {
            Some(payee) => format!("{} | {}", text(payee), text(&f.name)),
            None => text(&f.name),
        };
        writeln!(out, "\n{} {flag} {description}  ; plaid_transaction_id:{}", f.date, t.transaction_id.as_str())?;
        writeln!(out, "    {account}  {amount} {currency}")?;
        writeln!(out, "    {other}  {} {currency}", -amount)
    }

    fn opening(
        &self,
        out: &mut dyn Write,
        date: NaiveDate,
        account: &str,
        amount: Decimal,
        currency: &str,
    ) -> io::Result<()> {
        writeln!(out, "\n{date} * Opening balance\n    {account}  {amount} {currency}\n    {OPENING}")
    }

    fn balance(
        &self,
        out: &mut dyn Write,
        date: NaiveDate,
        account: &str,
        amount: Decimal,
        currency: &str,
    ) -> io::Result<()> {
        writeln!(out, "\n{date} * Balance assertion\n    {account}  0 {currency} = {amount} {currency}")
    }
}
