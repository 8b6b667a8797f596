//! The endpoints this client calls, with the per-endpoint facts the transport needs.

use std::fmt;

/// One Plaid endpoint. Used in errors, call records and tracing instead of free-form strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    LinkTokenCreate,
    ItemPublicTokenExchange,
    ItemGet,
    ItemRemove,
    ItemWebhookUpdate,
    AccountsGet,
    AccountsBalanceGet,
    TransactionsSync,
    TransactionsRefresh,
    WebhookVerificationKeyGet,
    SandboxPublicTokenCreate,
    SandboxItemFireWebhook,
    SandboxItemResetLogin,
}

impl Endpoint {
    /// Every endpoint, for tests and exhaustive tables.
    pub const ALL: [Endpoint; 13] = [
        Endpoint::LinkTokenCreate,
        Endpoint::ItemPublicTokenExchange,
        Endpoint::ItemGet,
        Endpoint::ItemRemove,
        Endpoint::ItemWebhookUpdate,
        Endpoint::AccountsGet,
        Endpoint::AccountsBalanceGet,
        Endpoint::TransactionsSync,
        Endpoint::TransactionsRefresh,
        Endpoint::WebhookVerificationKeyGet,
        Endpoint::SandboxPublicTokenCreate,
        Endpoint::SandboxItemFireWebhook,
        Endpoint::SandboxItemResetLogin,
    ];

    /// The URL path, e.g. `/transactions/sync`.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::LinkTokenCreate => "/link/token/create",
            Endpoint::ItemPublicTokenExchange => "/item/public_token/exchange",
            Endpoint::ItemGet => "/item/get",
            Endpoint::ItemRemove => "/item/remove",
            Endpoint::ItemWebhookUpdate => "/item/webhook/update",
            Endpoint::AccountsGet => "/accounts/get",
            Endpoint::AccountsBalanceGet => "/accounts/balance/get",
            Endpoint::TransactionsSync => "/transactions/sync",
            Endpoint::TransactionsRefresh => "/transactions/refresh",
            Endpoint::WebhookVerificationKeyGet => "/webhook_verification_key/get",
            Endpoint::SandboxPublicTokenCreate => "/sandbox/public_token/create",
            Endpoint::SandboxItemFireWebhook => "/sandbox/item/fire_webhook",
            Endpoint::SandboxItemResetLogin => "/sandbox/item/reset_login",
        }
    }

    /// Whether sending the request a second time is harmless when we cannot know whether the
    /// first one was processed (a timeout, or a connection that broke after the request was
    /// written).
    ///
    /// * Reads and "set to this value" writes are safe.
    /// * `/item/public_token/exchange` is not: the public token is single-use, so a retry after
    ///   a processed-but-lost response fails with INVALID_PUBLIC_TOKEN and hides what happened.
    ///   The caller must see the timeout and send the user through Link again.
    /// * `/item/remove` would answer INVALID_ACCESS_TOKEN for a removal that worked.
    /// * `/accounts/balance/get` is billed per call and already waits up to a minute; retrying a
    ///   timeout would multiply both the wait and the bill.
    /// * `/transactions/refresh` is billed and limited to 2/min per Item.
    /// * Sandbox creation and webhook firing would create a second Item or fire twice.
    ///
    /// A `/link/token/create` repeat only mints a second unused token, so it counts as safe.
    pub fn retry_when_outcome_unknown(self) -> bool {
        match self {
            Endpoint::LinkTokenCreate
            | Endpoint::ItemGet
            | Endpoint::ItemWebhookUpdate
            | Endpoint::AccountsGet
            | Endpoint::TransactionsSync
            | Endpoint::WebhookVerificationKeyGet
            | Endpoint::SandboxItemResetLogin => true,
            Endpoint::ItemPublicTokenExchange
            | Endpoint::ItemRemove
            | Endpoint::AccountsBalanceGet
            | Endpoint::TransactionsRefresh
            | Endpoint::SandboxPublicTokenCreate
            | Endpoint::SandboxItemFireWebhook => false,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path())
    }
}
