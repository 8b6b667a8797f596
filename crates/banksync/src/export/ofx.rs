//! OFX 2.2 (XML), checked with `ofxtools`: one statement per account, bank accounts under BANKMSGSRSV1 and credit
//! cards under CREDITCARDMSGSRSV1. FITID = Plaid's transaction_id; TRNAMT is money into the account (the negated
//! Plaid amount), so a card purchase is negative; LEDGERBAL is the current balance (negated for cards, where Plaid's
//! balance is what is owed). OFX has no pending state, so pending transactions are left out whatever `--pending`
//! says, and accounts in a non-ISO currency (a crypto wallet) are skipped: CURDEF must be ISO 4217.

use std::io::Write;

use chrono::Utc;

use super::{Context, ExportAccount, ExportError, ExportOptions, ExportSummary, Pending, for_each_transaction};
use crate::domain::UserId;
use crate::store::Store;

fn xml(text: &str, max: usize) -> String {
    let text: String = super::journal::one_line(text).chars().take(max).collect();
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn acct_type(a: &ExportAccount) -> &'static str {
    match a.account.subtype.as_deref() {
        Some("savings") | Some("cd") | Some("hsa") => "SAVINGS",
        Some("money market") => "MONEYMRKT",
        _ => "CHECKING",
    }
}

/// ACCTID is at most 22 characters in OFX; Plaid's account ids are longer, so their first 22 (they are random).
fn acct_id(a: &ExportAccount) -> String {
    xml(a.account.account_id.as_str(), 22)
}

pub(crate) async fn write(
    store: &Store,
    user: &UserId,
    opts: &ExportOptions,
    ctx: &Context,
    out: &mut (dyn Write + Send),
) -> Result<ExportSummary, ExportError> {
    let opts = ExportOptions { pending: Pending::Exclude, ..opts.clone() };
    let mut summary = ExportSummary::default();
    let now = Utc::now().format("%Y%m%d%H%M%S").to_string();
    write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n\
         <?OFX OFXHEADER=\"200\" VERSION=\"220\" SECURITY=\"NONE\" OLDFILEUID=\"NONE\" NEWFILEUID=\"NONE\"?>\n\
         <OFX>\n<SIGNONMSGSRSV1><SONRS><STATUS><CODE>0</CODE><SEVERITY>INFO</SEVERITY></STATUS>\
         <DTSERVER>{now}</DTSERVER><LANGUAGE>ENG</LANGUAGE></SONRS></SIGNONMSGSRSV1>\n"
    )?;
    let exported: Vec<&ExportAccount> = ctx
        .accounts
        .iter()
        .filter(|a| a.account.balances.currency_is_official || a.account.balances.currency.is_none())
        .collect();
    for cards in [false, true] {
        let group: Vec<&&ExportAccount> = exported.iter().filter(|a| a.liability == cards).collect();
        if group.is_empty() {
            continue;
        }
        out.write_all(if cards { b"<CREDITCARDMSGSRSV1>\n" } else { b"<BANKMSGSRSV1>\n" })?;
        for (n, a) in group.into_iter().enumerate() {
            let (trnrs, stmtrs) = if cards { ("CCSTMTTRNRS", "CCSTMTRS") } else { ("STMTTRNRS", "STMTRS") };
            write!(
                out,
                "<{trnrs}><TRNUID>{n}</TRNUID><STATUS><CODE>0</CODE><SEVERITY>INFO</SEVERITY></STATUS><{stmtrs}>\
                 <CURDEF>{}</CURDEF>",
                a.currency
            )?;
            if cards {
                write!(out, "<CCACCTFROM><ACCTID>{}</ACCTID></CCACCTFROM>", acct_id(a))?;
            } else {
                let bank: String = a.institution.chars().filter(char::is_ascii_alphanumeric).take(9).collect();
                write!(
                    out,
                    "<BANKACCTFROM><BANKID>{}</BANKID><ACCTID>{}</ACCTID><ACCTTYPE>{}</ACCTTYPE></BANKACCTFROM>",
                    if bank.is_empty() { "0".to_owned() } else { bank },
                    acct_id(a),
                    acct_type(a)
                )?;
            }
            let start = opts.start.map_or_else(|| "19700101".to_owned(), |d| d.format("%Y%m%d").to_string());
            let end = opts.end.map_or_else(|| now.clone(), |d| d.format("%Y%m%d").to_string());
            write!(out, "\n<BANKTRANLIST><DTSTART>{start}</DTSTART><DTEND>{end}</DTEND>\n")?;
            for_each_transaction(store, user, &opts, Some(&a.account.account_id), |t| {
                let f = &t.fields;
                let amount = -f.amount;
                let kind = if amount < rust_decimal::Decimal::ZERO { "DEBIT" } else { "CREDIT" };
                let name = f.merchant_name.as_deref().filter(|m| !m.trim().is_empty()).unwrap_or(&f.name);
                writeln!(
                    out,
                    "<STMTTRN><TRNTYPE>{kind}</TRNTYPE><DTPOSTED>{}</DTPOSTED><TRNAMT>{amount}</TRNAMT>\
                     <FITID>{}</FITID><NAME>{}</NAME><MEMO>{}</MEMO></STMTTRN>",
                    f.date.format("%Y%m%d"),
                    xml(t.transaction_id.as_str(), 255),
                    xml(name, 32),
                    xml(&f.name, 255)
                )?;
                summary.transactions += 1;
                Ok(())
            })
            .await?;
            out.write_all(b"</BANKTRANLIST>")?;
            if let Some(current) = a.account.balances.current {
                let balance = if a.liability { -current } else { current };
                let as_of =
                    a.account.balance_as_of.map_or_else(|| now.clone(), |d| d.format("%Y%m%d%H%M%S").to_string());
                write!(out, "<LEDGERBAL><BALAMT>{balance}</BALAMT><DTASOF>{as_of}</DTASOF></LEDGERBAL>")?;
                summary.balance_assertions += 1;
            }
            writeln!(out, "</{stmtrs}></{trnrs}>")?;
            summary.accounts += 1;
        }
        out.write_all(if cards { b"</CREDITCARDMSGSRSV1>\n" } else { b"</BANKMSGSRSV1>\n" })?;
    }
    out.write_all(b"</OFX>\n")?;
    Ok(summary)
}
