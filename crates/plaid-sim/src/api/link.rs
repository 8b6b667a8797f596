//! `/link/token/create`: validates like Plaid and stores the token (4 h; update mode 30 min) with
//! what the Link session needs (webhook, days_requested, products, or the Item to repair).

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use chrono::Duration;
use serde_json::json;

use super::errors::ApiError;
use super::{ApiResult, Req, check_url, opt_int, opt_obj, opt_str, opt_str_array, prelude, products, require, respond};
use crate::clock::rfc3339;
use crate::persist::Op;
use crate::state::{LinkMode, LinkToken, SimState};

const ALLOWED: &[&str] = &[
    "client_name",
    "language",
    "country_codes",
    "user",
    "user_id",
    "products",
    "required_if_supported_products",
    "optional_products",
    "additional_consented_products",
    "webhook",
    "access_token",
    "access_tokens",
    "link_customization_name",
    "appearance_mode",
    "redirect_uri",
    "android_package_name",
    "institution_data",
    "card_switch",
    "account_filters",
    "eu_config",
    "institution_id",
    "payment_configuration",
    "payment_initiation",
    "employment",
    "income_verification",
    "base_report",
    "credit_partner_insights",
    "cra_options",
    "consumer_report_permissible_purpose",
    "auth",
    "transfer",
    "update",
    "identity_verification",
    "statements",
    "third_party_user_token",
    "investments",
    "investments_auth",
    "hosted_link",
    "transactions",
    "cashflow_report",
    "cra_enabled",
    "identity",
    "financekit_supported",
    "enable_multi_item_link",
    "user_token",
];

const LANGUAGES: &[&str] =
    &["da", "nl", "en", "et", "fr", "de", "hi", "it", "ja", "lv", "lt", "no", "pl", "pt", "ro", "es", "sv", "vi"];
const COUNTRY_CODES: &[&str] = &[
    "US", "GB", "ES", "NL", "FR", "IE", "CA", "DE", "IT", "PL", "DK", "NO", "SE", "EE", "LT", "LV", "PT", "BE", "AT",
    "FI",
];

pub async fn token_create(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    respond(run(&state, &headers, &body).await)
}

async fn run(state: &SimState, headers: &HeaderMap, body: &Bytes) -> ApiResult {
    let req = prelude(state, "/link/token/create", headers, body, ALLOWED).await?;
    create(state, &req)
}

fn create(state: &SimState, req: &Req) -> ApiResult {
    let mut required = vec!["client_name", "language", "country_codes"];
    if req.get("user_id").is_none_or(|v| v.is_null()) {
        required.push("user");
    }
    require(req, "", &required)?;
    let client_name = opt_str(req, "", "client_name")?.unwrap_or_default();
    if client_name.is_empty() {
        return Err(ApiError::invalid_field("client_name must be a non-empty string"));
    }
    let language = opt_str(req, "", "language")?.unwrap_or_default();
    if !LANGUAGES.contains(&language) {
        return Err(ApiError::invalid_field(format!("language must be one of: {}", LANGUAGES.join(", "))));
    }
    let countries = opt_str_array(req, "", "country_codes")?.unwrap_or_default();
    if countries.is_empty() || countries.iter().any(|c| !COUNTRY_CODES.contains(&c.as_str())) {
        return Err(ApiError::invalid_field("country_codes must be a non-empty array of supported country codes"));
    }
    if let Some(user) = opt_obj(req, "", "user")? {
        require(user, "user.", &["client_user_id"])?;
        if opt_str(user, "user.", "client_user_id")?.is_none_or(|s| s.trim().is_empty()) {
            return Err(ApiError::invalid_field("user.client_user_id must be a non-empty string"));
        }
    }
    let products = products(req, "products")?;
    if products.as_ref().is_some_and(|p| p.iter().any(|p| p == "balance")) {
        return Err(ApiError::invalid_field(
            "products must not include balance: Balance is available on every Item initialized with another product",
        ));
    }
    let webhook = opt_str(req, "", "webhook")?;
    if let Some(w) = webhook {
        check_url(w, "webhook")?;
    }
    let redirect_uri = opt_str(req, "", "redirect_uri")?.filter(|r| !r.is_empty());
    if let Some(r) = redirect_uri {
        check_redirect_uri(r)?;
    }
    let days = match opt_obj(req, "", "transactions")? {
        Some(t) => match opt_int(t, "transactions.", "days_requested")? {
            Some(d) if !(1..=730).contains(&d) => {
                return Err(ApiError::invalid_field("transactions.days_requested must be between 1 and 730"));
            }
            Some(d) => d as u32,
            None => 90,
        },
        None => 90,
    };
    let now = state.clock.now();
    let token = match opt_str(req, "", "access_token")? {
        Some(access_token) => {
            if products.as_ref().is_some_and(|p| !p.is_empty()) {
                return Err(ApiError::invalid_field("products must be empty when access_token is set (update mode)"));
            }
            let item_id = state.item_by_token(access_token)?.lock().item_id.clone();
            LinkToken {
                client_name: client_name.to_owned(),
                expires_at: now + Duration::minutes(30),
                mode: LinkMode::Update { item_id },
                redirect_uri: redirect_uri.map(str::to_owned),
            }
        }
        None => LinkToken {
            client_name: client_name.to_owned(),
            expires_at: now + Duration::hours(4),
            mode: LinkMode::Create {
                webhook: webhook.map(str::to_owned),
                days,
                products: products.filter(|p| !p.is_empty()).unwrap_or_else(|| vec!["transactions".to_owned()]),
            },
            redirect_uri: redirect_uri.map(str::to_owned),
        },
    };
    let (n, link_token) = state.new_token("link");
    let expiration = rfc3339(token.expires_at);
    state.commit(&Op::LinkToken { n, token: link_token.clone(), link: token })?;
    Ok(json!({ "link_token": link_token, "expiration": expiration }))
}

/// Plaid's rules for `redirect_uri`: an absolute URL without query string or fragment, https except on localhost
/// (Plaid's sandbox also accepts http://localhost for development).
fn check_redirect_uri(raw: &str) -> Result<(), ApiError> {
    let url = url::Url::parse(raw).map_err(|_| ApiError::invalid_field("redirect_uri must be a valid URL"))?;
    let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if !(url.scheme() == "https" || (url.scheme() == "http" && local)) || url.host().is_none() {
        return Err(ApiError::invalid_field("redirect_uri must use https (http only on localhost)"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ApiError::invalid_field("redirect_uri must not contain query parameters or a fragment"));
    }
    Ok(())
}
