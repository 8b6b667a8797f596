//! Talking to a `TestApp`: requests as its user with decoded replies, one method per banksync endpoint so tests
//! read as scenarios, and the simulator's control and Link APIs.

use std::time::Duration;

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::{TestApp, sim};

/// A decoded response.
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.body);
        self.body
    }

    /// Asserts an error response: status and `error.code`.
    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) -> Value {
        let body = self.expect(status);
        assert_eq!(body["error"]["code"], code, "body: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "body: {body}");
        body
    }

    /// `(status, body)`, for tests that compare both at once.
    pub fn into_parts(self) -> (u16, Value) {
        (self.status.as_u16(), self.body)
    }
}

/// banksync's API writes money as decimal strings, never as JSON numbers (a client would read those as binary
/// floats): every `amount`, and every balance in a `balances` object, anywhere in a response. Checked on every
/// response the helpers decode (except Plaid's raw object, served verbatim), so no test can compare an amount that
/// arrived as a number.
#[track_caller]
pub fn assert_money_is_text(body: &Value) {
    match body {
        Value::Object(fields) => {
            for (key, value) in fields {
                if key == "amount" {
                    assert!(!value.is_number(), "money as a JSON number: \"amount\": {value} in {body}");
                }
                if key == "balances" && value.is_object() {
                    for balance in ["current", "available", "limit"] {
                        let v = &value[balance];
                        assert!(!v.is_number(), "money as a JSON number: balances.{balance}: {v} in {body}");
                    }
                }
                assert_money_is_text(value);
            }
        }
        Value::Array(items) => items.iter().for_each(assert_money_is_text),
        _ => {}
    }
}

pub fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn reply(&self, response: Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        // `GET /api/transactions/{id}/raw` passes Plaid's own object through verbatim, numbers and all.
        let plaid_verbatim = response.url().path().ends_with("/raw");
        let text = response.text().await.unwrap();
        self.bodies.lock().unwrap().push(text.clone());
        let body =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        if !plaid_verbatim {
            assert_money_is_text(&body);
        }
        Reply { status, body, headers }
    }

    /// A request as `token`'s user to the banksync at `base` (this app, or another instance on its database).
    pub async fn call_at(&self, base: &str, token: &str, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self.http.request(method, format!("{base}{path}")).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.reply(request.send().await.unwrap()).await
    }

    /// A request as `token`'s user.
    pub async fn call_as(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call_at(&self.address, token, method, path, body).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call_as(&self.user.token, Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call_as(&self.user.token, Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.call_as(&self.user.token, Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.call_as(&self.user.token, Method::DELETE, path, None).await
    }

    pub async fn raw_post(&self, path: &str, content_type: &str, body: impl Into<reqwest::Body>) -> Reply {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.user.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        self.reply(response).await
    }

    // --- banksync endpoints -------------------------------------------------------------------------------------

    pub async fn post_link_token(&self, item_id: Option<&str>) -> Reply {
        let body = match item_id {
            Some(id) => json!({"item_id": id}),
            None => json!({}),
        };
        self.post("/api/link/token", body).await
    }

    pub async fn post_exchange(&self, public_token: &str) -> Reply {
        self.post("/api/link/exchange", json!({"public_token": public_token})).await
    }

    pub async fn get_items(&self) -> Reply {
        self.get("/api/items").await
    }

    pub async fn get_item(&self, item_id: &str) -> Reply {
        self.get(&format!("/api/items/{item_id}")).await
    }

    pub async fn delete_item(&self, item_id: &str) -> Reply {
        self.delete(&format!("/api/items/{item_id}")).await
    }

    pub async fn post_sync(&self, item_id: &str) -> Reply {
        self.post(&format!("/api/items/{item_id}/sync"), json!({})).await
    }

    /// A manual sync that ran by itself. The first sync after linking runs in the background; a request arriving
    /// while it finishes joins it and gets its summary (`coalesced: true`), so ask again until a sync of our own ran.
    pub async fn post_fresh_sync(&self, item_id: &str) -> Reply {
        for _ in 0..50 {
            let reply = self.post_sync(item_id).await;
            if reply.status != 200 || reply.body["coalesced"] != true {
                return reply;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("every sync of {item_id} joined another one");
    }

    pub async fn post_repaired(&self, item_id: &str) -> Reply {
        self.post(&format!("/api/items/{item_id}/repaired"), json!({})).await
    }

    pub async fn get_accounts(&self) -> Reply {
        self.get("/api/accounts").await
    }

    pub async fn post_balances_refresh(&self, item_id: Option<&str>) -> Reply {
        let body = match item_id {
            Some(id) => json!({"item_id": id}),
            None => json!({}),
        };
        self.post("/api/balances/refresh", body).await
    }

    pub async fn get_balance_job(&self, job_id: &str, wait_secs: u64) -> Reply {
        self.get(&format!("/api/balances/refresh/{job_id}?wait={wait_secs}")).await
    }

    pub async fn get_transactions(&self, query: &str) -> Reply {
        self.get(&format!("/api/transactions?{query}")).await
    }

    pub async fn patch_transaction(&self, transaction_id: &str, body: Value) -> Reply {
        self.patch(&format!("/api/transactions/{transaction_id}"), body).await
    }

    /// Every transaction the API lists for `item_id`, following `next_cursor`.
    pub async fn all_transactions(&self, item_id: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = format!("item_id={item_id}&limit=500");
            if let Some(c) = &cursor {
                query.push_str(&format!("&cursor={}", urlencode(c)));
            }
            let page = self.get_transactions(&query).await.expect(200);
            for t in page["transactions"].as_array().unwrap() {
                assert!(t["amount"].is_string(), "a transaction's amount is a decimal string: {t}");
            }
            all.extend(page["transactions"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return all,
            }
        }
    }

    /// No response body so far contains an access token.
    #[track_caller]
    pub fn assert_no_access_token_in_responses(&self) {
        for body in self.bodies.lock().unwrap().iter() {
            assert!(!body.contains("access-"), "a response leaked an access token: {body}");
        }
    }

    // --- the simulator and Link ---------------------------------------------------------------------------------

    pub async fn sim_post(&self, path: &str, body: Value) -> Value {
        sim::post(&self.http, &self.sim_url, path, body).await
    }

    pub async fn sim_get(&self, path: &str) -> Value {
        sim::get(&self.http, &self.sim_url, path).await
    }

    /// Goes through the simulator's Link UI backend with a link token: returns the public token and Link's metadata.
    pub async fn complete_link(&self, link_token: &str, institution_index: usize) -> (String, Value) {
        let (_, done) = sim::link(&self.http, &self.sim_url, link_token, institution_index).await;
        (done["public_token"].as_str().unwrap().to_owned(), done["metadata"].clone())
    }

    /// Link token → Link → public token as `token`'s user, for a new Item at the `institution_index`-th bank.
    pub async fn public_token_as(&self, token: &str, institution_index: usize) -> String {
        let link = self.call_as(token, Method::POST, "/api/link/token", Some(json!({}))).await.expect(200);
        self.complete_link(link["link_token"].as_str().unwrap(), institution_index).await.0
    }

    pub async fn public_token(&self, institution_index: usize) -> String {
        self.public_token_as(&self.user.token, institution_index).await
    }

    /// Links a bank end to end as `token`'s user and returns the new Item's body.
    pub async fn link_bank_as(&self, token: &str, institution_index: usize) -> Value {
        let public_token = self.public_token_as(token, institution_index).await;
        let body = json!({"public_token": public_token});
        self.call_as(token, Method::POST, "/api/link/exchange", Some(body)).await.expect(201)
    }

    pub async fn link_bank(&self, institution_index: usize) -> Value {
        self.link_bank_as(&self.user.token, institution_index).await
    }
}
