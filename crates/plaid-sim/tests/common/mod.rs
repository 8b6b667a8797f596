//! Helpers shared by the simulator's integration tests: a simulator on a loopback port and a
//! tiny Plaid caller built on reqwest + serde_json.
#![allow(dead_code)]

use plaid_sim::{RunningSim, SimConfig, Simulator};
use serde_json::{Value, json};

pub struct Sim {
    pub running: RunningSim,
    pub http: reqwest::Client,
}

pub async fn start(config: SimConfig) -> Sim {
    let running =
        Simulator::new(config).spawn("127.0.0.1:0".parse().expect("loopback address")).await.expect("simulator starts");
    Sim { running, http: reqwest::Client::new() }
}

pub async fn start_default() -> Sim {
    start(SimConfig::default()).await
}

impl Sim {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.url())
    }

    /// POSTs to a Plaid endpoint with the header credentials; returns (status, body).
    pub async fn plaid(&self, path: &str, body: Value) -> (u16, Value) {
        let config = self.running.simulator().config();
        let res = self
            .http
            .post(self.url(path))
            .header("PLAID-CLIENT-ID", &config.client_id)
            .header("PLAID-SECRET", &config.secret)
            .header("Plaid-Version", "2020-09-14")
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.expect("json body"))
    }

    /// Like `plaid` but panics unless the call succeeds.
    pub async fn ok(&self, path: &str, body: Value) -> Value {
        let (status, v) = self.plaid(path, body).await;
        assert_eq!(status, 200, "{path}: {v}");
        assert!(v["request_id"].is_string(), "{path}: no request_id in {v}");
        v
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let res = self.http.get(self.url(path)).send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.expect("json body"))
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self.http.post(self.url(path)).json(&body).send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.expect("json body"))
    }

    /// Creates an Item through the sandbox endpoint; returns (access_token, item_id).
    pub async fn item_with(&self, institution: &str, options: Value) -> (String, String) {
        let created = self
            .ok(
                "/sandbox/public_token/create",
                json!({"institution_id": institution, "initial_products": ["transactions"], "options": options}),
            )
            .await;
        let exchanged = self.ok("/item/public_token/exchange", json!({"public_token": created["public_token"]})).await;
        (
            exchanged["access_token"].as_str().expect("access_token").to_owned(),
            exchanged["item_id"].as_str().expect("item_id").to_owned(),
        )
    }

    pub async fn item(&self) -> (String, String) {
        self.item_with("ins_109508", json!({"transactions": {"days_requested": 730}})).await
    }

    pub async fn ground_truth(&self, item_id: &str) -> Vec<Value> {
        let (status, v) = self.get(&format!("/sim/items/{item_id}/transactions")).await;
        assert_eq!(status, 200);
        v["transactions"].as_array().expect("transactions").clone()
    }

    /// Runs one sync page.
    pub async fn sync_page(&self, token: &str, cursor: &str, count: u64) -> (u16, Value) {
        self.plaid("/transactions/sync", json!({"access_token": token, "cursor": cursor, "count": count})).await
    }
}

/// A client-side store: applies sync pages the way the docs say.
#[derive(Default)]
pub struct Store {
    pub txns: std::collections::BTreeMap<String, Value>,
    pub cursor: String,
}

pub enum Outcome {
    Done { pages: usize },
    Restarted,
}

impl Store {
    /// One full sync loop from the stored cursor; buffers pages and applies them only at the end.
    /// Returns Restarted if a page failed with TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION.
    pub async fn sync(&mut self, sim: &Sim, token: &str, count: u64) -> Outcome {
        let mut cursor = self.cursor.clone();
        let mut pages = Vec::new();
        loop {
            let (status, page) = sim.sync_page(token, &cursor, count).await;
            if status != 200 {
                assert_eq!(page["error_code"], "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION", "{page}");
                return Outcome::Restarted;
            }
            let n = page["added"].as_array().map_or(0, Vec::len)
                + page["modified"].as_array().map_or(0, Vec::len)
                + page["removed"].as_array().map_or(0, Vec::len);
            assert!(n as u64 <= count, "page larger than count");
            cursor = page["next_cursor"].as_str().expect("cursor").to_owned();
            let more = page["has_more"].as_bool().expect("has_more");
            pages.push(page);
            if !more {
                break;
            }
        }
        for page in &pages {
            for t in
                page["added"].as_array().into_iter().flatten().chain(page["modified"].as_array().into_iter().flatten())
            {
                self.txns.insert(t["transaction_id"].as_str().expect("id").to_owned(), t.clone());
            }
            for r in page["removed"].as_array().into_iter().flatten() {
                self.txns.remove(r["transaction_id"].as_str().expect("id"));
            }
        }
        self.cursor = cursor;
        Outcome::Done { pages: pages.len() }
    }

    pub fn values(&self) -> Vec<Value> {
        self.txns.values().cloned().collect()
    }
}
