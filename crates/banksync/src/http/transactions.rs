//! `GET /api/transactions` (filters and keyset pagination), `GET /api/transactions/{transaction_id}` (one),
//! `GET /api/transactions/{transaction_id}/raw` (Plaid's object as received, for the page's detail panel: a route of
//! its own so the list and the single view stay lean) and `PATCH /api/transactions/{transaction_id}` (the user's note
//! and category, which survive Plaid's updates and pending→posted).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, AppJson, ErrorBody, StoreResultExt as _};
use super::views::TransactionView;
use crate::auth::CurrentUser;
use crate::domain::{AccountId, PlaidItemId, TransactionFilter, TransactionId, UserFieldsPatch};
use crate::state::AppState;

const MAX_TEXT: usize = 200;
const MAX_NOTE: usize = 2000;
const MAX_CATEGORY: usize = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(update, show)).routes(routes!(raw))
}

#[derive(Serialize, ToSchema)]
struct TransactionPage {
    transactions: Vec<TransactionView>,
    /// Pass as `cursor` to get the next page; null on the last page.
    next_cursor: Option<String>,
}

/// The caller's transactions, newest first, filtered, one page at a time (keyset pagination).
#[utoipa::path(
    get,
    path = "/api/transactions",
    tag = "transactions",
    operation_id = "list_transactions",
    params(
        ("account_id" = Option<String>, Query, description = "Only this account"),
        ("item_id" = Option<String>, Query, description = "Only this Item"),
        ("start" = Option<NaiveDate>, Query, description = "From this date (YYYY-MM-DD, inclusive)"),
        ("end" = Option<NaiveDate>, Query, description = "Up to this date (YYYY-MM-DD, inclusive)"),
        ("category" = Option<String>, Query, description = "Plaid's primary category, or the user's"),
        ("effective_category" = Option<String>, Query, description = "Exactly the effective category: the user's, else Plaid's primary, else UNCATEGORIZED (the spending charts' drill-down)"),
        ("detailed_category" = Option<String>, Query, description = "Exactly Plaid's detailed category"),
        ("pending" = Option<bool>, Query, description = "Only pending (true) or posted (false) ones"),
        ("q" = Option<String>, Query, description = "Full-text search in the name, merchant and note: every word, the last one as a prefix (\"star\" finds Starbucks), case-insensitive"),
        ("min_amount" = Option<String>, Query, description = "Decimal, e.g. -5.50"),
        ("max_amount" = Option<String>, Query, description = "Decimal, e.g. 100"),
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 500 (default 100)", minimum = 1, maximum = 500),
        ("cursor" = Option<String>, Query, description = "The previous page's `next_cursor`"),
    ),
    responses(
        (status = 200, description = "One page", body = TransactionPage),
        (status = 400, description = "`invalid_query`, `invalid_cursor`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])),
)]
async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<AppJson<TransactionPage>> {
    let filter = parse_filter(params)?;
    let page = state.store.list_transactions(user.id(), &filter).await.map_err(|e| match e {
        crate::store::StoreError::InvalidInput(_) => {
            ApiError::bad_request("invalid_cursor", "cursor is not a value returned as next_cursor")
        }
        other => other.into(),
    })?;
    Ok(AppJson(TransactionPage {
        transactions: page
            .items
            .into_iter()
            .map(|t| TransactionView::of(t).with_logo(state.web.merchant_logos))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One transaction.
#[utoipa::path(
    get,
    path = "/api/transactions/{transaction_id}",
    tag = "transactions",
    operation_id = "get_transaction",
    params(("transaction_id" = String, Path, description = "Plaid's transaction_id")),
    responses(
        (status = 200, description = "The transaction", body = TransactionView),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])),
)]
async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(transaction_id): Path<TransactionId>,
) -> ApiResult<AppJson<TransactionView>> {
    let t = state.store.get_transaction(user.id(), &transaction_id).await.or_not_found("transaction")?;
    Ok(AppJson(TransactionView::of(t).with_logo(state.web.merchant_logos)))
}

/// Plaid's transaction object exactly as `/transactions/sync` sent it (stored JSON text, passed through unparsed).
#[derive(Serialize, ToSchema)]
#[schema(value_type = Object)]
struct RawPlaidTransaction(Box<serde_json::value::RawValue>);

/// Plaid's transaction object as received: every field, including ones banksync does not model.
#[utoipa::path(
    get,
    path = "/api/transactions/{transaction_id}/raw",
    tag = "transactions",
    operation_id = "get_transaction_raw",
    params(("transaction_id" = String, Path, description = "Plaid's transaction_id")),
    responses(
        (status = 200, description = "Plaid's transaction object, as received", body = RawPlaidTransaction),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])),
)]
async fn raw(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(transaction_id): Path<TransactionId>,
) -> ApiResult<AppJson<RawPlaidTransaction>> {
    let raw = state.store.get_transaction_raw(user.id(), &transaction_id).await.or_not_found("transaction")?;
    // The sync engine stores only what it parsed as JSON; unreadable text here is a corrupted row, not bad input.
    let value = serde_json::value::RawValue::from_string(raw)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("transaction {transaction_id}: stored raw JSON: {e}")))?;
    Ok(AppJson(RawPlaidTransaction(value)))
}

fn bad(message: String) -> ApiError {
    ApiError::bad_request("invalid_query", message)
}

/// Validates every parameter, naming the offending one.
pub(crate) fn parse_filter(params: HashMap<String, String>) -> ApiResult<TransactionFilter> {
    let mut filter = TransactionFilter::default();
    for (name, value) in params {
        let text = |max: usize| -> ApiResult<Option<String>> {
            let v = value.trim();
            if v.chars().count() > max {
                return Err(bad(format!("{name} must have at most {max} characters")));
            }
            Ok(Some(v.to_owned()).filter(|v| !v.is_empty()))
        };
        match name.as_str() {
            "account_id" => filter.account_id = text(MAX_TEXT)?.map(AccountId::from),
            "item_id" => filter.item_id = text(MAX_TEXT)?.map(PlaidItemId::from),
            "category" => filter.category = text(MAX_CATEGORY)?,
            "effective_category" => filter.effective_category = text(MAX_CATEGORY)?,
            "detailed_category" => filter.detailed_category = text(MAX_CATEGORY)?,
            "q" => filter.q = text(MAX_TEXT)?,
            "start" => filter.start = Some(parse_date(&name, &value)?),
            "end" => filter.end = Some(parse_date(&name, &value)?),
            "pending" => filter.pending = Some(parse_bool(&name, &value)?),
            "min_amount" => filter.min_amount = Some(parse_amount(&name, &value)?),
            "max_amount" => filter.max_amount = Some(parse_amount(&name, &value)?),
            "limit" => {
                filter.limit = value
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=TransactionFilter::MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        bad(format!("limit must be a whole number from 1 to {}", TransactionFilter::MAX_LIMIT))
                    })?;
            }
            "cursor" => filter.after = text(1000)?,
            other => {
                return Err(bad(format!(
                    "unknown query parameter {other:?}; expected one of account_id, item_id, start, end, category, \
                     effective_category, detailed_category, pending, q, min_amount, max_amount, limit, cursor"
                )));
            }
        }
    }
    if let (Some(start), Some(end)) = (filter.start, filter.end)
        && start > end
    {
        return Err(bad("start must not be after end".into()));
    }
    if let (Some(min), Some(max)) = (filter.min_amount, filter.max_amount)
        && min > max
    {
        return Err(bad("min_amount must not be above max_amount".into()));
    }
    Ok(filter)
}

fn parse_date(name: &str, value: &str) -> ApiResult<NaiveDate> {
    NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d")
        .map_err(|_| bad(format!("{name} must be a date like 2024-01-31")))
}

pub(crate) fn parse_bool(name: &str, value: &str) -> ApiResult<bool> {
    match value.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(bad(format!("{name} must be true or false"))),
    }
}

fn parse_amount(name: &str, value: &str) -> ApiResult<Decimal> {
    let v = value.trim();
    // Plain decimal notation only: no exponents, no thousands separators.
    if v.is_empty() || v.len() > 32 || !v.chars().all(|c| c.is_ascii_digit() || c == '.' || c == '-') {
        return Err(bad(format!("{name} must be a decimal number like 12.34")));
    }
    v.parse::<Decimal>().map_err(|_| bad(format!("{name} must be a decimal number like 12.34")))
}

/// `{"note": …, "category": …}`: an absent field stays as it is, `null` (or "") clears it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TransactionPatch)]
struct PatchBody {
    /// The user's note, at most 2000 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    note: Option<Option<String>>,
    /// The user's category, at most 100 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    category: Option<Option<String>>,
}

/// Distinguishes `"field": null` (Some(None)) from an absent field (None, through `default`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn clean(field: &str, value: Option<Option<String>>, max: usize) -> ApiResult<Option<Option<String>>> {
    match value {
        Some(Some(text)) => {
            let text = text.trim();
            if text.chars().count() > max {
                return Err(ApiError::bad_request(
                    "invalid_body",
                    format!("{field} must have at most {max} characters"),
                ));
            }
            Ok(Some(Some(text.to_owned()).filter(|t| !t.is_empty())))
        }
        other => Ok(other),
    }
}

/// Sets the user's note and category; they survive Plaid's updates and pending→posted.
#[utoipa::path(
    patch,
    path = "/api/transactions/{transaction_id}",
    tag = "transactions",
    operation_id = "update_transaction",
    params(("transaction_id" = String, Path, description = "Plaid's transaction_id")),
    request_body = PatchBody,
    responses(
        (status = 200, description = "The updated transaction", body = TransactionView),
        (status = 400, description = "`invalid_body`, `malformed_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`csrf_token_invalid`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not a JSON body", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
)]
async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(transaction_id): Path<TransactionId>,
    AppJson(body): AppJson<PatchBody>,
) -> ApiResult<AppJson<TransactionView>> {
    let patch = UserFieldsPatch {
        note: clean("note", body.note, MAX_NOTE)?,
        category: clean("category", body.category, MAX_CATEGORY)?,
    };
    if patch.note.is_none() && patch.category.is_none() {
        return Err(ApiError::bad_request("invalid_body", "send at least one of note, category"));
    }
    let t = state
        .store
        .update_transaction_user_fields(user.id(), &transaction_id, &patch)
        .await
        .or_not_found("transaction")?;
    Ok(AppJson(TransactionView::of(t).with_logo(state.web.merchant_logos)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn filters_parse_and_each_bad_parameter_is_named() {
        let f = parse_filter(params(&[
            ("start", "2024-01-01"),
            ("end", "2024-02-01"),
            ("pending", "false"),
            ("min_amount", "-5.5"),
            ("max_amount", "100"),
            ("limit", "500"),
            ("q", " coffee "),
        ]))
        .unwrap();
        assert_eq!(f.q.as_deref(), Some("coffee"));
        assert_eq!(f.limit, 500);
        assert_eq!(f.min_amount, Some(Decimal::new(-55, 1)));
        for (name, value) in [
            ("start", "yesterday"),
            ("pending", "maybe"),
            ("limit", "0"),
            ("limit", "501"),
            ("min_amount", "1e3"),
            ("max_amount", "ten"),
            ("sort", "date"),
        ] {
            let err = parse_filter(params(&[(name, value)])).unwrap_err().to_string();
            assert!(err.contains(name), "{name}={value}: {err}");
        }
        assert!(parse_filter(params(&[("start", "2024-02-02"), ("end", "2024-02-01")])).is_err());
        assert!(parse_filter(params(&[("min_amount", "5"), ("max_amount", "1")])).is_err());
    }
}
