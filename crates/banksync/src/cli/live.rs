//! The commands that call Plaid — `sync` and `accounts --refresh` — run by the server's rules.
//!
//! - `sync` requests a sync per Item through the [`JobQueue`] (the same rules as "sync now": cooldown, rate-limit
//!   hold, joining a queued sync) and runs an in-process [`WorkerPool`] until its jobs end. Workers claim jobs with
//!   a lease, so when a server is running on the same database either one runs each job and never both at once;
//!   the CLI waits for the job whoever runs it and reports its `SyncJobResult`.
//! - `accounts --refresh` runs a [`BalanceRefresher`] in this process and shows a spinner per Item while the banks
//!   answer.
//! - Demo mode (no Plaid keys): the embedded simulator's state in `DATA_DIR/simulator` is a journal that one process
//!   may own at a time. With a demo server running (something answers on its listen address), these commands
//!   refuse with a one-line reason — use the page's buttons, or stop the server; with none running they open the
//!   simulator state themselves, exactly as the server would.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use super::data::{UserArgs, find_item, open, print_accounts};
use super::output::{Table, json_line};
use crate::balances::{BalanceOptions, BalanceRefresher, ItemRefreshState, RefreshState};
use crate::config::{Config, PlaidTarget};
use crate::domain::{Item, ItemStatus, Job, JobState};
use crate::jobs::{JobQueue, SyncJobResult, SyncRefused, SyncRules, WorkerOptions, WorkerPool};
use crate::store::Store;
use crate::sync::{SyncEngine, SyncOptions, SyncTrigger};

/// How long `sync` waits for its jobs (a bank with a long history may take minutes on its first sync).
const SYNC_WAIT: Duration = Duration::from_secs(15 * 60);
/// How long `accounts --refresh` waits for the banks (the refresher gives each Item its own deadline first).
const REFRESH_WAIT: Duration = Duration::from_secs(120);

/// The services a Plaid-calling command needs, built the way the server builds them.
struct Live {
    sync: SyncEngine,
    balances: BalanceRefresher,
    simulator: Option<plaid_sim::RunningSim>,
    audit: crate::audit::AuditTrail,
}

impl Live {
    async fn open(config: &Config, store: &Arc<Store>) -> anyhow::Result<Live> {
        if matches!(config.plaid, PlaidTarget::EmbeddedSimulator) {
            refuse_beside_a_demo_server(config).await?;
        }
        let vault = Arc::new(
            crate::keys::server_vault(config)
                .context("cannot load the master keys that encrypt Plaid access tokens")?,
        );
        let (plaid, simulator, _, _) = crate::startup::plaid_client(config, &config.public_url).await?;
        let audit = crate::audit::AuditTrail::start(store.clone());
        let plaid = plaid.with_observer(audit.observer());
        let budget = crate::budget::Budget::new(store.clone(), config.plaid_limits.clone());
        let sync = SyncEngine::new(store.clone(), plaid.clone(), vault.clone(), SyncOptions::default());
        sync.set_budget(budget.clone());
        let options = BalanceOptions { max_age: config.balance_max_age, ..BalanceOptions::default() };
        let balances = BalanceRefresher::new(store.clone(), plaid, vault, options);
        balances.set_budget(budget);
        Ok(Live { sync, balances, simulator, audit })
    }

    async fn close(self) {
        self.audit.flush().await;
        if let Some(sim) = self.simulator {
            sim.shutdown().await;
        }
    }
}

/// In demo mode the server owns the simulator's journal while it runs: refuse rather than fork the simulated banks.
async fn refuse_beside_a_demo_server(config: &Config) -> anyhow::Result<()> {
    let mut addr = config.listen;
    if addr.port() == 0 {
        return Ok(());
    }
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let connect = tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr)).await;
    if matches!(connect, Ok(Ok(_))) {
        anyhow::bail!(
            "a banksync server in demo mode is running on {addr} and owns the simulated banks in {}: use its \
             page ({}) to sync or refresh, or stop it and run this again",
            config.data_dir.join(crate::startup::SIM_STATE_DIR).display(),
            config.public_url
        );
    }
    Ok(())
}

/// Progress on standard error, only for a person watching (never mixed into `--json` or a pipe).
fn progress(json: bool) -> MultiProgress {
    let target = if json || !std::io::stderr().is_terminal() {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    MultiProgress::with_draw_target(target)
}

fn spinner(multi: &MultiProgress, name: &str) -> ProgressBar {
    let bar = multi.add(ProgressBar::new_spinner());
    bar.set_style(ProgressStyle::with_template("{spinner} {prefix:30} {msg} ({elapsed})").expect("a valid template"));
    bar.set_prefix(name.to_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn institution(item: &Item) -> String {
    item.institution_name.clone().unwrap_or_else(|| item.item_id.to_string())
}

pub async fn run_accounts(refresh: bool, item: Option<String>, json: bool, target: UserArgs) -> anyhow::Result<()> {
    let (config, store, user) = open(target).await?;
    let item = match item {
        Some(id) => Some(find_item(&store, &user, &id).await?),
        None => None,
    };
    let item_id = item.as_ref().map(|i| i.item_id.clone());
    if refresh {
        let live = Live::open(&config, &store).await?;
        let result = refresh_balances(&live.balances, &store, &user, item_id.as_ref(), json).await;
        live.close().await;
        result?;
    }
    print_accounts(&store, &user, item_id.as_ref(), json).await
}

/// Starts a live balance refresh and shows a spinner per Item until every bank answered (or gave up).
async fn refresh_balances(
    balances: &BalanceRefresher,
    store: &Store,
    user: &crate::domain::User,
    item: Option<&crate::domain::PlaidItemId>,
    json: bool,
) -> anyhow::Result<()> {
    let job_id = balances.start(&user.id, item).await.context("cannot start the balance refresh")?;
    let items = store.list_items(&user.id).await.context("cannot read the Items")?;
    let multi = progress(json);
    let mut bars = std::collections::HashMap::new();
    let deadline = tokio::time::Instant::now() + REFRESH_WAIT;
    loop {
        let job = balances
            .status(&user.id, &job_id, Duration::from_millis(500))
            .await
            .context("cannot read the balance refresh")?
            .context("the balance refresh disappeared")?;
        for outcome in &job.items {
            let bar = bars.entry(outcome.item_id.clone()).or_insert_with(|| {
                let name = items
                    .iter()
                    .find(|i| i.item_id == outcome.item_id)
                    .map_or_else(|| outcome.item_id.to_string(), institution);
                spinner(&multi, &name)
            });
            match (&outcome.state, &outcome.error) {
                (ItemRefreshState::Pending, _) => bar.set_message("waiting for the bank…"),
                (ItemRefreshState::Ok, _) if !bar.is_finished() => {
                    bar.finish_with_message(format!("{} account(s) updated", outcome.accounts_updated));
                }
                (ItemRefreshState::Error, Some(e)) if !bar.is_finished() => {
                    bar.finish_with_message(format!("failed: {} ({})", e.message, e.code));
                }
                _ => {}
            }
        }
        if job.state == RefreshState::Done || tokio::time::Instant::now() >= deadline {
            for bar in bars.values() {
                bar.finish();
            }
            let failed: Vec<String> = job
                .items
                .iter()
                .filter_map(|o| o.error.as_ref().map(|e| format!("{}: {} ({})", o.item_id, e.message, e.code)))
                .collect();
            for f in &failed {
                eprintln!("live balance failed for {f}; showing the last known balance");
            }
            if job.state != RefreshState::Done {
                eprintln!("some banks have not answered yet; showing the balances known so far");
            }
            return Ok(());
        }
    }
}

/// One Item's outcome of `banksync sync` (a `--json` line).
#[derive(Debug, Serialize)]
struct SyncReport {
    item_id: String,
    institution: String,
    /// synced | failed | skipped | refused
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    added: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    modified: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    removed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pages: Option<u64>,
    /// Plaid's error code, when Plaid refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<String>,
    /// Plaid's reason in words, or why nothing ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
    /// The job runs again by itself (a transient failure).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    will_retry: bool,
}

impl SyncReport {
    fn new(item: &Item, outcome: &'static str) -> Self {
        SyncReport {
            item_id: item.item_id.to_string(),
            institution: institution(item),
            outcome,
            added: None,
            modified: None,
            removed: None,
            pages: None,
            error_code: None,
            message: None,
            fix: None,
            will_retry: false,
        }
    }

    fn of_job(item: &Item, job: &Job) -> Self {
        let result = job.result.as_deref().and_then(|r| serde_json::from_str::<SyncJobResult>(r).ok());
        match result {
            Some(SyncJobResult::Synced { summary, .. }) => SyncReport {
                added: Some(summary.added),
                modified: Some(summary.modified),
                removed: Some(summary.removed),
                pages: Some(summary.pages),
                message: summary.not_ready.then(|| "Plaid has no transactions for this bank yet".to_owned()),
                ..Self::new(item, "synced")
            },
            Some(SyncJobResult::Failed { error, will_retry }) => {
                let reconnect = error.plaid.as_ref().is_some_and(plaid::PlaidError::requires_user_action);
                SyncReport {
                    error_code: error.plaid.as_ref().map(|p| p.error_code.clone()),
                    message: Some(error.message),
                    fix: Some(if reconnect {
                        "run `banksync link` and press Reconnect on this bank".to_owned()
                    } else if will_retry {
                        "none needed: banksync retries by itself".to_owned()
                    } else {
                        "try `banksync sync` again later".to_owned()
                    }),
                    will_retry,
                    ..Self::new(item, "failed")
                }
            }
            Some(SyncJobResult::Skipped { reason }) => {
                SyncReport { message: Some(reason), ..Self::new(item, "skipped") }
            }
            None if job.state == JobState::Failed => SyncReport {
                message: Some(job.last_error.clone().unwrap_or_else(|| "the sync failed".to_owned())),
                ..Self::new(item, "failed")
            },
            None if job.state == JobState::Done => Self::new(item, "synced"),
            None => SyncReport {
                message: Some(format!("still {} after {}", job.state.as_str(), humantime::format_duration(SYNC_WAIT))),
                ..Self::new(item, "failed")
            },
        }
    }

    fn failed(&self) -> bool {
        self.outcome == "failed"
    }

    fn line(&self) -> String {
        match self.outcome {
            "synced" => format!(
                "{} page(s): +{} added, ~{} modified, -{} removed{}",
                self.pages.unwrap_or(0),
                self.added.unwrap_or(0),
                self.modified.unwrap_or(0),
                self.removed.unwrap_or(0),
                self.message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default()
            ),
            _ => {
                let code = self.error_code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default();
                let fix = self.fix.as_deref().map(|f| format!(" Fix: {f}.")).unwrap_or_default();
                format!("{}: {code}{}{fix}", self.outcome, self.message.as_deref().unwrap_or("-"))
            }
        }
    }
}

pub async fn run_sync(item: Option<String>, json: bool, target: UserArgs) -> anyhow::Result<()> {
    let (config, store, user) = open(target).await?;
    let items = match item {
        Some(id) => vec![find_item(&store, &user, &id).await?],
        None => store.list_items(&user.id).await.context("cannot read the Items")?,
    };
    if items.is_empty() {
        eprintln!("{} has no banks linked yet: `banksync link` opens the page to link one", user.username);
        return Ok(());
    }
    let live = Live::open(&config, &store).await?;
    let jobs = JobQueue::with_rules(
        store.clone(),
        SyncRules { cooldown: config.jobs.sync_cooldown, refresh: config.jobs.transactions_refresh },
    );
    let workers = WorkerPool::start(
        jobs.clone(),
        live.sync.clone(),
        WorkerOptions { concurrency: config.jobs.workers.max(1), ..WorkerOptions::default() },
    );
    let own_worker = workers.worker_id().to_owned();
    let multi = progress(json);
    let mut waits = Vec::new();
    let mut reports = Vec::new();
    for item in &items {
        if item.status == ItemStatus::Revoked {
            reports.push(SyncReport {
                message: Some("access to this bank was revoked; link it again to keep syncing it".to_owned()),
                ..SyncReport::new(item, "skipped")
            });
            continue;
        }
        match jobs.request_sync(item, SyncTrigger::Manual, Duration::ZERO).await {
            Ok(enqueued) => {
                let bar = spinner(&multi, &institution(item));
                bar.set_message("queued");
                waits.push(wait_for_sync(&jobs, item, enqueued.job_id, &own_worker, bar));
            }
            Err(SyncRefused::Cooldown(wait)) => reports.push(SyncReport {
                message: Some(format!(
                    "synced a moment ago; the next sync is allowed in {} (BANKSYNC_SYNC_COOLDOWN)",
                    humantime::format_duration(Duration::from_secs(wait.as_secs().max(1)))
                )),
                ..SyncReport::new(item, "refused")
            }),
            Err(SyncRefused::Revoked) => reports.push(SyncReport::new(item, "skipped")),
            Err(SyncRefused::Store(e)) => {
                workers.shutdown().await;
                live.close().await;
                return Err(anyhow::Error::new(e).context("cannot queue the sync"));
            }
        }
    }
    let finished = futures::future::join_all(waits).await;
    workers.shutdown().await;
    live.close().await;
    for report in finished {
        reports.push(report?);
    }
    reports.sort_by(|a, b| a.institution.cmp(&b.institution).then(a.item_id.cmp(&b.item_id)));
    if json {
        reports.iter().try_for_each(json_line)?;
    } else {
        let mut table = Table::new(&["ITEM_ID", "INSTITUTION", "RESULT"]);
        for r in &reports {
            table.row(vec![r.item_id.clone(), r.institution.clone(), r.line()]);
        }
        table.print();
    }
    let failed = reports.iter().filter(|r| r.failed()).count();
    let synced = reports.iter().filter(|r| r.outcome == "synced").count();
    eprintln!("{synced} Item(s) synced, {failed} failed, {} not synced", reports.len() - synced - failed);
    if failed > 0 {
        anyhow::bail!("{failed} of {} Item(s) failed to sync", reports.len());
    }
    Ok(())
}

/// Waits for one sync job, whoever runs it, until it ends or its attempt failed (a retry would come much later).
async fn wait_for_sync(
    jobs: &JobQueue,
    item: &Item,
    job_id: crate::domain::JobId,
    own_worker: &str,
    bar: ProgressBar,
) -> anyhow::Result<SyncReport> {
    let store = jobs.store();
    let attempts_before = store.get_job(&job_id).await.context("cannot read the sync job")?.attempts;
    let attempt_failed = |job: &Job| {
        job.attempts > attempts_before
            && job.state == JobState::Queued
            && job.result.as_deref().is_some_and(|r| r.contains("\"outcome\":\"failed\""))
    };
    let deadline = tokio::time::Instant::now() + SYNC_WAIT;
    let job = loop {
        let job = jobs
            .wait_for(&job_id, Duration::from_secs(1), |j| JobQueue::is_finished(j) || attempt_failed(j))
            .await
            .context("cannot read the sync job")?;
        if JobQueue::is_finished(&job) || attempt_failed(&job) || tokio::time::Instant::now() >= deadline {
            break job;
        }
        let message = match (&job.state, job.lease_owner.as_deref()) {
            (JobState::Running, Some(owner)) if owner == own_worker => "syncing…".to_owned(),
            (JobState::Running, _) => "syncing (run by the server)…".to_owned(),
            (JobState::Queued, _) if job.run_after > chrono::Utc::now() => {
                format!("waiting until {} (rate limit)", job.run_after.format("%H:%M:%S"))
            }
            _ => "queued".to_owned(),
        };
        bar.set_message(message);
    };
    let report = SyncReport::of_job(item, &job);
    bar.finish_with_message(report.line());
    Ok(report)
}
