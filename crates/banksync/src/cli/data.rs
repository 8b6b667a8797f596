//! The terminal user's read commands — `items`, `accounts`, `transactions`, `link` — and the `--user` rule they
//! share with `sync` and `accounts --refresh` ([`super::live`]).
//!
//! They work on the database directly, through the same [`Store`] and API views as the server, so a table shows
//! what the page shows and `--json` prints what the API returns (one object per line).

use std::collections::HashMap;
use std::io::IsTerminal as _;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use super::output::{Table, json_line, or_dash, time};
use crate::config::{Config, Settings};
use crate::domain::{AccountFilter, Item, PlaidItemId, User};
use crate::http::views::{AccountView, HealthView, ItemView, TransactionView};
use crate::startup::open_store;
use crate::store::Store;

/// The commands for a user's data, flattened into `banksync`'s own subcommands.
// Parsed once per process: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// List the linked banks (Items): institution, health and what fixes it, banksync's last sync, and when Plaid
    /// last heard from the bank.
    Items {
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        target: UserArgs,
    },
    /// List the accounts with their balances and when the bank reported them (`as of`).
    ///
    /// Balances are the ones banksync keeps; `--refresh` first asks every bank for live balances (banks can take
    /// up to 30 s to answer) and shows which are still being waited for. In demo mode `--refresh` refuses while a
    /// demo server runs, as `sync` does.
    Accounts {
        /// Ask the banks for live balances first (calls Plaid's /accounts/balance/get).
        #[arg(long)]
        refresh: bool,
        /// Only this Item's accounts (Plaid's item_id, see `banksync items`).
        #[arg(long, value_name = "ITEM_ID")]
        item: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        target: UserArgs,
    },
    /// Sync transactions now, for every Item or one, and print what changed.
    ///
    /// The sync goes through the server's job queue: if a banksync server is running it may run the job itself
    /// (never two syncs of one Item at once); otherwise this command runs it. Exits with 1 if any Item failed,
    /// with Plaid's reason and what fixes it.
    ///
    /// In demo mode (no Plaid keys) the simulated banks in DATA_DIR/simulator belong to the running server: with a
    /// demo server up this command refuses (use the page's Sync now); with none it opens them itself.
    Sync {
        /// Only this Item (Plaid's item_id, see `banksync items`).
        #[arg(long, value_name = "ITEM_ID")]
        item: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        target: UserArgs,
    },
    /// List transactions, newest first, with the API's filters (`GET /api/transactions`).
    Transactions(TransactionArgs),
    /// Export transactions as csv, json, ofx, beancount or ledger, to standard output, a file, or appended to an
    /// earlier export (`--append`, adds only what is missing).
    Export(super::export::ExportArgs),
    /// Open the running server's page in the browser, to link a bank or reconnect one (prints the URL too).
    Link {
        /// Only print the URL (for a machine without a browser, e.g. over SSH).
        #[arg(long)]
        print: bool,
        #[command(flatten)]
        settings: Settings,
    },
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Print JSON, one object per line (the API's shapes), instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Whose data a command reads or acts on.
#[derive(Debug, Args)]
pub struct UserArgs {
    /// The user whose data this is; may be left out when there is only one user.
    #[arg(long, value_name = "NAME", env = "BANKSYNC_USER")]
    pub user: Option<String>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Args)]
pub struct TransactionArgs {
    /// Only this account (Plaid's account_id, see `banksync accounts`).
    #[arg(long, value_name = "ACCOUNT_ID")]
    account: Option<String>,
    /// Only this Item (Plaid's item_id, see `banksync items`).
    #[arg(long, value_name = "ITEM_ID")]
    item: Option<String>,
    /// From this date on (YYYY-MM-DD, inclusive).
    #[arg(long, value_name = "DATE")]
    start: Option<String>,
    /// Up to this date (YYYY-MM-DD, inclusive).
    #[arg(long, value_name = "DATE")]
    end: Option<String>,
    /// Plaid's primary category (e.g. FOOD_AND_DRINK) or your own.
    #[arg(long)]
    category: Option<String>,
    /// Only pending (true) or only posted (false) transactions.
    #[arg(long, value_name = "true|false")]
    pending: Option<String>,
    /// Full-text search in the name, merchant and note: every word, the last one as a prefix.
    #[arg(long, short = 'q', value_name = "TEXT")]
    search: Option<String>,
    /// At least this amount (Plaid's sign: positive is money out), e.g. -5.50.
    #[arg(long, value_name = "DECIMAL", allow_hyphen_values = true)]
    min_amount: Option<String>,
    /// At most this amount, e.g. 100.
    #[arg(long, value_name = "DECIMAL", allow_hyphen_values = true)]
    max_amount: Option<String>,
    /// How many to print, 1 to 500; the next page's cursor is printed on standard error.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Continue after a previous page (the cursor it printed).
    #[arg(long)]
    cursor: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    target: UserArgs,
}

impl DataCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            Self::Items { output, target } => run_items(output.json, target).await,
            Self::Accounts { refresh, item, output, target } => {
                super::live::run_accounts(refresh, item, output.json, target).await
            }
            Self::Sync { item, output, target } => super::live::run_sync(item, output.json, target).await,
            Self::Transactions(args) => run_transactions(args).await,
            Self::Export(args) => super::export::run(args).await,
            Self::Link { print, settings } => run_link(print, settings).await,
        }
    }
}

/// The configuration, the store and the user a data command works for.
pub(super) async fn open(target: UserArgs) -> anyhow::Result<(Config, std::sync::Arc<Store>, User)> {
    let config = Config::load(target.settings)?;
    let store = open_store(&config).await?;
    let user = resolve_user(&store, target.user.as_deref()).await?;
    Ok((config, store, user))
}

/// `--user NAME`, or the only user; with several users it refuses to guess.
pub(super) async fn resolve_user(store: &Store, name: Option<&str>) -> anyhow::Result<User> {
    if let Some(name) = name {
        return super::find_user(store, name).await;
    }
    let mut users = store.list_users().await.context("cannot list the users")?;
    match users.len() {
        0 => anyhow::bail!("there are no users yet: create one with `banksync user add NAME`"),
        1 => Ok(users.remove(0)),
        n => {
            let names: Vec<&str> = users.iter().map(|u| u.username.as_str()).collect();
            anyhow::bail!("there are {n} users ({}): say whose data this is with --user NAME", names.join(", "))
        }
    }
}

/// The user's Item with Plaid's item_id `id`, with a pointer to `banksync items` when there is none.
pub(super) async fn find_item(store: &Store, user: &User, id: &str) -> anyhow::Result<Item> {
    let items = store.list_items(&user.id).await.context("cannot read the Items")?;
    items
        .into_iter()
        .find(|i| i.item_id.as_str() == id.trim())
        .with_context(|| format!("{} has no Item {id:?} (`banksync items` lists them)", user.username))
}

/// What fixes an Item's health, for the table's FIX column.
pub(super) fn fix(health: &HealthView) -> String {
    match (&health.message, health.needs_reconnect) {
        (None, _) => "-".to_owned(),
        (Some(m), true) => format!("{m} Fix: run `banksync link` and press Reconnect on this bank."),
        (Some(m), false) => m.clone(),
    }
}

async fn run_items(json: bool, target: UserArgs) -> anyhow::Result<()> {
    let (_, store, user) = open(target).await?;
    let items = store.list_items(&user.id).await.context("cannot read the Items")?;
    let states = store.sync_states_of_user(&user.id).await.context("cannot read the sync states")?;
    let views: Vec<ItemView> =
        items.iter().map(|item| ItemView::of(item).with_sync_state(states.get(&item.id))).collect();
    if json {
        return views.iter().try_for_each(json_line);
    }
    let mut table = Table::new(&["ITEM_ID", "INSTITUTION", "HEALTH", "LAST_SYNC", "BANK_UPDATED", "FIX"]);
    for v in &views {
        table.row(vec![
            v.item_id.to_string(),
            or_dash(v.institution_name.as_deref()),
            v.health.status.to_owned(),
            time(v.last_successful_sync_at),
            time(v.sync.institution_last_update),
            fix(&v.health),
        ]);
    }
    table.print();
    if views.is_empty() {
        eprintln!("{} has no banks linked yet: `banksync link` opens the page to link one", user.username);
    }
    Ok(())
}

/// Prints the user's accounts as stored (after a refresh, with the live balances it brought).
pub(super) async fn print_accounts(
    store: &Store,
    user: &User,
    item: Option<&PlaidItemId>,
    json: bool,
) -> anyhow::Result<()> {
    let filter = AccountFilter { item_id: item.cloned(), include_removed: false };
    let accounts = store.list_accounts(&user.id, &filter).await.context("cannot read the accounts")?;
    let views: Vec<AccountView> = accounts.iter().map(AccountView::of).collect();
    if json {
        return views.iter().try_for_each(json_line);
    }
    let items = store.list_items(&user.id).await.context("cannot read the Items")?;
    let institution = |id: &PlaidItemId| {
        items.iter().find(|i| i.item_id == *id).and_then(|i| i.institution_name.clone()).unwrap_or_default()
    };
    let mut table = Table::new(&[
        "ACCOUNT_ID",
        "INSTITUTION",
        "NAME",
        "TYPE",
        "CURRENT",
        "AVAILABLE",
        "CURRENCY",
        "AS_OF",
        "SOURCE",
    ]);
    for v in &views {
        let name = match &v.mask {
            Some(mask) => format!("{} ••{mask}", v.name),
            None => v.name.clone(),
        };
        let b = &v.balances;
        table.row(vec![
            v.account_id.to_string(),
            or_dash(Some(&institution(&v.item_id))),
            name,
            format!("{}{}", v.account_type, v.subtype.as_deref().map(|s| format!("/{s}")).unwrap_or_default()),
            or_dash(b.current.as_deref()),
            or_dash(b.available.as_deref()),
            or_dash(b.currency.as_deref()),
            time(b.as_of),
            b.source.to_owned(),
        ]);
    }
    table.print();
    Ok(())
}

async fn run_transactions(args: TransactionArgs) -> anyhow::Result<()> {
    let (_, store, user) = open(args.target).await?;
    // The API's own parser: the same names, limits and messages.
    let mut params = HashMap::new();
    let optional = [
        ("account_id", args.account),
        ("item_id", args.item),
        ("start", args.start),
        ("end", args.end),
        ("category", args.category),
        ("pending", args.pending),
        ("q", args.search),
        ("min_amount", args.min_amount),
        ("max_amount", args.max_amount),
        ("cursor", args.cursor),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            params.insert(name.to_owned(), v);
        }
    }
    params.insert("limit".to_owned(), args.limit.to_string());
    let filter = crate::http::transactions::parse_filter(params).map_err(|e| match e {
        crate::http::error::ApiError::BadRequest { message, .. } => anyhow::anyhow!("{}", flag_names(&message)),
        other => anyhow::anyhow!("invalid filter: {other:?}"),
    })?;
    let page = store.list_transactions(&user.id, &filter).await.map_err(|e| match e {
        crate::store::StoreError::InvalidInput(_) => anyhow::anyhow!("--cursor is not a cursor this command printed"),
        other => anyhow::Error::new(other).context("cannot read the transactions"),
    })?;
    let views: Vec<TransactionView> = page.items.into_iter().map(TransactionView::of).collect();
    if args.output.json {
        views.iter().try_for_each(json_line)?;
    } else {
        let mut table = Table::new(&["DATE", "AMOUNT", "CURRENCY", "NAME", "CATEGORY", "PENDING", "ACCOUNT_ID"]);
        for v in &views {
            let f = &v.fields;
            let category = v.user_category.clone().or_else(|| f.pfc_primary.clone());
            table.row(vec![
                f.date.to_string(),
                f.amount.to_string(),
                or_dash(f.currency.as_deref()),
                v.display_name.clone(),
                or_dash(category.as_deref()),
                if f.pending { "pending".into() } else { "-".into() },
                f.account_id.to_string(),
            ]);
        }
        table.print();
    }
    if let Some(cursor) = &page.next_cursor {
        eprintln!("more transactions: add --cursor {cursor}");
    }
    Ok(())
}

/// The API's message about a query parameter, about the flag that set it instead.
fn flag_names(message: &str) -> String {
    const FLAGS: [(&str, &str); 11] = [
        ("account_id", "--account"),
        ("item_id", "--item"),
        ("start", "--start"),
        ("end", "--end"),
        ("category", "--category"),
        ("pending", "--pending"),
        ("q", "--search"),
        ("min_amount", "--min-amount"),
        ("max_amount", "--max-amount"),
        ("limit", "--limit"),
        ("cursor", "--cursor"),
    ];
    message
        .split(' ')
        .map(|word| FLAGS.iter().find(|(api, _)| *api == word).map_or(word, |(_, flag)| *flag))
        .collect::<Vec<_>>()
        .join(" ")
}

async fn run_link(print_only: bool, settings: Settings) -> anyhow::Result<()> {
    let config = Config::load(settings)?;
    let url = config.public_url.clone();
    let addr = url
        .socket_addrs(|| None)
        .ok()
        .and_then(|a| a.into_iter().next())
        .with_context(|| format!("cannot resolve the public URL {url} (BANKSYNC_PUBLIC_URL)"))?;
    let reachable = tokio::time::timeout(std::time::Duration::from_secs(3), tokio::net::TcpStream::connect(addr)).await;
    if !matches!(reachable, Ok(Ok(_))) {
        anyhow::bail!(
            "no banksync server answers at {url}: start one with `banksync serve` (or set BANKSYNC_PUBLIC_URL to \
             where it runs), then run `banksync link` again"
        );
    }
    println!("{url}");
    if print_only || !has_display() {
        eprintln!("open {url} in a browser to link a bank or reconnect one");
        return Ok(());
    }
    let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    let opened = std::process::Command::new(opener)
        .arg(url.as_str())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    match opened {
        Ok(s) if s.success() => eprintln!("opened {url} in your browser"),
        _ => eprintln!("cannot open a browser here; open {url} yourself"),
    }
    Ok(())
}

/// Whether a browser could show up: a desktop session (macOS always has one) and a terminal to come from.
fn has_display() -> bool {
    let desktop = cfg!(target_os = "macos")
        || std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty())
        || std::env::var_os("WAYLAND_DISPLAY").is_some_and(|d| !d.is_empty());
    desktop && std::io::stdout().is_terminal()
}

#[cfg(test)]
mod tests {
    #[test]
    fn filter_messages_name_the_flags() {
        assert_eq!(super::flag_names("start must not be after end"), "--start must not be after --end");
        assert_eq!(
            super::flag_names("q must have at most 200 characters"),
            "--search must have at most 200 characters"
        );
    }
}
