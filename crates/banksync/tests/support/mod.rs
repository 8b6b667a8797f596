//! Shared setup for the service-layer tests: an in-process simulator on a loopback port, a real `PlaidClient` talking
//! to it, a fresh store (SQLite temp file, or a fresh PostgreSQL schema), a vault and the engines.
#![allow(dead_code)]

#[path = "../common/eventually.rs"]
mod eventually;
#[path = "../common/pg.rs"]
mod pg;
#[path = "../common/sim.rs"]
mod sim;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use banksync::balances::{BalanceOptions, BalanceRefresher};
use banksync::domain::{AccountFilter, Item, NewItem, PlaidItemId, TransactionFilter, TransactionId, User};
use banksync::jobs::{JobQueue, WorkerOptions, WorkerPool};
use banksync::link::LinkService;
use banksync::store::{self, Store};
use banksync::sync::{SyncEngine, SyncOptions};
use banksync::vault::{MasterKey, Vault};
use plaid::{
    AccessToken, AccountsGetRequest, ClientConfig, Environment, PlaidClient, Product, SandboxPublicTokenCreateRequest,
};
use plaid_sim::{RunningSim, SimConfig, Simulator};
use rust_decimal::Decimal;
use secrecy::SecretString;
use serde_json::{Value, json};
pub use sim::sim_config;

pub struct Env {
    pub sim: RunningSim,
    pub http: reqwest::Client,
    pub store: Arc<Store>,
    pub plaid: PlaidClient,
    pub vault: Arc<Vault>,
    pub engine: SyncEngine,
    /// The job queue, with a worker pool running its jobs (the link flow's first sync goes through it).
    pub queue: JobQueue,
    pub user: User,
    _workers: WorkerPool,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(sqlx::PgConnection, String, Arc<Store>)>,
}

pub async fn sqlite(config: SimConfig, options: SyncOptions) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("banksync.db").display());
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    build(store, config, options, Some(dir), None).await
}

/// A fresh schema in the test PostgreSQL; `None` (after a loud message) when it is unreachable outside CI.
pub async fn postgres(config: SimConfig, options: SyncOptions) -> Option<Env> {
    let (admin, schema) = pg::fresh_schema("banksync_sync", "sync test").await?;
    let options_pg =
        sqlx::postgres::PgConnectOptions::from_str(&pg::url()).unwrap().options([("search_path", schema.as_str())]);
    let pg = Arc::new(Store::connect_postgres(options_pg, 8).await.unwrap());
    let store: Arc<Store> = pg.clone();
    store.migrate().await.unwrap();
    Some(build(store, config, options, None, Some((admin, schema, pg))).await)
}

async fn build(
    store: Arc<Store>,
    config: SimConfig,
    options: SyncOptions,
    dir: Option<tempfile::TempDir>,
    pg: Option<(sqlx::PgConnection, String, Arc<Store>)>,
) -> Env {
    let sim = Simulator::new(config).spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let plaid = client(&sim).with_observer(banksync::audit::AuditTrail::start(store.clone()).observer());
    let vault = Arc::new(Vault::new(MasterKey::generate()));
    let engine = SyncEngine::new(store.clone(), plaid.clone(), vault.clone(), options);
    let queue = JobQueue::new(store.clone());
    let workers = WorkerPool::start(
        queue.clone(),
        engine.clone(),
        WorkerOptions { poll_interval: Duration::from_millis(200), ..WorkerOptions::default() },
    );
    let user = store.create_user("alice", "$argon2id$not-used-here").await.unwrap();
    Env {
        sim,
        http: reqwest::Client::new(),
        store,
        plaid,
        vault,
        engine,
        queue,
        user,
        _workers: workers,
        _dir: dir,
        pg,
    }
}

/// A plain client for the simulator (no observer).
pub fn client(sim: &RunningSim) -> PlaidClient {
    let config = sim.simulator().config();
    let env = Environment::Custom(url::Url::parse(&sim.url()).unwrap());
    PlaidClient::new(ClientConfig::new(env, config.client_id.clone(), SecretString::from(config.secret.clone())))
        .unwrap()
}

impl Env {
    /// Drops the PostgreSQL schema (SQLite's temp dir goes with the Env).
    pub async fn finish(self) {
        if let Some((mut admin, schema, pg)) = self.pg {
            pg.close().await;
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&mut admin).await.unwrap();
        }
    }

    /// A second store on the same PostgreSQL schema, as another banksync process sharing the database would open.
    pub async fn another_postgres_store(&self) -> Arc<Store> {
        let (_, schema, _) = self.pg.as_ref().expect("an Env on PostgreSQL");
        let options =
            sqlx::postgres::PgConnectOptions::from_str(&pg::url()).unwrap().options([("search_path", schema.as_str())]);
        Arc::new(Store::connect_postgres(options, 8).await.unwrap())
    }

    /// The SQLite database directory, if this Env uses SQLite.
    pub fn db_dir(&self) -> Option<std::path::PathBuf> {
        self._dir.as_ref().map(|d| d.path().to_owned())
    }

    pub fn link_service(&self) -> LinkService {
        LinkService::new(
            self.store.clone(),
            self.plaid.clone(),
            self.vault.clone(),
            self.queue.clone(),
            url::Url::parse("http://127.0.0.1:9/webhooks/plaid").unwrap(),
            "banksync tests".into(),
        )
    }

    pub fn refresher(&self, options: BalanceOptions) -> BalanceRefresher {
        BalanceRefresher::new(self.store.clone(), self.plaid.clone(), self.vault.clone(), options)
    }

    pub async fn public_token(&self, institution: &str, username: &str) -> String {
        let request = SandboxPublicTokenCreateRequest::new(institution, [Product::Transactions])
            .credentials(username, "pass_good")
            .days_requested(730);
        let created = self.plaid.sandbox_public_token_create(&request).await.unwrap();
        created.public_token.expose_secret().to_owned()
    }

    /// Links an Item the way the link flow stores it, but without the background first sync, so a test controls
    /// every sync.
    pub async fn new_item(&self, institution: &str, username: &str) -> Item {
        let public_token = self.public_token(institution, username).await;
        let exchanged = self.plaid.item_public_token_exchange(&plaid::PublicToken::new(public_token)).await.unwrap();
        let secret = SecretString::from(exchanged.access_token.expose_secret().to_owned());
        let sealed = self.vault.encrypt(&secret, &exchanged.item_id).unwrap();
        let item = self
            .store
            .insert_item(&NewItem {
                item_id: exchanged.item_id.clone().into(),
                user_id: self.user.id.clone(),
                institution_id: Some(institution.to_owned()),
                institution_name: None,
                access_token: sealed,
            })
            .await
            .unwrap();
        let accounts = self.plaid.accounts_get(&AccountsGetRequest::new(exchanged.access_token)).await.unwrap();
        let now = chrono::Utc::now();
        let accounts: Vec<_> = accounts
            .accounts
            .iter()
            .map(|a| banksync::normalize::account(a, banksync::domain::BalanceSource::Cached, now))
            .collect();
        self.store.upsert_accounts(&item, &accounts, true).await.unwrap();
        item
    }

    pub async fn item(&self, item_id: &PlaidItemId) -> Item {
        self.store.get_item(&self.user.id, item_id).await.unwrap()
    }

    pub fn access_token(&self, item: &Item) -> AccessToken {
        AccessToken::from(self.vault.decrypt(&item.access_token, item.item_id.as_str()).unwrap())
    }

    pub async fn sim_post(&self, path: &str, body: Value) -> Value {
        sim::post(&self.http, &self.sim.url(), path, body).await
    }

    pub async fn sim_get(&self, path: &str) -> Value {
        sim::get(&self.http, &self.sim.url(), path).await
    }

    pub async fn fault(&self, spec: Value) {
        self.sim_post("/sim/faults", spec).await;
    }

    pub async fn advance(&self, item_id: &PlaidItemId, days: u32) -> Value {
        self.sim_post(&format!("/sim/items/{item_id}/advance"), json!({"days": days})).await
    }

    /// The simulator's ground truth, by transaction_id.
    pub async fn ground_truth(&self, item_id: &PlaidItemId) -> BTreeMap<String, Value> {
        let v = self.sim_get(&format!("/sim/items/{item_id}/transactions")).await;
        v["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["transaction_id"].as_str().unwrap().to_owned(), t.clone()))
            .collect()
    }

    /// Every visible stored transaction of the Item, through keyset pagination.
    pub async fn stored(&self, item_id: &PlaidItemId) -> BTreeMap<String, banksync::domain::Transaction> {
        let mut all = BTreeMap::new();
        let mut after = None;
        loop {
            let filter = TransactionFilter { item_id: Some(item_id.clone()), limit: 500, after, ..Default::default() };
            let page = self.store.list_transactions(&self.user.id, &filter).await.unwrap();
            for t in page.items {
                let id = t.transaction_id.to_string();
                assert!(all.insert(id.clone(), t).is_none(), "transaction {id} listed twice");
            }
            match page.next_cursor {
                Some(c) => after = Some(c),
                None => return all,
            }
        }
    }

    /// The store shows exactly the simulator's transactions: same ids, amounts, pending flags and names.
    pub async fn assert_converged(&self, item_id: &PlaidItemId) -> usize {
        let truth = self.ground_truth(item_id).await;
        let stored = self.stored(item_id).await;
        let truth_ids: Vec<_> = truth.keys().collect();
        let stored_ids: Vec<_> = stored.keys().collect();
        if truth_ids != stored_ids {
            let missing: Vec<_> = truth.keys().filter(|k| !stored.contains_key(*k)).take(5).collect();
            let extra: Vec<_> = stored.keys().filter(|k| !truth.contains_key(*k)).take(5).collect();
            panic!(
                "ids differ: {} in the simulator, {} stored; missing e.g. {missing:?}, extra e.g. {extra:?}",
                truth.len(),
                stored.len()
            );
        }
        for (id, t) in &truth {
            let s = &stored[id];
            let amount = Decimal::from_str(&t["amount"].to_string()).unwrap();
            assert_eq!(s.fields.amount, amount, "{id} amount");
            assert_eq!(s.fields.pending, t["pending"].as_bool().unwrap(), "{id} pending");
            assert_eq!(s.fields.name, t["name"].as_str().unwrap(), "{id} name");
            assert_eq!(s.fields.merchant_name.as_deref(), t["merchant_name"].as_str(), "{id} merchant_name");
            assert_eq!(s.fields.account_id, t["account_id"].as_str().unwrap(), "{id} account");
            assert_eq!(
                s.fields.pending_transaction_id.as_ref().map(TransactionId::as_str),
                t["pending_transaction_id"].as_str(),
                "{id} pending id"
            );
        }
        truth.len()
    }

    pub async fn accounts(&self, item_id: &PlaidItemId) -> Vec<banksync::domain::Account> {
        let filter = AccountFilter { item_id: Some(item_id.clone()), include_removed: false };
        self.store.list_accounts(&self.user.id, &filter).await.unwrap()
    }

    /// Waits until `check` holds (polling the store), or panics after `limit`.
    pub async fn eventually<F, Fut>(&self, what: &str, limit: Duration, check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        eventually::eventually(what, limit, check).await;
    }
}

/// Logs in through the simulator's Link backend in update mode.
pub async fn repair_through_link(env: &Env, link_token: &str) {
    let started = env.sim_post("/link/session/start", json!({"link_token": link_token})).await;
    assert_eq!(started["mode"], "update");
    let institution = started["institution"]["institution_id"].as_str().unwrap().to_owned();
    env.sim_post(
        "/link/session/submit",
        json!({"link_token": link_token, "link_session_id": started["link_session_id"],
            "institution_id": institution, "username": "user_good", "password": "pass_good"}),
    )
    .await;
}
