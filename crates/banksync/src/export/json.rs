//! JSON lines: one transaction per line exactly as the API serves it (`http::views::TransactionView`).

use std::io::Write;

use super::append::Existing;
use super::{Context, ExportError, ExportOptions, ExportSummary, for_each_transaction};
use crate::domain::UserId;
use crate::http::views::TransactionView;
use crate::store::Store;

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
        serde_json::to_writer(&mut *out, &TransactionView::of(t)).map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
        summary.transactions += 1;
        Ok(())
    })
    .await?;
    Ok(summary)
}
