//! `banksync export`: the user's transactions as CSV, JSON lines, OFX, Beancount or Ledger (`crate::export`), to
//! stdout, a new file, or appended to a journal that already holds earlier exports.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use super::data::{UserArgs, open};
use crate::export::{ExportOptions, ExportSummary, Format, Pending};

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// csv | json (JSON lines, the API's view) | ofx | beancount | ledger (hledger accepts it too).
    #[arg(long, value_name = "FORMAT")]
    format: String,
    /// From this date on (YYYY-MM-DD, inclusive).
    #[arg(long, value_name = "DATE")]
    start: Option<chrono::NaiveDate>,
    /// Up to this date (YYYY-MM-DD, inclusive).
    #[arg(long, value_name = "DATE")]
    end: Option<chrono::NaiveDate>,
    /// Only this account (Plaid's account_id, see `banksync accounts`).
    #[arg(long, value_name = "ACCOUNT_ID")]
    account: Option<String>,
    /// Only this Item (Plaid's item_id, see `banksync items`).
    #[arg(long, value_name = "ITEM_ID")]
    item: Option<String>,
    /// Pending transactions: exclude (default), flag (beancount's `!`), or include.
    #[arg(long, value_name = "MODE", default_value = "exclude")]
    pending: String,
    /// Write to this new file instead of standard output (refuses to overwrite).
    #[arg(long, short = 'o', value_name = "FILE", conflicts_with = "append")]
    output: Option<PathBuf>,
    /// Add only what FILE (an earlier csv, beancount or ledger export) does not hold yet; what Plaid changed or
    /// removed since is listed on standard error, never rewritten. Safe to run from cron.
    #[arg(long, value_name = "FILE")]
    append: Option<PathBuf>,
    #[command(flatten)]
    target: UserArgs,
}

pub async fn run(args: ExportArgs) -> anyhow::Result<()> {
    let format: Format = args.format.parse().map_err(|e| anyhow::anyhow!("--format: {e}"))?;
    let pending: Pending = args.pending.parse().map_err(|e| anyhow::anyhow!("--pending: {e}"))?;
    let opts = ExportOptions {
        format,
        start: args.start,
        end: args.end,
        account: args.account.map(Into::into),
        item: args.item.map(Into::into),
        pending,
    };
    let (_, store, user) = open(args.target).await?;
    let summary = match (&args.append, &args.output) {
        (Some(path), _) => {
            let mut report = std::io::stderr();
            crate::export::append(&store, &user.id, &opts, path, &mut report).await?
        }
        (None, Some(path)) => {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut out = std::io::BufWriter::new(file);
            let summary = crate::export::export(&store, &user.id, &opts, &mut out).await?;
            out.flush().with_context(|| format!("cannot write {}", path.display()))?;
            summary
        }
        (None, None) => {
            let mut out = std::io::BufWriter::new(std::io::stdout());
            let summary = crate::export::export(&store, &user.id, &opts, &mut out).await?;
            out.flush().context("cannot write to standard output")?;
            summary
        }
    };
    report(&summary, args.append.is_some());
    Ok(())
}

/// What was written, on standard error (standard output may be the export itself).
fn report(s: &ExportSummary, appended: bool) {
    let mut line = format!("{} transactions from {} accounts", s.transactions, s.accounts);
    if s.balance_assertions > 0 {
        line.push_str(&format!(", {} balance assertions", s.balance_assertions));
    }
    if appended {
        line.push_str(&format!("; {} already in the file", s.already_present));
        if s.changed > 0 {
            line.push_str(&format!("; {} changed at Plaid since they were exported (listed above)", s.changed));
        }
    }
    eprintln!("{line}");
}
