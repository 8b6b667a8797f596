//! `GET /api/openapi.json`: a valid OpenAPI 3.x document, served without credentials, that lists exactly the
//! routes the server answers. The route list is not kept by hand here: it comes from the router.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde_json::Value;

use crate::helpers::spawn_app;

const OPERATION_KEYS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// `(METHOD, path)` of every operation in the document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths is an object") {
        for method in OPERATION_KEYS {
            if item.get(method).is_some() {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// The paths in the axum router's own route table (its `Debug` form lists them: `node: Node { paths: {RouteId(n):
/// "/path", …} }`). Only the main path router's part is read, not the fallback's.
fn router_paths(debug: &str) -> BTreeSet<String> {
    let main = debug.split("fallback_router").next().unwrap();
    let table = main.split("node: Node { paths: {").nth(1).expect("the router's Debug output lists its paths");
    // The quoted strings up to the map's closing brace (paths contain braces only inside their quotes).
    let (mut paths, mut current, mut quoted, mut escaped) = (BTreeSet::new(), String::new(), false, false);
    for c in table.chars() {
        match (quoted, c) {
            (true, _) if escaped => {
                current.push(c);
                escaped = false;
            }
            (true, '\\') => escaped = true,
            (true, '"') => {
                paths.insert(std::mem::take(&mut current));
                quoted = false;
            }
            (true, _) => current.push(c),
            (false, '"') => quoted = true,
            (false, '}') => break,
            (false, _) => {}
        }
    }
    paths
}

/// `"#/components/schemas/X"` references anywhere in `value`.
fn refs(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.insert(r.clone());
            }
            map.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_openapi_document_lists_every_registered_route() {
    let app = spawn_app().await;

    // No credentials: the document describes the API, not anyone's data.
    let response = app.http.get(app.url("/api/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/json"), "{content_type}");
    let doc: Value = response.json().await.unwrap();

    // A well-formed OpenAPI 3.x document.
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "openapi: {}", doc["openapi"]);
    assert_eq!(doc["info"]["title"], "banksync");
    assert!(doc["info"]["version"].as_str().is_some_and(|v| !v.is_empty()));
    assert!(doc["paths"].as_object().is_some_and(|p| !p.is_empty()));
    let schemas = doc["components"]["schemas"].as_object().expect("components.schemas");
    let schemes = doc["components"]["securitySchemes"].as_object().expect("components.securitySchemes");
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(
        (&schemes["session"]["in"], &schemes["session"]["name"]),
        (&"cookie".into(), &"banksync_session".into())
    );
    assert_eq!((&schemes["csrf"]["in"], &schemes["csrf"]["name"]), (&"header".into(), &"X-CSRF-Token".into()));
    let mut operation_ids = BTreeMap::new();
    for (method, path) in operations(&doc) {
        let operation = &doc["paths"][&path][method.to_lowercase()];
        let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId"));
        if let Some(other) = operation_ids.insert(id.to_owned(), format!("{method} {path}")) {
            panic!("operationId {id} is used by both {other} and {method} {path}");
        }
        let responses = operation["responses"].as_object().unwrap();
        assert!(responses.keys().any(|s| s.starts_with('2')), "{method} {path}: no success response");
        assert_eq!(
            responses["default"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorBody",
            "{method} {path}: errors are not documented"
        );
        // Every security requirement names a declared scheme.
        for requirement in operation["security"].as_array().into_iter().flatten() {
            for scheme in requirement.as_object().unwrap().keys() {
                assert!(schemes.contains_key(scheme), "{method} {path}: unknown security scheme {scheme}");
            }
        }
    }
    let mut all_refs = BTreeSet::new();
    refs(&doc, &mut all_refs);
    for r in &all_refs {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(schemas.contains_key(name), "$ref {r} points nowhere");
    }

    // The served document is the one the router's registration produced…
    let registered = serde_json::to_value(banksync::http::openapi()).unwrap();
    assert_eq!(doc, registered, "the served document differs from the routes' registration");
    // …and the router registered exactly its paths: the axum router's own route table, no more, no less.
    let (router, _) = banksync::http::routes().split_for_parts();
    let routed = router_paths(&format!("{router:?}"));
    let documented: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(routed, documented, "routes registered without documentation, or documented without a route");

    // Per path, the methods match too: each documented operation reaches its handler (whatever it then answers
    // without credentials), each other method is a 405. Requests carry no credentials, so nothing changes.
    let operations = operations(&doc);
    for path in &documented {
        let concrete = path.split('/').map(|s| if s.starts_with('{') { "x" } else { s }).collect::<Vec<_>>().join("/");
        for method in [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let reply = app.reply(app.http.request(method.clone(), app.url(&concrete)).send().await.unwrap()).await;
            let what = format!("{method} {concrete}: {} {}", reply.status, reply.body);
            if operations.contains(&(method.to_string(), path.clone())) {
                assert_ne!(reply.status, 405, "{what}");
                assert_ne!(reply.body["error"]["message"], "route not found", "{what}");
            } else {
                assert_eq!(reply.status, 405, "{what}");
                assert_eq!(reply.body["error"]["code"], "method_not_allowed", "{what}");
            }
        }
    }

    // A few routes everyone relies on.
    for (method, path) in [
        ("POST", "/api/link/exchange"),
        ("GET", "/api/transactions"),
        ("PATCH", "/api/transactions/{transaction_id}"),
        ("GET", "/api/balances/refresh/{job_id}"),
        ("POST", "/api/session"),
        ("GET", "/api/openapi.json"),
        ("GET", "/health"),
        ("POST", "/webhooks/plaid"),
    ] {
        assert!(operations.contains(&(method.into(), path.into())), "{method} {path} is missing");
    }
    let exchange = &doc["paths"]["/api/link/exchange"]["post"];
    assert_eq!(
        exchange["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ExchangeRequest"
    );
    assert_eq!(
        exchange["responses"]["201"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ItemView"
    );
    assert_eq!(
        exchange["responses"]["409"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody"
    );
    // Cookie-authenticated writes need the CSRF header; reads do not.
    assert_eq!(exchange["security"], serde_json::json!([{"bearer": []}, {"session": [], "csrf": []}]));
    assert_eq!(
        doc["paths"]["/api/transactions"]["get"]["security"],
        serde_json::json!([{"bearer": []}, {"session": []}])
    );
    // Money is a decimal string. A transaction's Plaid fields are one schema (declared once, flattened into the view).
    let view = serde_json::to_string(&schemas["TransactionView"]).unwrap();
    assert!(view.contains("#/components/schemas/TransactionFields"), "{view}");
    assert_eq!(schemas["TransactionFields"]["properties"]["amount"]["type"], "string");
    assert_eq!(schemas["ErrorBody"]["properties"]["error"]["$ref"], "#/components/schemas/ErrorDetail");
}
