//! OAuth institutions ("Platypus OAuth Bank", `ins_127287`, as in Plaid's sandbox): the user logs in at the bank's
//! own page instead of giving Link their credentials.
//!
//! 1. Link (the drop-in script) picks an OAuth institution → `POST /link/session/oauth` makes an `oauth_state_id`
//!    and answers the bank page's path; the script navigates the top window there. Without a `redirect_uri` on the
//!    link token the bank cannot send the user back, and Link reports Plaid's error instead.
//! 2. `GET /sim/oauth/authorize?oauth_state_id=…` is the bank's page: a form with an "Approve" button (no script,
//!    no inline style: its stylesheet is `/sim/oauth/bank.css`), `POST` approves and redirects (303) to
//!    `redirect_uri?oauth_state_id=…`.
//! 3. The app's page at `redirect_uri` re-creates Link with the same token and `receivedRedirectUri`;
//!    `/link/session/start` checks it (the same redirect URI as the token's, a known and approved state of this
//!    token) and Link finishes with `POST /link/session/oauth/complete`: the Item is created and `onSuccess` gets a
//!    public token, in the original Link session.
//!
//! Update mode (an OAuth Item whose login broke) takes the same round trip, as with Plaid: Link opens on the Item's
//! bank, the user continues to the bank's page and comes back, and `complete` repairs the Item (clears
//! ITEM_LOGIN_REQUIRED) instead of creating one. No credentials are ever asked for an OAuth bank.

use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::errors::ApiError;
use super::req_str;
use crate::persist::ItemChange;
use crate::state::{CreateItem, LinkMode, OAuthState, SimState};

const BANK_CSS: &str = include_str!("../../assets/oauth-bank.css");

/// The sandbox login the bank page stands for: an OAuth Item behaves like one linked as `user_good`.
const OAUTH_USER: (&str, &str) = ("user_good", "pass_good");

fn oauth_error(code: &str, message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "OAUTH_ERROR", code, message)
}

/// Step 1: an OAuth institution was picked. Answers `{authorize_path}`, relative to the simulator.
pub fn begin(state: &SimState, req: &super::Req, link_token: &str, session: &str) -> Result<Value, ApiError> {
    let institution_id = req_str(req, "", "institution_id")?;
    let institution = SimState::institution(institution_id)
        .filter(|i| i.oauth)
        .ok_or_else(|| ApiError::invalid_field(format!("{institution_id} is not an OAuth institution")))?;
    let token = state
        .link_tokens
        .lock()
        .get(link_token)
        .cloned()
        .ok_or_else(|| ApiError::invalid_link_token("provided link token is invalid or does not exist"))?;
    if token.redirect_uri.is_none() {
        return Err(ApiError::invalid_field(
            "OAuth institutions require a redirect_uri: set redirect_uri in /link/token/create (and allow it in the \
             Dashboard)",
        )
        .with_display("This bank can't be connected from here yet. Please choose another bank."));
    }
    if let LinkMode::Update { item_id } = &token.mode {
        let item_institution = state
            .item_by_id(item_id)
            .map(|i| i.lock().institution.id)
            .ok_or_else(|| ApiError::invalid_link_token("the Item of this update-mode link token no longer exists"))?;
        if item_institution != institution.id {
            return Err(ApiError::invalid_field(format!(
                "this update-mode link token repairs an Item at {item_institution}, not {institution_id}"
            )));
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    state.oauth_states.lock().insert(
        id.clone(),
        OAuthState {
            link_token: link_token.to_owned(),
            link_session_id: session.to_owned(),
            institution_id: institution.id,
            approved: false,
            used: false,
        },
    );
    Ok(json!({ "authorize_path": format!("/sim/oauth/authorize?oauth_state_id={id}") }))
}

/// Step 3a, inside `/link/session/start`: the state named by `received_redirect_uri`, checked against the token.
/// Answers the state id and the original Link session.
pub fn resume(state: &SimState, link_token: &str, received: &str) -> Result<(String, OAuthState), ApiError> {
    let url = url::Url::parse(received)
        .map_err(|_| ApiError::invalid_field("receivedRedirectUri must be the full URL the bank redirected to"))?;
    let id = url
        .query_pairs()
        .find(|(k, _)| k == "oauth_state_id")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| oauth_error("OAUTH_STATE_ID_NOT_FOUND", "receivedRedirectUri has no oauth_state_id"))?;
    let mut base = url.clone();
    base.set_query(None);
    base.set_fragment(None);
    let token_redirect = state.link_tokens.lock().get(link_token).and_then(|t| t.redirect_uri.clone());
    if token_redirect.as_deref().and_then(|r| url::Url::parse(r).ok()) != Some(base) {
        return Err(ApiError::invalid_field("receivedRedirectUri does not match the link token's redirect_uri"));
    }
    let oauth = state
        .oauth_states
        .lock()
        .get(&id)
        .cloned()
        .ok_or_else(|| oauth_error("OAUTH_STATE_ID_NOT_FOUND", "the oauth_state_id is unknown"))?;
    if oauth.link_token != link_token {
        return Err(oauth_error("INCORRECT_LINK_TOKEN", "the oauth_state_id belongs to another link token"));
    }
    if oauth.used {
        return Err(oauth_error("OAUTH_STATE_ID_ALREADY_PROCESSED", "this OAuth login was already completed"));
    }
    if !oauth.approved {
        return Err(oauth_error("OAUTH_STATE_ID_NOT_FOUND", "the bank has not approved this OAuth login"));
    }
    Ok((id, oauth))
}

/// Step 3b: creates the Item of an approved state, or in update mode repairs the token's Item (once). Answers the
/// Item id and its institution.
pub fn complete(
    state: &SimState,
    link_token: &str,
    session: &str,
    oauth_state_id: &str,
) -> Result<(String, &'static crate::world::institutions::Institution), ApiError> {
    let mode = state
        .link_tokens
        .lock()
        .get(link_token)
        .map(|t| t.mode.clone())
        .ok_or_else(|| ApiError::invalid_link_token("provided link token is invalid or does not exist"))?;
    let institution_id = {
        let mut states = state.oauth_states.lock();
        let oauth = states
            .get_mut(oauth_state_id)
            .filter(|o| o.link_token == link_token && o.link_session_id == session)
            .ok_or_else(|| oauth_error("OAUTH_STATE_ID_NOT_FOUND", "the oauth_state_id is unknown"))?;
        if oauth.used {
            return Err(oauth_error("OAUTH_STATE_ID_ALREADY_PROCESSED", "this OAuth login was already completed"));
        }
        if !oauth.approved {
            return Err(oauth_error("OAUTH_STATE_ID_NOT_FOUND", "the bank has not approved this OAuth login"));
        }
        oauth.used = true;
        oauth.institution_id
    };
    let institution = SimState::institution(institution_id).expect("OAuth states name known institutions");
    match mode {
        LinkMode::Create { webhook, days, products } => {
            let (username, password) = OAUTH_USER;
            let item_id = state.create_item(CreateItem { institution, username, password, webhook, days, products })?;
            Ok((item_id, institution))
        }
        LinkMode::Update { item_id } => {
            let shared = state.item_by_id(&item_id).ok_or_else(|| {
                ApiError::invalid_link_token("the Item of this update-mode link token no longer exists")
            })?;
            let mut item = shared.lock();
            // `begin` checked the bank; the bank's approval is the new login, as credentials are for other banks.
            state.change_item(&mut item, ItemChange::LoginRequired { required: false })?;
            let institution = item.institution;
            drop(item);
            Ok((item_id, institution))
        }
    }
}

#[derive(Deserialize)]
pub struct AuthorizeQuery {
    oauth_state_id: String,
}

/// Step 2: the bank's login page.
pub async fn authorize_page(State(state): State<Arc<SimState>>, Query(q): Query<AuthorizeQuery>) -> Response {
    let found = state.oauth_states.lock().get(&q.oauth_state_id).cloned();
    let Some(oauth) = found.filter(|o| !o.used) else {
        return page(StatusCode::NOT_FOUND, "Unknown login", "<p>This login request is unknown or finished.</p>");
    };
    let name = SimState::institution(oauth.institution_id).map_or("your bank", |i| i.name);
    let client = state.link_tokens.lock().get(&oauth.link_token).map(|t| t.client_name.clone()).unwrap_or_default();
    let body = format!(
        "<p class=\"brand\">{name}</p>\
         <h1 id=\"title\">Allow {client} to access your accounts?</h1>\
         <p>{client} uses Plaid to connect to {name}. You are signed in to online banking (simulated).</p>\
         <form method=\"post\" action=\"/sim/oauth/authorize\" aria-labelledby=\"title\">\
         <input type=\"hidden\" name=\"oauth_state_id\" value=\"{id}\">\
         <button type=\"submit\" id=\"approve\" data-testid=\"plaid-sim-oauth-approve\">Approve</button>\
         </form>\
         <p class=\"hint\">Offline Plaid simulator: no real bank is contacted.</p>",
        name = html_escape(name),
        client = html_escape(if client.is_empty() { "This application" } else { &client }),
        id = html_escape(&q.oauth_state_id),
    );
    page(StatusCode::OK, &format!("{name}: sign in"), &body)
}

/// Step 2, approved: back to the app's `redirect_uri` with the state id.
pub async fn authorize_approve(State(state): State<Arc<SimState>>, Form(q): Form<AuthorizeQuery>) -> Response {
    let link_token = {
        let mut states = state.oauth_states.lock();
        match states.get_mut(&q.oauth_state_id).filter(|o| !o.used) {
            Some(oauth) => {
                oauth.approved = true;
                oauth.link_token.clone()
            }
            None => {
                return page(
                    StatusCode::NOT_FOUND,
                    "Unknown login",
                    "<p>This login request is unknown or finished.</p>",
                );
            }
        }
    };
    let redirect = state.link_tokens.lock().get(&link_token).and_then(|t| t.redirect_uri.clone());
    let Some(Ok(mut target)) = redirect.map(|r| url::Url::parse(&r)) else {
        return page(StatusCode::BAD_REQUEST, "No way back", "<p>The app did not say where to return.</p>");
    };
    target.query_pairs_mut().append_pair("oauth_state_id", &q.oauth_state_id);
    (StatusCode::SEE_OTHER, [(header::LOCATION, target.to_string()), (header::CACHE_CONTROL, "no-store".into())])
        .into_response()
}

pub async fn bank_css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], BANK_CSS).into_response()
}

/// A bank page: no script at all, its style from `/sim/oauth/bank.css` (a strict CSP holds).
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title>\
         <link rel=\"stylesheet\" href=\"/sim/oauth/bank.css\"></head><body><main>{body}</main></body></html>",
        html_escape(title)
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            // form-action is left out: Chromium applies it to the redirect after the form, which leaves this origin.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'self'; base-uri 'none'; frame-ancestors 'none'",
            ),
        ],
        html,
    )
        .into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// The OAuth step of the Link backend (`POST /link/session/oauth`): `{link_token, link_session_id, institution_id}`.
pub async fn begin_route(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    super::link_session::respond_with(&state, &body, begin)
}

/// `POST /link/session/oauth/complete`: `{link_token, link_session_id, oauth_state_id}` → public token + metadata.
pub async fn complete_route(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    super::link_session::respond_with(&state, &body, |state, req, token, session| {
        let oauth_state_id = req_str(req, "", "oauth_state_id")?;
        let (item_id, institution) = complete(state, token, session, oauth_state_id)?;
        super::link_session::success(state, &item_id, institution, session)
    })
}
