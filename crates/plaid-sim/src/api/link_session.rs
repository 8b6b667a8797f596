//! The backend of the drop-in Link script: serves the script and runs a Link session (institution
//! picker + credentials, or an OAuth institution's round trip through its bank page, see `oauth.rs`) that creates
//! an Item, or repairs one in update mode (with credentials, or through the bank's page for an OAuth bank).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use super::errors::ApiError;
use super::{Req, json_response, req_str};
use crate::persist::{ItemChange, Op};
use crate::state::{CreateItem, LinkMode, LinkToken, SimState};
use crate::world::institutions::{INSTITUTIONS, Institution};

const LINK_JS: &str = include_str!("../../assets/link-initialize.js");

pub async fn script() -> Response {
    ([(header::CONTENT_TYPE, "application/javascript; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], LINK_JS)
        .into_response()
}

fn parse(body: &Bytes) -> Result<Req, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(ApiError::invalid_body()),
    }
}

fn respond(result: Result<Value, ApiError>) -> Response {
    match result {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => e.into_response(),
    }
}

fn valid_token(state: &SimState, token: &str) -> Result<LinkToken, ApiError> {
    let tokens = state.link_tokens.lock();
    let t = tokens
        .get(token)
        .ok_or_else(|| ApiError::invalid_link_token("provided link token is invalid or does not exist"))?;
    if state.clock.now() >= t.expires_at {
        return Err(ApiError::invalid_link_token("provided link token has expired"));
    }
    Ok(t.clone())
}

fn institution_json(id: &str, name: &str) -> Value {
    json!({ "institution_id": id, "name": name })
}

/// Runs `f` for a request naming a live link token and one of its Link sessions.
pub fn respond_with(
    state: &SimState,
    body: &Bytes,
    f: impl FnOnce(&SimState, &Req, &str, &str) -> Result<Value, ApiError>,
) -> Response {
    respond((|| {
        let req = parse(body)?;
        let link_token = req_str(&req, "", "link_token")?;
        let session = req_str(&req, "", "link_session_id")?;
        valid_token(state, link_token)?;
        if state.link_sessions.lock().get(session).map(String::as_str) != Some(link_token) {
            return Err(ApiError::invalid_field("link_session_id does not belong to this link token"));
        }
        f(state, &req, link_token, session)
    })())
}

/// What Link's `onSuccess` gets for a new or repaired Item: a public token and Plaid's metadata.
pub fn success(state: &SimState, item_id: &str, institution: &Institution, session: &str) -> Result<Value, ApiError> {
    let shared = state.item_by_id(item_id).ok_or_else(|| ApiError::invalid_link_token("the Item no longer exists"))?;
    let accounts = shared.lock().link_accounts_json();
    Ok(json!({
        "public_token": state.issue_public_token(item_id)?,
        "metadata": {
            "institution": institution_json(institution.id, institution.name),
            "accounts": accounts,
            "link_session_id": session,
            "transfer_status": null,
        },
    }))
}

pub async fn start(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    respond(run_start(&state, &body))
}

fn run_start(state: &SimState, body: &Bytes) -> Result<Value, ApiError> {
    let req = parse(body)?;
    let link_token = req_str(&req, "", "link_token")?;
    let token = valid_token(state, link_token)?;
    // Re-created after an OAuth bank's redirect: continue the Link session that went to the bank.
    let received = match req.get("received_redirect_uri") {
        None | Some(Value::Null) => None,
        Some(Value::String(uri)) => Some(super::oauth::resume(state, link_token, uri)?),
        Some(_) => return Err(ApiError::invalid_field("received_redirect_uri must be a string")),
    };
    let session = match &received {
        Some((_, oauth)) => oauth.link_session_id.clone(),
        None => {
            let session = format!("link-session-{}", uuid::Uuid::new_v4());
            state.commit(&Op::LinkSession { session: session.clone(), link_token: link_token.to_owned() })?;
            session
        }
    };
    let oauth = received.map(|(id, oauth)| {
        let inst = SimState::institution(oauth.institution_id).expect("OAuth states name known institutions");
        json!({ "oauth_state_id": id, "institution": institution_json(inst.id, inst.name) })
    });
    let (mode, institution) = match &token.mode {
        LinkMode::Create { .. } => ("create", Value::Null),
        LinkMode::Update { item_id } => {
            let inst = state.item_by_id(item_id).map(|i| i.lock().institution).ok_or_else(|| {
                ApiError::invalid_link_token("the Item of this update-mode link token no longer exists")
            })?;
            // `oauth` tells the script to send the user to the bank's page instead of asking for credentials.
            let mut json = institution_json(inst.id, inst.name);
            json["oauth"] = Value::Bool(inst.oauth);
            ("update", json)
        }
    };
    Ok(json!({
        "link_session_id": session,
        "mode": mode,
        "client_name": token.client_name,
        "institutions": INSTITUTIONS
            .iter()
            .map(|i| json!({ "institution_id": i.id, "name": i.name, "oauth": i.oauth }))
            .collect::<Vec<_>>(),
        "institution": institution,
        "oauth": oauth,
    }))
}

pub async fn submit(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    respond(run_submit(&state, &body))
}

fn run_submit(state: &SimState, body: &Bytes) -> Result<Value, ApiError> {
    let req = parse(body)?;
    let link_token = req_str(&req, "", "link_token")?;
    let session = req_str(&req, "", "link_session_id")?;
    let username = req_str(&req, "", "username")?;
    let password = req_str(&req, "", "password")?;
    let token = valid_token(state, link_token)?;
    if state.link_sessions.lock().get(session).map(String::as_str) != Some(link_token) {
        return Err(ApiError::invalid_field("link_session_id does not belong to this link token"));
    }
    let (item_id, institution) = match token.mode {
        LinkMode::Create { webhook, days, products } => {
            let institution_id = req_str(&req, "", "institution_id")?;
            let institution = SimState::institution(institution_id)
                .ok_or_else(|| ApiError::invalid_field(format!("unknown institution_id {institution_id}")))?;
            if institution.oauth {
                return Err(ApiError::invalid_field(format!(
                    "{institution_id} logs in through OAuth (/link/session/oauth), not with credentials"
                )));
            }
            let item_id = state.create_item(CreateItem { institution, username, password, webhook, days, products })?;
            (item_id, institution)
        }
        LinkMode::Update { item_id } => {
            let shared = state.item_by_id(&item_id).ok_or_else(|| {
                ApiError::invalid_link_token("the Item of this update-mode link token no longer exists")
            })?;
            let mut item = shared.lock();
            if item.institution.oauth {
                return Err(ApiError::invalid_field(format!(
                    "{} logs in through OAuth (/link/session/oauth), not with credentials",
                    item.institution.id
                )));
            }
            // The user must log in as the Item's own user; a repair clears ITEM_LOGIN_REQUIRED.
            SimState::check_credentials(username, password)?;
            if username != item.username {
                return Err(ApiError::invalid_credentials());
            }
            state.change_item(&mut item, ItemChange::LoginRequired { required: false })?;
            (item_id.clone(), item.institution)
        }
    };
    success(state, &item_id, institution, session)
}
