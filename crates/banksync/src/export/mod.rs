//! `banksync export`: the user's transactions as CSV, JSON lines, OFX 2.x, Beancount or a Ledger/hledger journal,
//! written to any `Write` (the CLI passes stdout or a file), plus `--append` to an existing file (`append.rs`).
//!
//! Transactions are streamed oldest first, page by page (`Store::transactions_oldest_first`, whose keyset cursor keeps
//! memory bounded by a page and which hides Items whose initial sync is still being written), so an export of a
//! million transactions never holds them all. Amounts in the store use Plaid's sign (positive = money out); each
//! format converts (see `names.rs` for the one rule the journals share).

mod append;
mod beancount;
mod csv;
mod journal;
mod json;
mod ledger;
mod names;
mod ofx;

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::str::FromStr;

use chrono::NaiveDate;

pub use append::append;

use crate::domain::{Account, AccountFilter, AccountId, PlaidItemId, Transaction, TransactionFilter, UserId};
use crate::store::{Store, StoreError};

/// The output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    Ofx,
    Beancount,
    Ledger,
}

impl FromStr for Format {
    type Err = ExportError;
    fn from_str(s: &str) -> Result<Self, ExportError> {
        match s.to_ascii_lowercase().as_str() {
            "csv" => Ok(Self::Csv),
            "json" | "jsonl" => Ok(Self::Json),
            "ofx" => Ok(Self::Ofx),
            "beancount" => Ok(Self::Beancount),
            "ledger" | "hledger" => Ok(Self::Ledger),
            other => Err(ExportError::BadInput(format!(
                "unknown export format {other:?}: expected csv, json, ofx, beancount or ledger"
            ))),
        }
    }
}

/// What to do with pending transactions. Default `exclude`: they change or vanish when they post, which a journal
/// the user edits cannot follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pending {
    #[default]
    Exclude,
    /// Written with the `!` flag (Beancount and Ledger); like `include` elsewhere.
    Flag,
    Include,
}

impl FromStr for Pending {
    type Err = ExportError;
    fn from_str(s: &str) -> Result<Self, ExportError> {
        match s.to_ascii_lowercase().as_str() {
            "exclude" => Ok(Self::Exclude),
            "flag" => Ok(Self::Flag),
            "include" => Ok(Self::Include),
            other => {
                Err(ExportError::BadInput(format!("unknown --pending {other:?}: expected exclude, flag or include")))
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub format: Format,
    /// Inclusive, on the transaction's date.
    pub start: Option<NaiveDate>,
    /// Inclusive, on the transaction's date.
    pub end: Option<NaiveDate>,
    pub account: Option<AccountId>,
    /// Plaid's item_id.
    pub item: Option<PlaidItemId>,
    pub pending: Pending,
}

impl ExportOptions {
    pub fn new(format: Format) -> Self {
        Self { format, start: None, end: None, account: None, item: None, pending: Pending::default() }
    }
}

/// What an export or append wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportSummary {
    pub transactions: u64,
    /// `--append`: transactions already in the file.
    pub already_present: u64,
    pub balance_assertions: u64,
    pub accounts: u64,
    /// `--append`: transactions in the file that Plaid changed or removed since (listed on the report).
    pub changed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    BadInput(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the export failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Writes the user's transactions in `opts.format` to `out`.
pub async fn export(
    store: &Store,
    user: &UserId,
    opts: &ExportOptions,
    out: &mut (dyn Write + Send),
) -> Result<ExportSummary, ExportError> {
    check(opts)?;
    let ctx = Context::load(store, user, opts).await?;
    run(store, user, opts, &ctx, &append::Existing::default(), out).await
}

fn check(opts: &ExportOptions) -> Result<(), ExportError> {
    if let (Some(start), Some(end)) = (opts.start, opts.end)
        && start > end
    {
        return Err(ExportError::BadInput(format!("--start {start} is after --end {end}")));
    }
    Ok(())
}

async fn run(
    store: &Store,
    user: &UserId,
    opts: &ExportOptions,
    ctx: &Context,
    existing: &append::Existing,
    out: &mut (dyn Write + Send),
) -> Result<ExportSummary, ExportError> {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    let summary = match opts.format {
        Format::Csv => csv::write(store, user, opts, ctx, existing, &mut out).await?,
        Format::Json => json::write(store, user, opts, ctx, existing, &mut out).await?,
        Format::Ofx => ofx::write(store, user, opts, ctx, &mut out).await?,
        Format::Beancount => journal::write(&beancount::Beancount, store, user, opts, ctx, existing, &mut out).await?,
        Format::Ledger => journal::write(&ledger::Ledger, store, user, opts, ctx, existing, &mut out).await?,
    };
    out.flush()?;
    Ok(summary)
}

/// An exported account: the stored account and the names the formats give it.
#[derive(Debug, Clone)]
pub(crate) struct ExportAccount {
    pub account: Account,
    /// Beancount/Ledger account name, e.g. `Assets:Ins109508:PlaidChecking-0000`.
    pub journal_name: String,
    /// Credit cards and loans: Plaid's balance is what is owed.
    pub liability: bool,
    /// The commodity (ISO code, else Plaid's unofficial code), `USD` when Plaid gives none.
    pub currency: String,
    pub institution: String,
}

/// The accounts in scope, keyed by Plaid's account_id, in a stable order.
pub(crate) struct Context {
    pub accounts: Vec<ExportAccount>,
    pub by_id: HashMap<AccountId, usize>,
}

impl Context {
    async fn load(store: &Store, user: &UserId, opts: &ExportOptions) -> Result<Self, ExportError> {
        let items = store.list_items(user).await?;
        let institution_of: HashMap<_, _> = items
            .iter()
            .map(|i| {
                let name = i.institution_name.clone().or_else(|| i.institution_id.clone());
                (i.item_id.clone(), name.unwrap_or_else(|| "Bank".to_owned()))
            })
            .collect();
        if let Some(item) = &opts.item
            && !institution_of.contains_key(item)
        {
            return Err(ExportError::BadInput(format!("no Item {item:?}", item = item.as_str())));
        }
        let filter = AccountFilter { item_id: opts.item.clone(), include_removed: true };
        let mut accounts: Vec<Account> = store.list_accounts(user, &filter).await?;
        accounts.retain(|a| institution_of.contains_key(&a.item_id));
        if let Some(id) = &opts.account {
            accounts.retain(|a| &a.account_id == id);
            if accounts.is_empty() {
                return Err(ExportError::BadInput(format!("no account {:?}", id.as_str())));
            }
        }
        accounts.sort_by(|a, b| a.account_id.cmp(&b.account_id));
        let names = stored_names(store, user, &accounts, &institution_of).await?;
        let accounts: Vec<ExportAccount> = accounts
            .into_iter()
            .zip(names)
            .map(|(account, journal_name)| {
                let institution = institution_of[&account.item_id].clone();
                let liability = names::is_liability(&account.account_type);
                let currency = names::commodity(account.balances.currency.as_deref());
                ExportAccount { account, journal_name, liability, currency, institution }
            })
            .collect();
        let by_id = accounts.iter().enumerate().map(|(i, a)| (a.account.account_id.clone(), i)).collect();
        Ok(Self { accounts, by_id })
    }

    pub fn get(&self, id: &AccountId) -> Option<&ExportAccount> {
        self.by_id.get(id).map(|&i| &self.accounts[i])
    }
}

/// The journal name of each account (in order): the stored one, else a derived one, stored now, with the account id
/// appended when another account already holds it.
async fn stored_names(
    store: &Store,
    user: &UserId,
    accounts: &[Account],
    institution_of: &HashMap<PlaidItemId, String>,
) -> Result<Vec<String>, ExportError> {
    let mut stored = store.export_names(user).await?;
    let mut out = Vec::with_capacity(accounts.len());
    for a in accounts {
        let key = a.persistent_account_id.clone().unwrap_or_else(|| a.account_id.as_str().to_owned());
        if let Some(name) = stored.get(&key) {
            out.push(name.clone());
            continue;
        }
        let derived = names::account_name(&institution_of[&a.item_id], a, names::is_liability(&a.account_type));
        let unique = format!("{derived}-{}", names::component(a.account_id.as_str()));
        for candidate in [derived, unique] {
            if store.claim_export_name(user, &key, &candidate).await? {
                break;
            }
        }
        // Re-read: a concurrent export may have named the account first.
        stored = store.export_names(user).await?;
        let name = stored.get(&key).cloned().ok_or_else(|| {
            ExportError::BadInput(format!("could not name account {:?} for the journal", a.account_id.as_str()))
        })?;
        out.push(name);
    }
    Ok(out)
}

/// Page size for streaming: the store's maximum.
const PAGE: u32 = TransactionFilter::MAX_LIMIT;

/// Calls `f` for every transaction in scope, oldest first, a page at a time.
pub(crate) async fn for_each_transaction(
    store: &Store,
    user: &UserId,
    opts: &ExportOptions,
    account: Option<&AccountId>,
    mut f: impl FnMut(&Transaction) -> Result<(), ExportError>,
) -> Result<(), ExportError> {
    let filter = TransactionFilter {
        account_id: account.cloned().or_else(|| opts.account.clone()),
        item_id: opts.item.clone(),
        start: opts.start,
        end: opts.end,
        pending: (opts.pending == Pending::Exclude).then_some(false),
        limit: PAGE,
        ..TransactionFilter::default()
    };
    let mut after = None;
    loop {
        let (page, next) = store.transactions_oldest_first(user, &filter, after.as_ref()).await?;
        for t in &page {
            f(t)?;
        }
        match next {
            Some(next) => after = Some(next),
            None => return Ok(()),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Csv => "csv",
            Self::Json => "json",
            Self::Ofx => "ofx",
            Self::Beancount => "beancount",
            Self::Ledger => "ledger",
        })
    }
}
