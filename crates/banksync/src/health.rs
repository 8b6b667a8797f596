//! Item health from Plaid errors: a state machine (good | login_required | pending_expiration | pending_disconnect |
//! revoked | error), not a boolean. Set from API errors (here) and ITEM webhooks; reset to good after a successful
//! sync or an update-mode repair.
//!
//! Only errors that describe the *Item* change its health. Transient trouble (rate limits, Plaid internal errors,
//! an institution that is down right now, data not ready yet, a mutation during pagination) and errors in our own
//! requests say nothing about the user's connection, so they leave the health alone (`None`).

use chrono::{DateTime, Utc};
use plaid::{ErrorType, PlaidError, codes};

use crate::domain::{ItemHealth, ItemStatus};

/// The Item health a Plaid error implies; `None` when the error is not an Item problem.
pub fn health_from_error(e: &PlaidError) -> Option<ItemHealth> {
    let status = status_for(e)?;
    Some(ItemHealth {
        status,
        error_code: Some(e.error_code.clone()).filter(|c| !c.is_empty()),
        error_message: Some(e.error_message.clone()).filter(|m| !m.is_empty()),
        // Plaid's display_message when it has one, else an actionable sentence: always safe to show.
        display_message: Some(e.user_message()),
        disconnect_at: None,
    })
}

/// Health for an ITEM webhook (`ERROR`, `PENDING_EXPIRATION`, `PENDING_DISCONNECT`, `USER_PERMISSION_REVOKED`,
/// `USER_ACCOUNT_REVOKED`, `LOGIN_REPAIRED`). `None` for codes that do not change health (e.g. `WEBHOOK_UPDATE_ACKNOWLEDGED`).
pub fn health_from_item_webhook(
    webhook_code: &str,
    error: Option<&PlaidError>,
    at: Option<DateTime<Utc>>,
) -> Option<ItemHealth> {
    let reconnect = |status: ItemStatus, code: &str, message: &str| ItemHealth {
        status,
        error_code: Some(code.to_owned()),
        error_message: None,
        display_message: Some(message.to_owned()),
        disconnect_at: at,
    };
    match webhook_code {
        "ERROR" => error.and_then(health_from_error),
        "LOGIN_REPAIRED" => Some(ItemHealth::good()),
        "PENDING_EXPIRATION" => Some(reconnect(
            ItemStatus::PendingExpiration,
            codes::PENDING_EXPIRATION,
            "Your consent for this bank connection is about to expire. Reconnect the bank to keep it working.",
        )),
        "PENDING_DISCONNECT" => Some(reconnect(
            ItemStatus::PendingDisconnect,
            "PENDING_DISCONNECT",
            "This bank connection will stop working soon. Reconnect the bank to keep it working.",
        )),
        "USER_PERMISSION_REVOKED" | "USER_ACCOUNT_REVOKED" => Some(reconnect(
            ItemStatus::Revoked,
            codes::USER_PERMISSION_REVOKED,
            "Access to this bank was revoked. Link the bank again if you want to keep syncing it.",
        )),
        _ => None,
    }
}

fn status_for(e: &PlaidError) -> Option<ItemStatus> {
    use codes::*;
    let status = match e.error_code.as_str() {
        ITEM_LOGIN_REQUIRED
        | INVALID_CREDENTIALS
        | INVALID_MFA
        | INSUFFICIENT_CREDENTIALS
        | PASSWORD_RESET_REQUIRED
        | ITEM_LOCKED
        | USER_SETUP_REQUIRED
        | ACCESS_NOT_GRANTED
        | ADDITIONAL_CONSENT_REQUIRED
        | NO_ACCOUNTS => ItemStatus::LoginRequired,
        PENDING_EXPIRATION => ItemStatus::PendingExpiration,
        "PENDING_DISCONNECT" => ItemStatus::PendingDisconnect,
        USER_PERMISSION_REVOKED | ITEM_NOT_FOUND => ItemStatus::Revoked,
        INSTITUTION_NO_LONGER_SUPPORTED | "ITEM_NOT_SUPPORTED" | INVALID_ACCESS_TOKEN => ItemStatus::Error,
        // An ITEM_ERROR by type, but only "come back later": the connection itself is fine.
        PRODUCT_NOT_READY => return None,
        _ if e.requires_user_action() => ItemStatus::LoginRequired,
        // Any other ITEM_ERROR is about the connection, even if we do not know the code yet.
        _ if e.error_type == ErrorType::ItemError => ItemStatus::Error,
        _ => return None,
    };
    Some(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(error_type: &str, code: &str, display: Option<&str>) -> PlaidError {
        PlaidError {
            error_type: ErrorType::from(error_type),
            error_code: code.into(),
            error_message: "developer text".into(),
            display_message: display.map(Into::into),
            ..PlaidError::default()
        }
    }

    fn status(error_type: &str, code: &str) -> Option<ItemStatus> {
        health_from_error(&err(error_type, code, None)).map(|h| h.status)
    }

    #[test]
    fn login_problems_need_the_user() {
        for code in ["ITEM_LOGIN_REQUIRED", "INVALID_CREDENTIALS", "INVALID_MFA", "ITEM_LOCKED", "USER_SETUP_REQUIRED"]
        {
            assert_eq!(status("ITEM_ERROR", code), Some(ItemStatus::LoginRequired), "{code}");
        }
        let mut oauth = err("ITEM_ERROR", "SOMETHING_NEW", None);
        oauth.error_code_reason = Some("OAUTH_CONSENT_EXPIRED".into());
        assert_eq!(health_from_error(&oauth).map(|h| h.status), Some(ItemStatus::LoginRequired));
    }

    #[test]
    fn expiry_revocation_and_unknown_item_errors() {
        assert_eq!(status("ITEM_ERROR", "PENDING_EXPIRATION"), Some(ItemStatus::PendingExpiration));
        assert_eq!(status("ITEM_ERROR", "USER_PERMISSION_REVOKED"), Some(ItemStatus::Revoked));
        assert_eq!(status("ITEM_ERROR", "ITEM_NOT_FOUND"), Some(ItemStatus::Revoked));
        assert_eq!(status("INSTITUTION_ERROR", "INSTITUTION_NO_LONGER_SUPPORTED"), Some(ItemStatus::Error));
        assert_eq!(status("ITEM_ERROR", "A_CODE_PLAID_ADDS_LATER"), Some(ItemStatus::Error));
    }

    #[test]
    fn transient_and_request_errors_leave_health_alone() {
        assert_eq!(status("RATE_LIMIT_EXCEEDED", "TRANSACTIONS_SYNC_LIMIT"), None);
        assert_eq!(status("API_ERROR", "INTERNAL_SERVER_ERROR"), None);
        assert_eq!(status("INSTITUTION_ERROR", "INSTITUTION_DOWN"), None);
        assert_eq!(status("INSTITUTION_ERROR", "INSTITUTION_NOT_RESPONDING"), None);
        assert_eq!(status("ITEM_ERROR", "PRODUCT_NOT_READY"), None);
        assert_eq!(status("TRANSACTIONS_ERROR", "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION"), None);
        assert_eq!(status("INVALID_REQUEST", "MISSING_FIELDS"), None);
    }

    #[test]
    fn messages_are_user_facing() {
        let h = health_from_error(&err("ITEM_ERROR", "ITEM_LOGIN_REQUIRED", Some("Please sign in again."))).unwrap();
        assert_eq!(h.display_message.as_deref(), Some("Please sign in again."));
        assert_eq!(h.error_code.as_deref(), Some("ITEM_LOGIN_REQUIRED"));
        assert_eq!(h.error_message.as_deref(), Some("developer text"));
        let h = health_from_error(&err("ITEM_ERROR", "ITEM_LOGIN_REQUIRED", None)).unwrap();
        assert!(h.display_message.unwrap().contains("Reconnect"));
    }

    #[test]
    fn item_webhooks() {
        let e = err("ITEM_ERROR", "ITEM_LOGIN_REQUIRED", None);
        assert_eq!(
            health_from_item_webhook("ERROR", Some(&e), None).map(|h| h.status),
            Some(ItemStatus::LoginRequired)
        );
        assert_eq!(health_from_item_webhook("LOGIN_REPAIRED", None, None), Some(ItemHealth::good()));
        let at = Utc::now();
        let h = health_from_item_webhook("PENDING_DISCONNECT", None, Some(at)).unwrap();
        assert_eq!((h.status, h.disconnect_at), (ItemStatus::PendingDisconnect, Some(at)));
        assert_eq!(
            health_from_item_webhook("USER_PERMISSION_REVOKED", None, None).unwrap().status,
            ItemStatus::Revoked
        );
        assert_eq!(health_from_item_webhook("WEBHOOK_UPDATE_ACKNOWLEDGED", None, None), None);
    }
}
