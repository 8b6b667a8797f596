//! JSON lines: one transaction per line, in the API's shape (`http::views::TransactionView`). The view is spelled
//! again here because services may not name `http` (scripts/module-graph.py); tests/export.rs checks that each line
//! equals the API's serialization, so the two cannot drift.

use std::io::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::append::Existing;
use super::{Context, ExportError, ExportOptions, ExportSummary, for_each_transaction};
use crate::domain::{PlaidItemId, Transaction, TransactionFields, TransactionId, UserId};
use crate::store::Store;

#[derive(Serialize)]
struct Line<'a> {
    transaction_id: &'a TransactionId,
    item_id: &'a PlaidItemId,
    #[serde(flatten)]
    fields: &'a TransactionFields,
    display_name: &'a str,
    user_note: &'a Option<String>,
    user_category: &'a Option<String>,
    updated_at: &'a DateTime<Utc>,
}

impl<'a> Line<'a> {
    fn of(t: &'a Transaction) -> Self {
        Line {
            transaction_id: &t.transaction_id,
            item_id: &t.item_id,
            fields: &t.fields,
            display_name: &t.display_name,
            user_note: &t.user_note,
            user_category: &t.user_category,
            updated_at: &t.updated_at,
        }
    }
}

pub(crate) async fn write(
    store: &Store,
    user: &UserId,
    opts: &ExportOptions,
    ctx: &Context,
    existing: &Existing,
    out: &mut (dyn Write + Send),
) -> Result<ExportSummary, ExportError> {
    let mut summary = ExportSummary { accounts: ctx.accounts.len() as u64, ..ExportSummary::default() };
    for_each_transaction(store, user, opts, None, |t| {
        if existing.check(t) {
            summary.already_present += 1;
            return Ok(());
        }
        serde_json::to_writer(&mut *out, &Line::of(t)).map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
        summary.transactions += 1;
        Ok(())
    })
    .await?;
    Ok(summary)
}
