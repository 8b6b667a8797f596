//! The authorization matrix: every operation the OpenAPI document lists (so every route the router serves: the
//! openapi test proves the two are the same list) × every kind of caller, with the route list read from
//! `banksync::http::openapi()` at run time. A route another helper adds tomorrow is covered without editing this file;
//! a route with a path, query or body parameter this file has never seen fails the test until someone decides what
//! to put there ([`ID_PARAMS`], [`PLAIN_FIELDS`]), and a route without `security` fails until it is added to
//! [`PUBLIC`] with the reason it is public.
//!
//! The owner ("alice", the harness's user) has one of every kind of id: an Item, its accounts and transactions, a balance job, a sync job,
//! an API token, a live session. The callers:
//! - nobody (no credentials), alice's expired session, alice's revoked API token: every secured operation is a 401;
//! - alice's session cookie without the CSRF header: every cookie write whose security asks for `csrf` is a 403;
//! - mallory (another user) by bearer token and by session cookie + CSRF, with alice's ids in every path, query and
//!   body parameter that takes one: an operation that names one of alice's ids is a 404 (or 403), and no answer shows
//!   any of alice's ids, names or secrets; afterwards alice's data is exactly as before (same Item, accounts,
//!   transactions with their notes, tokens, and his session still works).

use std::collections::{BTreeMap, BTreeSet};

use banksync::auth::token::{hash_secret, random_secret};
use banksync::domain::NewSession;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Db, PASSWORD, TestApp, seed_user, spawn_app};
use crate::sync::wait_for_first_sync;

/// Operations that answer without credentials, and why that is on purpose.
const PUBLIC: &[(&str, &str, &str)] = &[
    ("GET", "/health", "load balancers probe it; it reports only whether the database answers"),
    ("GET", "/api/openapi.json", "describes the API, holds no data"),
    ("GET", "/api/config", "what the page needs before login (demo mode, Link's environment), no user data"),
    ("POST", "/api/session", "logging in is how a caller gets credentials"),
    (
        "POST",
        "/api/setup",
        "first-run setup creates the first user: only while there is none, from this machine or with the logged setup code",
    ),
    ("GET", "/api/setup", "whether first-run setup is needed, so the page can offer it; no user data"),
    ("GET", "/", "the web app's HTML (the same shell on every page path; data comes from the API)"),
    ("GET", "/transactions", "the web app's HTML shell"),
    ("GET", "/spending", "the web app's HTML shell"),
    ("GET", "/banks", "the web app's HTML shell"),
    ("GET", "/settings", "the web app's HTML shell"),
    ("GET", "/setup", "the web app's HTML shell"),
    ("GET", "/login", "the web app's HTML shell"),
    ("GET", "/oauth-return", "the web app's HTML shell, where an OAuth bank sends the browser back"),
    ("GET", "/assets/{name}", "the web app's scripts, styles and vendored files, compiled into the binary"),
];

/// Parameters (path, query or JSON body field) that take an id of some kind: filled with the owner's ids.
const ID_PARAMS: &[&str] = &[
    "item_id",
    "account_id",
    "transaction_id",
    "job_id",
    "token_id",
    "replaces_item_id",
    "session_id",
    "user_id",
    "id",
];

/// Body fields that take no id, with what mallory sends in them (valid values, so the request reaches the check of
/// whose data it is, not a 400 for a malformed body).
fn plain_field(name: &str) -> Option<Value> {
    Some(match name {
        "note" => json!("mallory was here"),
        "category" => json!("Mallory"),
        "name" => json!("mallory's token"),
        "public_token" => json!("public-sandbox-00000000-0000-0000-0000-000000000000"),
        "username" => json!("mallory"),
        "password" => json!(PASSWORD),
        "metadata" => Value::Null,
        "allow_duplicate" => json!(false),
        // A wrong current password: mallory's own password change is refused, so her sessions stay for the probes.
        "current_password" => json!("not mallory's password"),
        "new_password" => json!("mallory-new-password"),
        "setup_code" => json!("AAAA-BBBB-CCCC"),
        _ => return None,
    })
}

/// Query parameters that take no id and may be left out.
const PLAIN_QUERY: &[&str] = &[
    "include_removed",
    "wait",
    "start",
    "end",
    "pending",
    "limit",
    "cursor",
    "min_amount",
    "max_amount",
    "q",
    "search",
    "category",
    "order",
    "sort",
    "from",
    "to",
    "effective_category",
    "detailed_category",
    "oauth_state_id",
];

const OPERATION_KEYS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// One documented operation.
struct Operation {
    method: Method,
    path: String,
    /// Its security requirements' scheme names (empty: public).
    schemes: Vec<BTreeSet<String>>,
    path_params: Vec<String>,
    query_params: Vec<(String, bool)>,
    /// Body property names and whether the body is required, when it takes a JSON body.
    body_fields: Option<Vec<String>>,
}

impl Operation {
    fn is_public(&self) -> bool {
        self.schemes.is_empty()
    }
    /// Authenticates users (bearer or session), as opposed to Plaid's signed webhooks.
    fn is_user_route(&self) -> bool {
        self.schemes.iter().any(|s| s.contains("bearer") || s.contains("session"))
    }
    /// A cookie-authenticated call needs the CSRF header.
    fn needs_csrf(&self) -> bool {
        self.schemes.iter().any(|s| s.contains("session") && s.contains("csrf"))
    }
    fn what(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// Follows `$ref`s (and `oneOf`/`anyOf`/`allOf` wrappers such as an optional body's) to the property names.
fn properties(doc: &Value, schema: &Value) -> Vec<String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("unexpected $ref {r}"));
        return properties(doc, &doc["components"]["schemas"][name]);
    }
    let mut out: Vec<String> =
        schema.get("properties").and_then(Value::as_object).map(|p| p.keys().cloned().collect()).unwrap_or_default();
    for key in ["oneOf", "anyOf", "allOf"] {
        for part in schema.get(key).and_then(Value::as_array).into_iter().flatten() {
            out.extend(properties(doc, part));
        }
    }
    out
}

fn operations(doc: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for key in OPERATION_KEYS {
            let Some(op) = item.get(key) else { continue };
            let schemes = op["security"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|req| req.as_object().unwrap().keys().cloned().collect::<BTreeSet<_>>())
                .filter(|s| !s.is_empty())
                .collect();
            let (mut path_params, mut query_params) = (Vec::new(), Vec::new());
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap().to_owned();
                match p["in"].as_str() {
                    Some("path") => path_params.push(name),
                    Some("query") => query_params.push((name, p["required"] == true)),
                    _ => {}
                }
            }
            // Path parameters the document forgot are still in the path template.
            for segment in path.split('/') {
                if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}'))
                    && !path_params.iter().any(|p| p == name)
                {
                    path_params.push(name.to_owned());
                }
            }
            let body_fields = op["requestBody"]["content"]["application/json"]["schema"]
                .as_object()
                .map(|schema| properties(doc, &Value::Object(schema.clone())));
            out.push(Operation {
                method: key.to_uppercase().parse().unwrap(),
                path: path.clone(),
                schemes,
                path_params,
                query_params,
                body_fields,
            });
        }
    }
    // Logging out and signing out the other sessions end the caller's own sessions (a bearer caller's "others" are
    // all of them): keep those for last so the other probes still use one.
    out.sort_by_key(|op| {
        (op.method == Method::POST && op.path == "/api/sessions/sign-out-others")
            || (op.method == Method::DELETE && op.path == "/api/session")
    });
    out
}

/// How a probe authenticates.
#[derive(Clone)]
enum Credentials {
    None,
    Bearer(String),
    /// Session cookie, with the CSRF token when `Some`.
    Cookie(String, Option<String>),
}

/// A caller of the matrix and what it must get.
struct Caller {
    name: &'static str,
    credentials: Credentials,
    expect: Expect,
}

#[derive(Clone, Copy, PartialEq)]
enum Expect {
    /// 401 on every secured operation.
    Unauthenticated,
    /// 403 on every cookie write that needs CSRF (the rest is not probed: the cookie itself is valid).
    CsrfRefused,
    /// Another user: alice's ids are 404/403, nothing of alice's shows.
    Intruder,
}

/// The owner's ids, by parameter name (a parameter that takes ids of two kinds, like `job_id`, gets each).
struct Ids(BTreeMap<&'static str, Vec<String>>);

impl Ids {
    fn values(&self, param: &str, what: &str) -> &[String] {
        self.0.get(param).map(Vec::as_slice).unwrap_or_else(|| {
            panic!(
                "{what}: parameter {param:?} is new to the authorization matrix: add it to ID_PARAMS (and give alice \
                 such an id) or, if it takes no id, to plain_field/PLAIN_QUERY"
            )
        })
    }
}

/// The request a probe sends: the concrete path with query, the JSON body, and where it names one of alice's ids.
struct Probe {
    url_path: String,
    body: Option<Value>,
    /// In the path: the resource itself is alice's, so the answer is 404 (or 403).
    owner_id_in_path: bool,
    /// In the body: the request is refused (4xx); which refusal comes first (e.g. an invalid public token before the
    /// Item it would replace) is the handler's choice.
    owner_id_in_body: bool,
}

fn probes(op: &Operation, ids: &Ids) -> Vec<Probe> {
    let what = op.what();
    // Every combination would explode for nothing: one probe per value of each id parameter, others at their first.
    let mut choices: Vec<(String, Vec<String>)> = Vec::new();
    for p in &op.path_params {
        // Not an id: the page's asset name (`/assets/{name}`, public), probed with a real one.
        if p == "name" && op.is_public() {
            choices.push((p.clone(), vec!["app.js".to_owned()]));
            continue;
        }
        assert!(ID_PARAMS.contains(&p.as_str()), "{what}: path parameter {p:?} is new to the authorization matrix");
        choices.push((p.clone(), ids.values(p, &what).to_vec()));
    }
    let mut query = Vec::new();
    for (name, required) in &op.query_params {
        if ID_PARAMS.contains(&name.as_str()) {
            query.push((name.clone(), ids.values(name, &what)[0].clone()));
        } else {
            assert!(
                PLAIN_QUERY.contains(&name.as_str()) && !required,
                "{what}: query parameter {name:?} is new to the authorization matrix (required: {required})"
            );
        }
    }
    // Plaid's webhooks are not a user's: their body is Plaid's to choose, and no user id goes in it.
    let user_body = op.is_user_route() || op.is_public();
    let body = op.body_fields.as_ref().map(|fields| {
        if !user_body {
            return json!({});
        }
        let mut body = serde_json::Map::new();
        for field in fields {
            let value = if ID_PARAMS.contains(&field.as_str()) {
                Value::String(ids.values(field, &what)[0].clone())
            } else {
                plain_field(field).unwrap_or_else(|| {
                    panic!("{what}: body field {field:?} is new to the authorization matrix: add it to plain_field")
                })
            };
            body.insert(field.clone(), value);
        }
        Value::Object(body)
    });
    let names_in_body =
        user_body && op.body_fields.as_ref().is_some_and(|f| f.iter().any(|f| ID_PARAMS.contains(&f.as_str())));
    // A list filtered by another user's id is an empty list (200), so only path and body ids must be refused.
    let owner_id_in_path = !op.path_params.is_empty();

    let rounds = choices.iter().map(|(_, v)| v.len()).max().unwrap_or(1);
    (0..rounds)
        .map(|round| {
            let mut path = op.path.clone();
            for (name, values) in &choices {
                path = path.replace(&format!("{{{name}}}"), &values[round.min(values.len() - 1)]);
            }
            if !query.is_empty() {
                let q: Vec<String> =
                    query.iter().map(|(k, v)| format!("{k}={}", crate::app::client::urlencode(v))).collect();
                path = format!("{path}?{}", q.join("&"));
            }
            Probe { url_path: path, body: body.clone(), owner_id_in_path, owner_id_in_body: names_in_body }
        })
        .collect()
}

struct Answer {
    status: StatusCode,
    body: String,
    headers: reqwest::header::HeaderMap,
}

async fn send(app: &TestApp, op: &Operation, probe: &Probe, credentials: &Credentials) -> Answer {
    let mut request = app.http.request(op.method.clone(), app.url(&probe.url_path));
    match credentials {
        Credentials::None => {}
        Credentials::Bearer(token) => request = request.bearer_auth(token),
        Credentials::Cookie(session, csrf) => {
            request = request.header("cookie", format!("banksync_session={session}"));
            if let Some(csrf) = csrf {
                request = request.header("x-csrf-token", csrf);
            }
        }
    }
    if let Some(body) = &probe.body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("{}: {e}", op.what()));
    let (status, headers) = (response.status(), response.headers().clone());
    let streaming =
        headers.get("content-type").is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/event-stream"));
    // An event stream never ends: its first event (or nothing, within a second) is what it shows.
    let body = if streaming {
        let mut response = response;
        match tokio::time::timeout(std::time::Duration::from_secs(1), response.chunk()).await {
            Ok(Ok(Some(chunk))) => String::from_utf8_lossy(&chunk).into_owned(),
            _ => String::new(),
        }
    } else {
        response.text().await.unwrap()
    };
    Answer { status, body, headers }
}

/// Logs in by password: (session id, CSRF token).
async fn login(app: &TestApp, username: &str) -> (String, String) {
    let response = app
        .http
        .post(app.url("/api/session"))
        .json(&json!({"username": username, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "login as {username}");
    let cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    let session = cookie.split(';').next().unwrap().strip_prefix("banksync_session=").unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    (session, body["csrf_token"].as_str().unwrap().to_owned())
}

/// What a user can change of alice's, read through alice's own eyes: her Items, accounts and tokens (ids and names),
/// and every transaction's note and category. (Plaid's own updates, e.g. a follow-up sync posting a pending
/// transaction, may move other fields meanwhile; none of them is a user's to change.)
async fn owner_view(app: &TestApp, item_id: &str) -> Value {
    let notes: BTreeMap<String, (Value, Value)> = app
        .all_transactions(item_id)
        .await
        .into_iter()
        // Only edited ones: a follow-up sync may still be adding history, which no user changed.
        .filter(|t| !t["user_note"].is_null() || !t["user_category"].is_null())
        .map(|t| {
            (t["transaction_id"].as_str().unwrap().to_owned(), (t["user_note"].clone(), t["user_category"].clone()))
        })
        .collect();
    let ids = |list: &Value, key: &str, id: &str| -> Vec<(Value, Value)> {
        list[key].as_array().unwrap().iter().map(|x| (x[id].clone(), x["name"].clone())).collect()
    };
    let items = app.get_items().await.expect(200);
    let accounts = app.get_accounts().await.expect(200);
    let tokens = app.get("/api/tokens").await.expect(200);
    let items: Vec<Value> = items["items"].as_array().unwrap().iter().map(|i| i["item_id"].clone()).collect();
    assert!(!notes.is_empty(), "alice's note is there");
    json!({
        "items": items,
        "accounts": ids(&accounts, "accounts", "account_id"),
        "tokens": ids(&tokens, "tokens", "id"),
        "notes": notes,
    })
}

#[tokio::test]
async fn every_route_times_every_caller_is_authorized_from_the_openapi_route_list() {
    let app = spawn_app().await; // the owner is the harness's user, alice
    let owner = &app.user;

    // The owner's data: one id of every kind.
    let item = app.link_bank(0).await;
    let item_id = item["item_id"].as_str().unwrap().to_owned();
    wait_for_first_sync(&app, &item_id).await;
    let account_id = item["accounts"][0]["account_id"].as_str().unwrap().to_owned();
    let transaction_id = app.get_transactions("limit=1").await.expect(200)["transactions"][0]["transaction_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.patch_transaction(&transaction_id, json!({"note": "alice's note"})).await.expect(200);
    let balance_job = app.post_balances_refresh(None).await.expect(202)["job_id"].as_str().unwrap().to_owned();
    app.get_balance_job(&balance_job, 30).await.expect(200);
    let Db::Sqlite(pool) = &app.db else { unreachable!("the matrix runs on SQLite") };
    let sync_job: String = sqlx::query_scalar("SELECT id FROM jobs WHERE item_id = ? AND id <> ? LIMIT 1")
        .bind(&item_id)
        .bind(&balance_job)
        .fetch_one(pool)
        .await
        .expect("the first sync ran as a job");
    let token = app.post("/api/tokens", json!({"name": "alice's script"})).await.expect(201);
    let (token_id, token_secret) =
        (token["id"].as_str().unwrap().to_owned(), token["token"].as_str().unwrap().to_owned());
    let (alice_session, alice_csrf) = login(&app, &owner.username).await;

    // Bob's dead credentials: a revoked token and an expired session.
    let revoked = app.post("/api/tokens", json!({"name": "revoked"})).await.expect(201);
    app.delete(&format!("/api/tokens/{}", revoked["id"].as_str().unwrap())).await.expect(204);
    let expired_session = random_secret();
    let owner_id = app.store.find_user_by_username(&owner.username).await.unwrap().unwrap().id;
    // A merchant logo of alice's (`GET /api/logos/{id}`): the id in one of her transactions' `logo_path`.
    let logo_id = app.get_transactions("limit=500").await.expect(200)["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|t| t["logo_path"].as_str().map(|p| p.rsplit('/').next().unwrap().to_owned()))
        .expect("one of alice's transactions has a merchant logo");
    let alice_session_id = app.get("/api/sessions").await.expect(200)["sessions"][0]["id"]
        .as_str()
        .expect("alice's live session is listed")
        .to_owned();
    app.store
        .create_session(&NewSession {
            id_hash: hash_secret(&expired_session),
            public_id: random_secret(),
            user_id: owner_id.clone(),
            csrf_token: random_secret(),
            expires_at: chrono::Utc::now() - chrono::Duration::minutes(1),
            idle_expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
            user_agent: None,
        })
        .await
        .unwrap();

    // Mallory: a user of her own, by token and by session.
    let mallory = seed_user(&app.store, "mallory").await;
    let (mallory_session, mallory_csrf) = login(&app, "mallory").await;

    let ids = Ids(BTreeMap::from([
        ("item_id", vec![item_id.clone()]),
        ("account_id", vec![account_id.clone()]),
        ("transaction_id", vec![transaction_id.clone()]),
        ("job_id", vec![balance_job.clone(), sync_job.clone()]),
        ("token_id", vec![token_id.clone()]),
        // A relink names the Item it replaces: mallory naming alice's.
        ("replaces_item_id", vec![item_id.clone()]),
        ("session_id", vec![alice_session_id.clone()]),
        ("user_id", vec![owner_id.to_string()]),
        ("id", vec![logo_id.clone()]),
    ]));
    assert_eq!(ids.0.len(), ID_PARAMS.len(), "every id parameter has a value");
    // What must never appear in an answer to mallory: alice's ids, name and secrets.
    let owner_marks: Vec<String> = [
        &item_id,
        &account_id,
        &transaction_id,
        &balance_job,
        &sync_job,
        &token_id,
        &token_secret,
        &owner.token,
        &alice_session,
        &alice_csrf,
        &owner.username,
    ]
    .into_iter()
    .cloned()
    .chain(["alice's note".to_owned(), "alice's script".to_owned()])
    .collect();

    let before = owner_view(&app, &item_id).await;

    let callers = [
        Caller { name: "no credentials", credentials: Credentials::None, expect: Expect::Unauthenticated },
        Caller {
            name: "expired session",
            credentials: Credentials::Cookie(expired_session, Some(alice_csrf.clone())),
            expect: Expect::Unauthenticated,
        },
        Caller {
            name: "revoked token",
            credentials: Credentials::Bearer(revoked["token"].as_str().unwrap().to_owned()),
            expect: Expect::Unauthenticated,
        },
        Caller {
            name: "cookie without CSRF",
            credentials: Credentials::Cookie(alice_session.clone(), None),
            expect: Expect::CsrfRefused,
        },
        Caller {
            name: "other user's token",
            credentials: Credentials::Bearer(mallory.token),
            expect: Expect::Intruder,
        },
        Caller {
            name: "other user's session",
            credentials: Credentials::Cookie(mallory_session, Some(mallory_csrf)),
            expect: Expect::Intruder,
        },
    ];

    let doc = serde_json::to_value(banksync::http::openapi()).unwrap();
    let operations = operations(&doc);
    let public: BTreeSet<(String, String)> =
        PUBLIC.iter().map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned())).collect();
    let mut checked = BTreeMap::<&str, usize>::new();
    let mut requests = 0usize;
    for op in &operations {
        let key = (op.method.to_string(), op.path.clone());
        assert_eq!(
            op.is_public(),
            public.contains(&key),
            "{}: public in the document but not in PUBLIC (say why it is public), or the reverse",
            op.what()
        );
        for caller in &callers {
            let applies = match caller.expect {
                Expect::Unauthenticated => !op.is_public(),
                Expect::CsrfRefused => op.needs_csrf(),
                Expect::Intruder => op.is_user_route() || op.is_public(),
            };
            if !applies {
                continue;
            }
            for probe in probes(op, &ids) {
                let answer = send(&app, op, &probe, &caller.credentials).await;
                requests += 1;
                let what = format!("{} as {}: {} {}", probe.url_path, caller.name, answer.status, answer.body);
                let what = format!("{} {what}", op.method);
                assert!(!answer.status.is_server_error(), "{what}");
                match caller.expect {
                    Expect::Unauthenticated => {
                        assert_eq!(answer.status, 401, "{what}");
                        if op.is_user_route() {
                            let body: Value = serde_json::from_str(&answer.body).unwrap_or_default();
                            assert_eq!(body["error"]["code"], "unauthorized", "{what}");
                        }
                    }
                    Expect::CsrfRefused => assert_eq!(answer.status, 403, "{what}"),
                    Expect::Intruder => {
                        if probe.owner_id_in_path && op.is_user_route() {
                            assert!(matches!(answer.status.as_u16(), 403 | 404), "{what}");
                        } else if probe.owner_id_in_body && op.is_user_route() {
                            assert!(answer.status.is_client_error(), "{what}");
                        }
                        for mark in &owner_marks {
                            assert!(!answer.body.contains(mark.as_str()), "{what}: shows alice's {mark}");
                            for (name, value) in &answer.headers {
                                assert!(
                                    !value.to_str().unwrap_or("").contains(mark.as_str()),
                                    "{what}: header {name} shows alice's {mark}"
                                );
                            }
                        }
                    }
                }
            }
            *checked.entry(caller.name).or_default() += 1;
        }
    }

    // Bob's data is exactly as it was, and his own credentials still work.
    assert_eq!(owner_view(&app, &item_id).await, before, "a probe changed alice's data");
    app.call_as(&token_secret, Method::GET, "/api/session", None).await.expect(200);
    let me = app
        .http
        .get(app.url("/api/session"))
        .header("cookie", format!("banksync_session={alice_session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200, "alice's session survived the probes");

    let pairs: usize = checked.values().sum();
    println!(
        "authorization matrix: {} operations ({} public) × callers = {pairs} route×caller pairs, {requests} requests: \
         {checked:?}",
        operations.len(),
        public.len()
    );
    // The matrix checked something of every kind (a matrix that silently skipped everything would pass too).
    for caller in &callers {
        assert!(checked.get(caller.name).is_some_and(|n| *n > 0), "no operation was probed as {}", caller.name);
    }
}
