//! End to end: banksync's Plaid client (`crates/plaid`) against the offline Plaid
//! (`crates/plaid-sim`), over loopback HTTP, each test with its own simulator.
//!
//! Proves: the flow token → exchange → item → accounts → balance → link tokens (with the Link
//! backend creating and repairing Items) → full sync equal to the simulator's ground truth;
//! incremental sync with pending→posted; pagination restarts, injected and real, from the
//! start cursor, at any page size; NOT_READY then the announcing webhook; typed errors;
//! faults, hangs, retries and rate limits as the client sees them; webhook signatures that
//! verify and forged, altered, replayed or retired ones that do not; slow balance calls that
//! block nothing; and a 100,000-transaction Item.
//!
//! The reference sync loop lives in `e2e_support/sync_loop.rs`.

mod e2e_support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use plaid::webhook::{KeyCache, Rejection, verify};
use plaid::{
    AccountSubtype, AccountType, AccountsBalanceGetRequest, AccountsGetRequest, CallOutcome, Endpoint, Error,
    ErrorType, LinkTokenCreateRequest, PlaidClient, Product, RetryPolicy, SandboxPublicTokenCreateRequest, Timeouts,
    TransactionsUpdateStatus, WebhookCode, WebhookEvent, WebhookType, codes,
};
use plaid_sim::SimConfig;
use serde_json::json;
use sha2::{Digest, Sha256};

use e2e_support::forgery;
use e2e_support::harness::{Harness, PLATYPUS, test_config};
use e2e_support::receiver::Receiver;
use e2e_support::sync_loop::{Mirror, PAGE_SIZE, assert_converged};

/// The Plaid error inside `result`, or a panic naming what came instead.
fn api_error<T: std::fmt::Debug>(result: Result<T, Error>) -> (u16, plaid::PlaidError) {
    match result {
        Err(Error::Api { status, error }) => (status, *error),
        other => panic!("expected a Plaid API error, got {other:?}"),
    }
}

// ---- 1. the whole flow ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_flow_through_the_client_converges_exactly_on_the_ground_truth() {
    let h = Harness::start(test_config()).await;
    let client = &h.client;

    let created = client
        .sandbox_public_token_create(
            &SandboxPublicTokenCreateRequest::new(PLATYPUS, [Product::Transactions]).days_requested(730),
        )
        .await
        .expect("sandbox public token");
    assert!(created.public_token.expose_secret().starts_with("public-sandbox-"));
    assert!(!created.request_id.is_empty());
    let exchanged = client.item_public_token_exchange(&created.public_token).await.expect("exchange");
    assert!(exchanged.access_token.expose_secret().starts_with("access-sandbox-"));
    let (token, item_id) = (exchanged.access_token, exchanged.item_id);

    let item = client.item_get(&token).await.expect("item_get");
    assert_eq!(item.item.item_id, item_id);
    assert_eq!(item.item.institution_id.as_deref(), Some(PLATYPUS));
    assert!(item.item.error.is_none());
    assert!(item.item.products.contains(&Product::Transactions), "{:?}", item.item.products);
    let status = item.status.expect("item status");
    assert!(status.transactions.and_then(|t| t.last_successful_update).is_some());

    // Cached balances: checking, savings and a credit card.
    let accounts = client.accounts_get(&AccountsGetRequest::new(token.clone())).await.expect("accounts_get");
    assert_eq!(accounts.item.item_id, item_id);
    let kinds: Vec<(AccountType, Option<AccountSubtype>)> =
        accounts.accounts.iter().map(|a| (a.account_type.clone(), a.subtype.clone())).collect();
    assert_eq!(
        kinds,
        [
            (AccountType::Depository, Some(AccountSubtype::Checking)),
            (AccountType::Depository, Some(AccountSubtype::Savings)),
            (AccountType::Credit, Some(AccountSubtype::CreditCard)),
        ]
    );
    let account_ids: Vec<String> = accounts.accounts.iter().map(|a| a.account_id.clone()).collect();
    assert_eq!(account_ids.iter().collect::<HashSet<_>>().len(), 3, "account ids are unique");
    for account in &accounts.accounts {
        assert!(account.balances.current.is_some(), "{} has a current balance", account.account_id);
        assert_eq!(account.balances.iso_currency_code.as_deref(), Some("USD"));
    }
    let credit = &accounts.accounts[2];
    let limit = credit.balances.limit.expect("a credit limit");
    let (current, available) =
        (credit.balances.current.expect("current"), credit.balances.available.expect("available"));
    assert!(available <= limit - current, "credit available {available} > limit {limit} − owed {current}");
    let only_savings = client
        .accounts_get(&AccountsGetRequest::new(token.clone()).account_ids([account_ids[1].clone()]))
        .await
        .expect("accounts_get for one account");
    assert_eq!(only_savings.accounts.iter().map(|a| &a.account_id).collect::<Vec<_>>(), [&account_ids[1]]);

    // Live balances, for every account and for one.
    let live = client.accounts_balance_get(&AccountsBalanceGetRequest::new(token.clone())).await.expect("balance");
    assert_eq!(live.accounts.iter().map(|a| a.account_id.clone()).collect::<Vec<_>>(), account_ids);
    assert!(live.accounts.iter().all(|a| a.balances.current.is_some()));
    let live_credit = client
        .accounts_balance_get(
            &AccountsBalanceGetRequest::new(token.clone())
                .account_ids([credit.account_id.clone()])
                .min_last_updated_datetime(Utc::now() - chrono::Duration::hours(1)),
        )
        .await
        .expect("balance for one account");
    assert_eq!(live_credit.accounts.len(), 1);
    assert_eq!(live_credit.accounts[0].account_id, credit.account_id);
    assert_eq!(live_credit.accounts[0].balances.limit, Some(limit));

    // Link tokens: a new Item (4 hours) and update mode for this one (30 minutes).
    let now = Utc::now();
    let fresh = client
        .link_token_create(
            &LinkTokenCreateRequest::new("banksync", "user-1").products([Product::Transactions]).days_requested(730),
        )
        .await
        .expect("link token");
    assert!(fresh.link_token.starts_with("link-sandbox-"), "{}", fresh.link_token);
    assert!(fresh.expiration > now + chrono::Duration::hours(3), "expires {}", fresh.expiration);
    let session = h.link_session_start(&fresh.link_token).await;
    assert_eq!(session["mode"], "create");
    // What the drop-in Link does with it: the user logs in, the app exchanges the public token.
    let session_id = session["link_session_id"].as_str().expect("link_session_id");
    let (status, linked) =
        h.link_session_submit(&fresh.link_token, session_id, PLATYPUS, "user_good", "pass_good").await;
    assert_eq!(status, 200, "{linked}");
    let public_token = plaid::PublicToken::new(linked["public_token"].as_str().expect("public_token"));
    let via_link = client.item_public_token_exchange(&public_token).await.expect("exchange a Link public token");
    assert_ne!(via_link.item_id, item_id);
    let linked_accounts = client.accounts_get(&AccountsGetRequest::new(via_link.access_token)).await.expect("accounts");
    let metadata_ids: Vec<&str> = linked["metadata"]["accounts"]
        .as_array()
        .expect("metadata.accounts")
        .iter()
        .filter_map(|a| a["id"].as_str())
        .collect();
    assert_eq!(linked_accounts.accounts.iter().map(|a| a.account_id.as_str()).collect::<Vec<_>>(), metadata_ids);
    let update = client
        .link_token_create(&LinkTokenCreateRequest::new("banksync", "user-1").update_mode(token.clone()))
        .await
        .expect("update-mode link token");
    assert!(update.link_token.starts_with("link-sandbox-"));
    assert!(update.expiration <= now + chrono::Duration::minutes(31), "expires {}", update.expiration);
    let session = h.link_session_start(&update.link_token).await;
    assert_eq!(session["mode"], "update");
    assert_eq!(session["institution"]["institution_id"], PLATYPUS);

    // The whole history through the reference loop.
    let mut mirror = Mirror::default();
    let run = mirror.sync(client, &token, PAGE_SIZE).await.expect("initial sync");
    assert_eq!(run.status, TransactionsUpdateStatus::HistoricalUpdateComplete);
    assert!(run.restarts.is_empty(), "{:?}", run.restarts);
    assert!(run.modified.is_empty() && run.removed.is_empty(), "a first sync only adds");
    let truth = h.ground_truth(&item_id).await;
    assert!(truth.len() > PAGE_SIZE as usize, "history of {} spans several pages", truth.len());
    assert_eq!(run.pages, truth.len().div_ceil(PAGE_SIZE as usize));
    assert_converged(&mirror, &truth);
    // Money moves both ways, and the history covers all three accounts.
    assert!(truth.iter().any(|t| t.amount.is_sign_negative()) && truth.iter().any(|t| t.amount.is_sign_positive()));
    let touched: HashSet<&str> = truth.iter().map(|t| t.account_id.as_str()).collect();
    assert_eq!(touched.len(), 3);
    println!("full flow: {} transactions in {} pages", truth.len(), run.pages);

    // Options reach the simulator in the shape it validates: original descriptions on request.
    let described = client
        .transactions_sync(
            &plaid::TransactionsSyncRequest::new(token.clone()).count(10).include_original_description(true),
        )
        .await
        .expect("sync with original descriptions");
    assert_eq!(described.added.len(), 10);
    assert!(described.added.iter().all(|t| t.original_description.as_deref().is_some_and(|d| !d.is_empty())));
    assert!(truth.iter().all(|t| t.original_description.is_none()), "not requested, not sent");

    // The remaining Item endpoints: refresh, then remove, after which the token is dead.
    client.transactions_refresh(&token).await.expect("transactions_refresh");
    client.item_remove(&plaid::ItemRemoveRequest::new(token.clone())).await.expect("item_remove");
    let (_, error) = api_error(client.item_get(&token).await);
    assert_eq!(error.error_code, codes::INVALID_ACCESS_TOKEN);
}

// ---- 2. incremental sync, pending → posted -------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_bank_advances_ten_days_an_incremental_sync_posts_pending_transactions_and_converges() {
    let h = Harness::start(test_config()).await;
    let item = h.link_platypus(90).await;
    let mut mirror = Mirror::default();
    mirror.sync(&h.client, &item.access_token, PAGE_SIZE).await.expect("initial sync");
    assert_converged(&mirror, &h.ground_truth(&item.item_id).await);
    let pending_before: HashSet<String> =
        mirror.transactions.values().filter(|t| t.pending).map(|t| t.transaction_id.clone()).collect();
    assert!(!pending_before.is_empty(), "the initial history ends with pending transactions");

    let report = h.advance(&item.item_id, 10).await;
    assert!(report["posted"].as_u64().expect("posted") > 0, "{report}");
    let start_cursor = mirror.cursor.clone();
    let run = mirror.sync(&h.client, &item.access_token, PAGE_SIZE).await.expect("incremental sync");
    assert!(run.restarts.is_empty());
    assert_ne!(mirror.cursor, start_cursor, "the cursor moved");
    assert!(!run.added.is_empty());
    assert_converged(&mirror, &h.ground_truth(&item.item_id).await);

    // Pending → posted: the pending id is removed and a posted transaction names it.
    let removed: HashSet<&str> = run.removed.iter().map(|r| r.transaction_id.as_str()).collect();
    let posted: Vec<_> =
        run.added.iter().filter(|t| t.pending_transaction_id.as_deref().is_some_and(|p| removed.contains(p))).collect();
    assert!(!posted.is_empty(), "no removed id is an added transaction's pending_transaction_id");
    for t in &posted {
        let pending_id = t.pending_transaction_id.as_deref().expect("pending id");
        assert!(!t.pending, "{} is posted", t.transaction_id);
        assert!(pending_before.contains(pending_id), "{pending_id} was pending before the advance");
        assert!(!mirror.transactions.contains_key(pending_id), "pending {pending_id} is gone");
        assert!(mirror.transactions.contains_key(&t.transaction_id));
    }

    // Across the whole Item: a posted transaction never coexists with the pending one it replaced.
    for t in mirror.transactions.values() {
        if let Some(pending_id) = &t.pending_transaction_id {
            assert!(!t.pending, "{} is pending yet replaces {pending_id}", t.transaction_id);
            assert!(!mirror.transactions.contains_key(pending_id), "{pending_id} and its posted form coexist");
        }
    }

    // Nothing changed since: one empty page, same cursor.
    let cursor = mirror.cursor.clone();
    let idle = mirror.sync(&h.client, &item.access_token, PAGE_SIZE).await.expect("idle sync");
    assert_eq!((idle.pages, idle.added.len(), idle.modified.len(), idle.removed.len()), (1, 0, 0, 0));
    assert_eq!(mirror.cursor, cursor);
}

// ---- 3. pagination restarts ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_mutation_error_mid_pagination_restarts_the_loop_once_and_it_converges() {
    let h = Harness::start(test_config()).await;
    let item = h.link_platypus(730).await;
    let mut mirror = Mirror::default();
    let mut injected = false;
    let run = mirror
        .sync_with(&h.client, &item.access_token, PAGE_SIZE, async |pages| {
            if pages == 2 && !injected {
                injected = true;
                h.inject_fault(json!({
                    "endpoint": "/transactions/sync",
                    "error": "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION",
                    "count": 1,
                }))
                .await;
            }
        })
        .await
        .expect("sync");
    assert!(injected, "the history needs more than two pages");
    assert_eq!(run.restarts.len(), 1, "{:?}", run.restarts);
    let (status, error) = &run.restarts[0];
    assert_eq!((*status, &error.error_type), (400, &ErrorType::TransactionsError));
    assert!(error.request_id.is_some());
    assert_converged(&mirror, &h.ground_truth(&item.item_id).await);
    // The client left the restart to the loop: that error was a single attempt.
    let failed: Vec<_> = h
        .observer
        .calls_to(Endpoint::TransactionsSync)
        .into_iter()
        .filter(|c| matches!(c.outcome, CallOutcome::ApiError { .. }))
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].attempt, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_change_mid_pagination_fails_the_next_page_with_a_typed_error_and_a_restart_converges() {
    let h = Harness::start(test_config()).await;
    // 45 days at 50 per page: several pages, well within the 50 syncs/minute per-Item limit.
    let item = h.link_platypus(45).await;
    let mut mirror = Mirror::default();
    let mut advanced = false;
    let run = mirror
        .sync_with(&h.client, &item.access_token, 50, async |pages| {
            if pages == 1 && !advanced {
                advanced = true;
                h.advance(&item.item_id, 3).await;
            }
        })
        .await
        .expect("sync");
    assert!(advanced, "the history needs more than one page of 50");
    assert_eq!(run.restarts.len(), 1, "{:?}", run.restarts);
    let (status, error) = &run.restarts[0];
    assert_eq!(*status, 400);
    assert_eq!(error.error_type, ErrorType::TransactionsError);
    assert_eq!(error.error_code, codes::TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION);
    assert!(!error.is_retryable());
    assert!(run.pages > 1);
    assert_converged(&mirror, &h.ground_truth(&item.item_id).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_during_an_incremental_pagination_restarts_from_the_stored_cursor_not_from_scratch() {
    let h = Harness::start(test_config()).await;
    let item = h.link_platypus(30).await;
    let mut mirror = Mirror::default();
    mirror.sync(&h.client, &item.access_token, PAGE_SIZE).await.expect("initial sync");
    let known: HashSet<String> = mirror.transactions.keys().cloned().collect();
    h.advance(&item.item_id, 10).await;
    let mut advanced = false;
    // Pages of 5 so the ten days of changes span several pages.
    let run = mirror
        .sync_with(&h.client, &item.access_token, 5, async |pages| {
            if pages == 2 && !advanced {
                advanced = true;
                h.advance(&item.item_id, 2).await;
            }
        })
        .await
        .expect("incremental sync");
    assert!(advanced, "ten days of changes should take more than two pages of 5");
    assert_eq!(run.restarts.len(), 1);
    assert_eq!(run.restarts[0].1.error_code, codes::TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION);
    // From the stored cursor, transactions the mirror already had come back as modified or
    // removed, never as added; a restart from scratch would add the whole history again.
    assert!(!run.added.is_empty());
    let repeated: Vec<&str> =
        run.added.iter().map(|t| t.transaction_id.as_str()).filter(|id| known.contains(*id)).collect();
    assert!(repeated.is_empty(), "known transactions added again: {repeated:?}");
    assert_converged(&mirror, &h.ground_truth(&item.item_id).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncs_of_any_page_size_interleaved_with_advances_mid_pagination_always_converge() {
    // Many small pages exceed the per-Item sync limit; this test is about the data.
    let h = Harness::start(SimConfig { rate_limits: false, ..test_config() }).await;
    let page_sizes = [1, 2, 3, 5, 8, 13, 500];
    // A fixed xorshift sequence: varied but reproducible schedules.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let (mut restarts, mut rounds) = (0, 0);
    for _ in 0..3 {
        let item = h.link_platypus(14).await;
        let mut mirror = Mirror::default();
        for round in 0..8 {
            let count = page_sizes[next(page_sizes.len() as u64) as usize];
            let interrupt_after = 1 + next(4) as usize;
            let days = 1 + next(5) as u32;
            let mut interrupted = false;
            let run = mirror
                .sync_with(&h.client, &item.access_token, count, async |pages| {
                    if pages == interrupt_after && !interrupted {
                        interrupted = true;
                        h.advance(&item.item_id, days).await;
                    }
                })
                .await
                .expect("sync");
            assert_eq!(run.restarts.len(), usize::from(interrupted), "round {round}, count {count}");
            assert_converged(&mirror, &h.ground_truth(&item.item_id).await);
            restarts += run.restarts.len();
            rounds += 1;
            h.advance(&item.item_id, 1 + next(3) as u32).await;
        }
    }
    println!("interleaved: {rounds} syncs, {restarts} restarted by a change mid-pagination");
    assert!(restarts >= rounds / 3, "the schedule should interrupt a good share of the syncs");
}

// ---- 4. NOT_READY --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_before_the_product_is_ready_says_not_ready_with_an_empty_cursor_then_a_webhook_announces_data() {
    let delay = Duration::from_secs(3);
    let receiver = Receiver::start().await;
    let h = Harness::start(SimConfig { product_ready_delay: delay, ..test_config() }).await;
    let created_at = Instant::now();
    let item = h
        .link(
            SandboxPublicTokenCreateRequest::new(PLATYPUS, [Product::Transactions])
                .days_requested(30)
                .webhook(&receiver.url),
        )
        .await;
    let mut mirror = Mirror::default();
    // NOT_READY itself shows the sync ran before the data was ready (the 3 s leave a loaded machine room to link).
    let early = mirror.sync(&h.client, &item.access_token, PAGE_SIZE).await.expect("early sync");
    assert_eq!(early.status, TransactionsUpdateStatus::NotReady);
    assert!(mirror.cursor.is_empty() && mirror.transactions.is_empty());

    // The early sync armed SYNC_UPDATES_AVAILABLE; it arrives once the data is there.
    let announced = receiver.next_with_code("SYNC_UPDATES_AVAILABLE").await;
    assert!(created_at.elapsed() >= delay, "announced after {:?}, before the data was ready", created_at.elapsed());
    let keys = KeyCache::new(h.client.clone());
    verify(&announced.body, announced.verification(), &keys, Utc::now()).await.expect("announcement verifies");
    assert_eq!(announced.webhook().item_id.as_deref(), Some(item.item_id.as_str()));

    let ready = mirror.sync(&h.client, &item.access_token, PAGE_SIZE).await.expect("sync when ready");
    assert_eq!(ready.status, TransactionsUpdateStatus::HistoricalUpdateComplete);
    assert!(!mirror.cursor.is_empty());
    let truth = h.ground_truth(&item.item_id).await;
    assert!(!truth.is_empty());
    assert_converged(&mirror, &truth);
}

// ---- 5. typed errors -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaid_errors_arrive_typed_for_bad_tokens_bad_keys_and_a_login_that_needs_the_user() {
    let h = Harness::start(test_config()).await;
    let client = &h.client;

    let unknown = plaid::AccessToken::new("access-sandbox-00000000-0000-0000-0000-000000000000");
    let result = client.item_get(&unknown).await;
    let printed = format!("{result:?} {}", result.as_ref().err().map(ToString::to_string).unwrap_or_default());
    assert!(!printed.contains(unknown.expose_secret()), "the access token leaked into the error: {printed}");
    let (status, error) = api_error(result);
    assert_eq!(
        (status, &error.error_type, error.error_code.as_str()),
        (400, &ErrorType::InvalidInput, codes::INVALID_ACCESS_TOKEN)
    );
    assert!(error.request_id.is_some());

    let created = client
        .sandbox_public_token_create(&SandboxPublicTokenCreateRequest::new(PLATYPUS, [Product::Transactions]))
        .await
        .expect("public token");
    let item = client.item_public_token_exchange(&created.public_token).await.expect("first exchange");
    let (_, error) = api_error(client.item_public_token_exchange(&created.public_token).await);
    assert_eq!((&error.error_type, error.error_code.as_str()), (&ErrorType::InvalidInput, codes::INVALID_PUBLIC_TOKEN));

    let wrong_secret = "not-the-sim-secret";
    let impostor = PlaidClient::new(h.client_config(Some(wrong_secret))).expect("client");
    let result = impostor.item_get(&item.access_token).await;
    assert!(!format!("{result:?}").contains(wrong_secret), "the secret leaked into an error");
    let (_, error) = api_error(result);
    assert_eq!((&error.error_type, error.error_code.as_str()), (&ErrorType::InvalidInput, codes::INVALID_API_KEYS));

    h.reset_login(&item.item_id).await;
    h.observer.take();
    let (status, error) = api_error(client.accounts_get(&AccountsGetRequest::new(item.access_token.clone())).await);
    assert_eq!(
        (status, &error.error_type, error.error_code.as_str()),
        (400, &ErrorType::ItemError, codes::ITEM_LOGIN_REQUIRED)
    );
    assert!(error.requires_user_action());
    assert!(!error.is_retryable());
    assert!(!error.user_message().trim().is_empty());
    assert_eq!(h.observer.take().len(), 1, "ITEM_LOGIN_REQUIRED is not retried");
    let error =
        api_error(client.transactions_sync(&plaid::TransactionsSyncRequest::new(item.access_token.clone())).await).1;
    assert_eq!(error.error_code, codes::ITEM_LOGIN_REQUIRED);
    // /item/get still answers, and reports the Item's health.
    let got = client.item_get(&item.access_token).await.expect("item_get on a broken Item");
    let item_error = got.item.error.expect("item.error is set");
    assert_eq!(item_error.error_code, codes::ITEM_LOGIN_REQUIRED);
    assert!(item_error.requires_user_action());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_mode_link_repairs_a_login_required_item_and_the_client_works_again() {
    let h = Harness::start(test_config()).await;
    let item = h.link_platypus(30).await;
    h.client.sandbox_item_reset_login(&item.access_token).await.expect("reset_login");
    let request = AccountsGetRequest::new(item.access_token.clone());
    assert_eq!(api_error(h.client.accounts_get(&request).await).1.error_code, codes::ITEM_LOGIN_REQUIRED);

    let update = h
        .client
        .link_token_create(&LinkTokenCreateRequest::new("banksync", "user-1").update_mode(item.access_token.clone()))
        .await
        .expect("update-mode link token");
    let session = h.link_session_start(&update.link_token).await;
    let session_id = session["link_session_id"].as_str().expect("link_session_id");
    let (status, wrong) = h.link_session_submit(&update.link_token, session_id, PLATYPUS, "user_good", "nope").await;
    assert_eq!((status, wrong["error_code"].as_str()), (400, Some(codes::INVALID_CREDENTIALS)), "{wrong}");
    assert_eq!(api_error(h.client.accounts_get(&request).await).1.error_code, codes::ITEM_LOGIN_REQUIRED);
    let (status, repaired) =
        h.link_session_submit(&update.link_token, session_id, PLATYPUS, "user_good", "pass_good").await;
    assert_eq!(status, 200, "{repaired}");

    // Same access token, no exchange needed: the Item is healthy again.
    h.client.accounts_get(&request).await.expect("accounts after the repair");
    assert!(h.client.item_get(&item.access_token).await.expect("item_get").item.error.is_none());
    let mut mirror = Mirror::default();
    mirror.sync(&h.client, &item.access_token, PAGE_SIZE).await.expect("sync after the repair");
    assert_converged(&mirror, &h.ground_truth(&item.item_id).await);
}

// ---- 6. faults and retries -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_api_errors_are_retried_and_each_attempt_is_observed_with_its_request_id() {
    let h = Harness::start(test_config()).await;
    let item = h.link_platypus(30).await;
    h.observer.take();
    h.inject_fault(json!({"endpoint": "/accounts/get", "error": "API_ERROR", "count": 2})).await;
    let accounts = h.client.accounts_get(&AccountsGetRequest::new(item.access_token.clone())).await.expect("third try");
    let calls = h.observer.take();
    let summary: Vec<(Endpoint, u32, Option<u16>)> =
        calls.iter().map(|c| (c.endpoint, c.attempt, c.http_status)).collect();
    assert_eq!(
        summary,
        [
            (Endpoint::AccountsGet, 1, Some(500)),
            (Endpoint::AccountsGet, 2, Some(500)),
            (Endpoint::AccountsGet, 3, Some(200))
        ]
    );
    for failed in &calls[..2] {
        assert_eq!(
            failed.outcome,
            CallOutcome::ApiError { error_type: ErrorType::ApiError, error_code: "INTERNAL_SERVER_ERROR".into() }
        );
    }
    assert_eq!(calls[2].outcome, CallOutcome::Ok);
    let request_ids: HashSet<&str> = calls.iter().map(|c| c.request_id.as_deref().expect("request_id")).collect();
    assert_eq!(request_ids.len(), 3, "every attempt has its own request_id");
    assert_eq!(calls[2].request_id.as_deref(), Some(accounts.request_id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_and_institution_faults_are_retried_and_a_persistent_one_surfaces_typed() {
    let h = Harness::start(test_config()).await;
    let item = h.link_platypus(30).await;
    h.observer.take();

    h.inject_fault(json!({"endpoint": "/accounts/get", "error": "RATE_LIMIT_EXCEEDED", "count": 1})).await;
    h.client.accounts_get(&AccountsGetRequest::new(item.access_token.clone())).await.expect("retried after 429");
    let calls = h.observer.take();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].http_status, Some(429));
    assert_eq!(
        calls[0].outcome,
        CallOutcome::ApiError { error_type: ErrorType::RateLimitExceeded, error_code: "ACCOUNTS_LIMIT".into() }
    );
    assert_eq!((calls[1].attempt, &calls[1].outcome), (2, &CallOutcome::Ok));

    h.inject_fault(json!({"endpoint": "/accounts/balance/get", "error": "INSTITUTION_NOT_RESPONDING", "count": 1}))
        .await;
    h.client.accounts_balance_get(&AccountsBalanceGetRequest::new(item.access_token.clone())).await.expect("retried");
    let calls = h.observer.take();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0].outcome,
        CallOutcome::ApiError {
            error_type: ErrorType::InstitutionError,
            error_code: codes::INSTITUTION_NOT_RESPONDING.into()
        }
    );
    assert_eq!(calls[1].outcome, CallOutcome::Ok);

    // A bank that never answers: the client gives up after its three attempts, typed.
    h.inject_fault(json!({"endpoint": "/item/get", "error": "INSTITUTION_NOT_RESPONDING"})).await;
    let result = h.client.item_get(&item.access_token).await;
    let transient = result.as_ref().err().is_some_and(Error::is_transient);
    let (status, error) = api_error(result);
    assert_eq!((status, error.error_code.as_str()), (400, codes::INSTITUTION_NOT_RESPONDING));
    assert!(transient);
    assert!(error.display_message.is_some() && !error.requires_user_action());
    assert_eq!(h.observer.take().len(), 3);
    h.clear_faults().await;
    h.client.item_get(&item.access_token).await.expect("the bank is back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_balance_call_times_out_quickly_while_other_calls_on_the_same_simulator_succeed() {
    let h = Harness::start(test_config()).await;
    let item = h.link_platypus(30).await;
    let fault = h.inject_fault(json!({"endpoint": "/accounts/balance/get", "hang": true, "count": 1})).await;
    let limit = Duration::from_secs(3);
    let impatient = h.client.with_timeouts(Timeouts { balance: limit, ..h.client.timeouts().clone() });
    h.observer.take();

    let started = Instant::now();
    let balance_done = std::sync::atomic::AtomicBool::new(false);
    let balance = async {
        let result = impatient.accounts_balance_get(&AccountsBalanceGetRequest::new(item.access_token.clone())).await;
        balance_done.store(true, std::sync::atomic::Ordering::SeqCst);
        (result, started.elapsed())
    };
    let item_get = async {
        // The balance request reached the simulator and hangs there; item_get answers meanwhile, before the
        // balance call gave up (the order, not a clock, shows nothing waited for the hung call).
        h.wait_fired(&fault, 1).await;
        let result = h.client.item_get(&item.access_token).await;
        (result, balance_done.load(std::sync::atomic::Ordering::SeqCst))
    };
    // The hung call never answers: whatever ends it is the client's timeout (a generous bound on waiting for it).
    let joined = tokio::time::timeout(Duration::from_secs(60), async { tokio::join!(balance, item_get) });
    let ((balance, balance_took), (got, balance_ended_first)) =
        joined.await.expect("the client timeout ended the hung call");

    assert!(matches!(balance, Err(Error::Timeout { endpoint: Endpoint::AccountsBalanceGet })), "{balance:?}");
    assert!(balance_took >= limit, "timed out after {balance_took:?}, before its {limit:?}");
    assert_eq!(got.expect("item_get during the hang").item.item_id, item.item_id);
    assert!(!balance_ended_first, "item_get waited for the hung call");
    let balance_calls = h.observer.calls_to(Endpoint::AccountsBalanceGet);
    assert_eq!(balance_calls.len(), 1, "a balance timeout is not retried");
    assert_eq!(balance_calls[0].outcome, CallOutcome::Timeout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_sync_page_times_out_and_the_client_retries_it_by_itself() {
    let h = Harness::start(test_config()).await;
    let item = h.link_platypus(30).await;
    h.inject_fault(json!({"endpoint": "/transactions/sync", "hang": true, "count": 1})).await;
    let impatient = h
        .client
        .with_timeouts(Timeouts { transactions_sync: Duration::from_millis(300), ..h.client.timeouts().clone() });
    h.observer.take();
    let mut mirror = Mirror::default();
    mirror.sync(&impatient, &item.access_token, PAGE_SIZE).await.expect("sync despite one hung page");
    assert_converged(&mirror, &h.ground_truth(&item.item_id).await);
    let calls = h.observer.take();
    let outcomes: Vec<(u32, &CallOutcome)> = calls.iter().map(|c| (c.attempt, &c.outcome)).collect();
    // Repeating a sync page is harmless, so a timeout there is retried (unlike balance).
    assert_eq!(outcomes, [(1, &CallOutcome::Timeout), (2, &CallOutcome::Ok)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_balance_calls_on_one_item_hit_plaids_per_item_balance_limit() {
    let h = Harness::start(SimConfig { balance_latency: Duration::ZERO..=Duration::ZERO, ..test_config() }).await;
    let item = h.link_platypus(30).await;
    let once = h.client.with_retry(RetryPolicy::none());
    let (mut ok, mut limited) = (0, 0);
    for call in 0..30 {
        match once.accounts_balance_get(&AccountsBalanceGetRequest::new(item.access_token.clone())).await {
            Ok(_) => {
                assert_eq!(limited, 0, "call {call} succeeded after the limit was hit");
                ok += 1;
            }
            Err(Error::Api { status, error }) => {
                assert_eq!((status, &error.error_type), (429, &ErrorType::RateLimitExceeded));
                assert_eq!(error.error_code, "BALANCE_LIMIT");
                assert!(error.is_retryable());
                limited += 1;
            }
            Err(other) => panic!("call {call}: {other:?}"),
        }
    }
    // Plaid sandbox: 25 /accounts/balance/get per Item per minute.
    assert_eq!((ok, limited), (25, 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_history_at_500_per_page_runs_into_plaids_per_item_sync_limit_after_fifty_pages() {
    // With rate limits on (the simulator's default, like Plaid's sandbox), one Item allows
    // 50 /transactions/sync calls a minute. A 30,000-transaction history needs 60 pages, so
    // a single loop cannot finish it within a minute: the caller must wait and resume.
    let h = Harness::start(test_config()).await;
    let item = h
        .link(
            SandboxPublicTokenCreateRequest::new(PLATYPUS, [Product::Transactions])
                .credentials("user_bulk_30000", "any"),
        )
        .await;
    let mut mirror = Mirror::default();
    let result = mirror.sync(&h.client, &item.access_token, PAGE_SIZE).await;
    let transient = result.as_ref().err().is_some_and(Error::is_transient);
    let (status, error) = api_error(result);
    assert_eq!((status, &error.error_type), (429, &ErrorType::RateLimitExceeded));
    assert_eq!(error.error_code, "TRANSACTIONS_SYNC_LIMIT");
    assert!(transient);
    assert!(mirror.transactions.is_empty() && mirror.cursor.is_empty(), "a failed loop applies nothing");
    let calls = h.observer.calls_to(Endpoint::TransactionsSync);
    assert_eq!(calls.iter().filter(|c| c.outcome == CallOutcome::Ok).count(), 50);
    assert_eq!(calls.len(), 50 + 3, "the limited page was tried three times");
}

// ---- 7. webhooks ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_from_the_simulator_verify_and_forged_or_altered_ones_are_rejected() {
    let receiver = Receiver::start().await;
    let h = Harness::start(test_config()).await;
    let keys = KeyCache::new(h.client.clone());
    let item = h
        .link(
            SandboxPublicTokenCreateRequest::new(PLATYPUS, [Product::Transactions])
                .days_requested(30)
                .webhook(&receiver.url),
        )
        .await;
    let mut mirror = Mirror::default();
    mirror.sync(&h.client, &item.access_token, PAGE_SIZE).await.expect("sync arms SYNC_UPDATES_AVAILABLE");
    h.advance(&item.item_id, 2).await;

    let delivery = receiver.next_with_code("SYNC_UPDATES_AVAILABLE").await;
    let jwt = delivery.verification().expect("Plaid-Verification header").to_owned();
    let claims = verify(&delivery.body, Some(&jwt), &keys, Utc::now()).await.expect("a genuine webhook verifies");
    assert_eq!(claims.request_body_sha256, hex::encode(Sha256::digest(&delivery.body)));
    assert_eq!(forgery::header(&jwt)["kid"], claims.kid.as_str());
    assert!((Utc::now() - claims.issued_at).num_seconds().abs() < 60);
    let webhook = delivery.webhook();
    assert_eq!(
        (&webhook.webhook_type, &webhook.webhook_code),
        (&WebhookType::Transactions, &WebhookCode::SyncUpdatesAvailable)
    );
    assert_eq!(webhook.item_id.as_deref(), Some(item.item_id.as_str()));
    assert_eq!(
        webhook.event,
        WebhookEvent::SyncUpdatesAvailable { initial_update_complete: true, historical_update_complete: true }
    );

    // The same token over a body changed by one byte.
    let mut altered = delivery.body.to_vec();
    let middle = altered.len() / 2;
    altered[middle] ^= 0x01;
    assert_eq!(verify(&altered, Some(&jwt), &keys, Utc::now()).await, Err(Rejection::BodyMismatch));
    // The simulator's header and payload, signed by someone else's P-256 key.
    let forged = forgery::resign_with_foreign_key(&jwt);
    assert_eq!(forgery::header(&forged)["kid"], claims.kid.as_str());
    assert_eq!(verify(&delivery.body, Some(&forged), &keys, Utc::now()).await, Err(Rejection::BadSignature));
    assert_eq!(verify(&delivery.body, None, &keys, Utc::now()).await, Err(Rejection::MissingHeader));
    // A kid Plaid never issued: looked up once, unknown.
    let unknown_kid = forgery::with_header(&jwt, &json!({"alg": "ES256", "kid": "not-a-plaid-kid", "typ": "JWT"}));
    assert_eq!(verify(&delivery.body, Some(&unknown_kid), &keys, Utc::now()).await, Err(Rejection::UnknownKey));
    // Other algorithms are refused before any key lookup.
    for alg in ["none", "HS256"] {
        let other = forgery::with_header(&jwt, &json!({"alg": alg, "kid": claims.kid, "typ": "JWT"}));
        assert_eq!(
            verify(&delivery.body, Some(&other), &keys, Utc::now()).await,
            Err(Rejection::UnsupportedAlgorithm(alg.to_owned()))
        );
    }
    // The genuine webhook replayed six minutes later.
    let later = Utc::now() + chrono::Duration::minutes(6);
    assert_eq!(verify(&delivery.body, Some(&jwt), &keys, later).await, Err(Rejection::Stale));

    // ITEM / ERROR after the login breaks.
    h.client.sandbox_item_reset_login(&item.access_token).await.expect("reset_login");
    let delivery = receiver.next_with_code("ERROR").await;
    verify(&delivery.body, delivery.verification(), &keys, Utc::now()).await.expect("ITEM ERROR verifies");
    let webhook = delivery.webhook();
    assert_eq!(webhook.webhook_type, WebhookType::Item);
    assert_eq!(webhook.item_id.as_deref(), Some(item.item_id.as_str()));
    let WebhookEvent::ItemError { error: Some(error) } = &webhook.event else {
        panic!("not an ITEM ERROR event: {:?}", webhook.event);
    };
    assert_eq!(error.error_code, codes::ITEM_LOGIN_REQUIRED);
    assert!(error.requires_user_action());

    // A new URL: the acknowledgement goes there, signed the same way.
    let second = Receiver::start().await;
    let updated = h.client.item_webhook_update(&item.access_token, Some(&second.url)).await.expect("webhook update");
    assert_eq!(updated.item.webhook.as_deref(), Some(second.url.as_str()));
    let delivery = second.next_with_code("WEBHOOK_UPDATE_ACKNOWLEDGED").await;
    verify(&delivery.body, delivery.verification(), &keys, Utc::now()).await.expect("acknowledgement verifies");
    assert_eq!(
        delivery.webhook().event,
        WebhookEvent::WebhookUpdateAcknowledged { new_webhook_url: Some(second.url.clone()), error: None }
    );

    // Three verified webhooks, one key fetch for the simulator's kid (the cache did its job)
    // and one for the unknown kid.
    let fetches = h.observer.calls_to(Endpoint::WebhookVerificationKeyGet);
    let outcomes: Vec<Option<u16>> = fetches.iter().map(|c| c.http_status).collect();
    assert_eq!(outcomes, [Some(200), Some(400)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_signing_key_rotation_webhooks_verify_through_a_new_key_and_the_retired_key_is_refused() {
    let receiver = Receiver::start().await;
    let h = Harness::start(test_config()).await;
    let keys = KeyCache::new(h.client.clone());
    let item = h
        .link(
            SandboxPublicTokenCreateRequest::new(PLATYPUS, [Product::Transactions])
                .days_requested(30)
                .webhook(&receiver.url),
        )
        .await;
    let fire = plaid::SandboxItemFireWebhookRequest {
        access_token: item.access_token.clone(),
        webhook_type: Some(WebhookType::Item),
        webhook_code: WebhookCode::NewAccountsAvailable,
    };

    assert!(h.client.sandbox_item_fire_webhook(&fire).await.expect("fire").webhook_fired);
    let before = receiver.next_with_code("NEW_ACCOUNTS_AVAILABLE").await;
    let old = verify(&before.body, before.verification(), &keys, Utc::now()).await.expect("verifies");
    assert_eq!(before.webhook().event, WebhookEvent::NewAccountsAvailable { error: None });

    let new_kid = h.rotate_webhook_key().await;
    assert_ne!(new_kid, old.kid);
    assert!(h.client.sandbox_item_fire_webhook(&fire).await.expect("fire").webhook_fired);
    let after = receiver.next_with_code("NEW_ACCOUNTS_AVAILABLE").await;
    let new = verify(&after.body, after.verification(), &keys, Utc::now()).await.expect("verifies with the new key");
    assert_eq!(new.kid, new_kid);
    assert_eq!(h.observer.calls_to(Endpoint::WebhookVerificationKeyGet).len(), 2, "one fetch per kid");

    // A verifier that learns the old key now learns it is expired.
    let late = KeyCache::new(h.client.clone());
    assert_eq!(verify(&before.body, before.verification(), &late, Utc::now()).await, Err(Rejection::KeyExpired));
}

// ---- 8. concurrency ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_balance_calls_on_different_items_run_concurrently() {
    let h = Harness::start(test_config()).await;
    let mut items = Vec::new();
    for _ in 0..4 {
        items.push(h.link_platypus(30).await);
    }
    // Each of the next four balance calls takes the bank 5 s.
    let latency = Duration::from_secs(5);
    let fault = h
        .inject_fault(
            json!({"endpoint": "/accounts/balance/get", "latency_ms": latency.as_millis() as u64, "count": 4}),
        )
        .await;
    let finished = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut calls = tokio::task::JoinSet::new();
    for item in &items {
        let (client, token, finished) = (h.client.clone(), item.access_token.clone(), finished.clone());
        calls.spawn(async move {
            let call_started = Instant::now();
            client.accounts_balance_get(&AccountsBalanceGetRequest::new(token)).await.expect("balance");
            finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            call_started.elapsed()
        });
    }
    // All four reached the bank before any of them was answered: they run at the same time (counted, not timed).
    h.wait_fired(&fault, 4).await;
    assert_eq!(finished.load(std::sync::atomic::Ordering::SeqCst), 0, "a balance call ended before the fourth began");
    // Meanwhile the same Items answer everything else: a slow bank blocks nothing.
    h.client.item_get(&items[0].access_token).await.expect("item_get during balance calls");
    Mirror::default().sync(&h.client, &items[1].access_token, PAGE_SIZE).await.expect("sync during balance calls");
    assert_eq!(finished.load(std::sync::atomic::Ordering::SeqCst), 0, "item_get + sync waited for the bank");
    let durations = calls.join_all().await;
    assert_eq!(durations.len(), 4);
    assert!(durations.iter().all(|d| *d >= latency), "each call took the bank's time: {durations:?}");
}

// ---- 9. scale ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_item_of_one_hundred_thousand_transactions_syncs_completely() {
    // 200 pages exceed Plaid's 50 syncs per Item per minute; this test measures the pipeline.
    let h = Harness::start(SimConfig { rate_limits: false, ..test_config() }).await;
    let item = h
        .link(
            SandboxPublicTokenCreateRequest::new(PLATYPUS, [Product::Transactions])
                .credentials("user_bulk_100000", "any"),
        )
        .await;
    let started = Instant::now();
    let mut mirror = Mirror::default();
    let run = mirror.sync(&h.client, &item.access_token, PAGE_SIZE).await.expect("bulk sync");
    let elapsed = started.elapsed();
    assert_eq!(mirror.transactions.len(), 100_000);
    assert_eq!(run.pages, 200);
    assert!(run.restarts.is_empty());
    assert_eq!(h.sim_transactions_count(&item.item_id).await, 100_000);
    let truth = h.ground_truth(&item.item_id).await;
    assert_eq!(truth.len(), 100_000);
    assert_converged(&mirror, &truth);
    println!(
        "bulk: 100000 transactions in {} pages, {:.2?} ({:.0} transactions/s)",
        run.pages,
        elapsed,
        100_000.0 / elapsed.as_secs_f64()
    );
}
