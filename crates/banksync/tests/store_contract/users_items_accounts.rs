//! Users, sessions and tokens; Items; accounts and balances.

use super::*;

pub(crate) async fn users_sessions_and_tokens(s: S) {
    let alice = user(&s, "alice").await;
    assert!(is_conflict(s.create_user("alice", "x").await), "duplicate username");
    assert_eq!(s.find_user_by_username("alice").await.unwrap().unwrap().id, alice.id);
    assert!(s.find_user_by_username("nobody").await.unwrap().is_none());
    assert_eq!(s.get_user(&alice.id).await.unwrap().password_hash, "$argon2id$fake");
    assert!(is_not_found(s.get_user(&"missing".into()).await));
    assert!(!format!("{alice:?}").contains("argon2"), "Debug redacts the password hash");

    let session = NewSession {
        id_hash: "sess-hash".into(),
        user_id: alice.id.clone(),
        csrf_token: "csrf".into(),
        expires_at: Utc::now() + chrono::Duration::hours(1),
    };
    s.create_session(&session).await.unwrap();
    let found = s.find_session("sess-hash").await.unwrap().unwrap();
    assert_eq!((found.user_id.as_str(), found.csrf_token.as_str()), (alice.id.as_str(), "csrf"));
    let expired =
        NewSession { id_hash: "old".into(), expires_at: Utc::now() - chrono::Duration::seconds(1), ..session };
    s.create_session(&expired).await.unwrap();
    assert!(s.find_session("old").await.unwrap().is_none(), "expired session");
    assert_eq!(s.delete_expired_sessions().await.unwrap(), 1);
    s.delete_session("sess-hash").await.unwrap();
    assert!(s.find_session("sess-hash").await.unwrap().is_none());

    let token = s.create_api_token(&alice.id, "cli", "tok-hash").await.unwrap();
    assert!(token.last_used_at.is_none());
    assert!(is_conflict(s.create_api_token(&alice.id, "again", "tok-hash").await), "token hashes are unique");
    assert_eq!(s.find_user_by_api_token_hash("tok-hash").await.unwrap().unwrap().id, alice.id);
    assert!(s.find_user_by_api_token_hash("other").await.unwrap().is_none());
    let listed = s.list_api_tokens(&alice.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_used_at.is_some(), "use is recorded");
    let bob = user(&s, "bob").await;
    assert!(is_not_found(s.delete_api_token(&bob.id, &token.id).await), "another user's token");
    s.delete_api_token(&alice.id, &token.id).await.unwrap();
    assert!(s.find_user_by_api_token_hash("tok-hash").await.unwrap().is_none());
}

pub(crate) async fn items_are_unique_and_scoped_by_owner(s: S) {
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    assert_eq!(a.status, ItemStatus::Good);
    assert_eq!(a.access_token, sealed("item-a"), "sealed token round-trips byte for byte");
    assert!(a.cursor.is_none());

    let dup = s
        .insert_item(&NewItem {
            item_id: "item-a".into(),
            user_id: bob.id.clone(),
            institution_id: None,
            institution_name: None,
            access_token: sealed("x"),
        })
        .await;
    assert!(is_conflict(dup), "Plaid's item_id is unique");

    assert_eq!(s.get_item(&alice.id, &"item-a".into()).await.unwrap().id, a.id);
    assert!(is_not_found(s.get_item(&bob.id, &"item-a".into()).await), "another user's Item is NotFound");
    assert!(is_not_found(s.get_item(&alice.id, &"nope".into()).await));
    assert_eq!(s.get_item_by_plaid_id(&"item-a".into()).await.unwrap().unwrap().user_id, alice.id);
    assert!(s.get_item_by_plaid_id(&"nope".into()).await.unwrap().is_none());

    assert_eq!(s.find_item_by_institution(&alice.id, "ins_1").await.unwrap().unwrap().item_id, "item-a");
    assert!(s.find_item_by_institution(&bob.id, "ins_1").await.unwrap().is_none());
    item(&s, &bob, "item-b", "ins_1").await;
    assert_eq!(s.list_items(&alice.id).await.unwrap().len(), 1);
    assert_eq!(s.list_items(&bob.id).await.unwrap().len(), 1);
    assert_eq!(s.list_all_items().await.unwrap().len(), 2);
    assert!(is_not_found(s.delete_item(&bob.id, &"item-a".into()).await), "cannot delete another user's Item");
    assert!(s.get_item_by_plaid_id(&"item-a".into()).await.unwrap().is_some());
}

pub(crate) async fn item_status_and_token_updates(s: S) {
    let alice = user(&s, "alice").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    let deadline = at("2026-12-01T00:00:00Z");
    let health = ItemHealth {
        status: ItemStatus::PendingDisconnect,
        error_code: Some("ITEM_LOGIN_REQUIRED".into()),
        error_message: Some("internal".into()),
        display_message: Some("Please log in again".into()),
        disconnect_at: Some(deadline),
    };
    s.update_item_status(&a.id, &health).await.unwrap();
    s.set_item_consent_expiration(&a.id, Some(deadline)).await.unwrap();
    s.set_new_accounts_available(&a.id, true).await.unwrap();
    let got = fresh(&s, &a).await;
    assert_eq!(got.status, ItemStatus::PendingDisconnect);
    assert_eq!(got.error_code.as_deref(), Some("ITEM_LOGIN_REQUIRED"));
    assert_eq!(got.display_message.as_deref(), Some("Please log in again"));
    assert_eq!((got.disconnect_at, got.consent_expires_at), (Some(deadline), Some(deadline)));
    assert!(got.new_accounts_available);

    s.update_item_status(&a.id, &ItemHealth::good()).await.unwrap();
    let got = fresh(&s, &a).await;
    assert_eq!((got.status, got.error_code, got.disconnect_at), (ItemStatus::Good, None, None));

    let resealed = Sealed { key_id: "k2".into(), nonce: vec![9; 12], ciphertext: b"new".to_vec() };
    s.update_item_access_token(&a.id, &resealed).await.unwrap();
    assert_eq!(fresh(&s, &a).await.access_token, resealed);
    assert!(is_not_found(s.update_item_status(&"missing".into(), &ItemHealth::good()).await));
}

pub(crate) async fn delete_item_cascades(s: S) {
    let alice = user(&s, "alice").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    let b = item(&s, &alice, "item-b", "ins_2").await;
    let acct = |id: &str| NewAccount {
        account_id: id.into(),
        persistent_account_id: None,
        name: "Checking".into(),
        official_name: None,
        mask: Some("0000".into()),
        account_type: "depository".into(),
        subtype: Some("checking".into()),
        balances: Balances::default(),
        balance_as_of: None,
        balance_source: BalanceSource::Cached,
    };
    s.upsert_accounts(&a, &[acct("acc-a")], true).await.unwrap();
    s.upsert_accounts(&b, &[acct("acc-b")], true).await.unwrap();
    s.apply_sync(&a, &batch(vec![txn("t-a", "acc-a", "1", "2026-01-01T10:00:00Z")], vec![], &[], "c1")).await.unwrap();
    s.apply_sync(&b, &batch(vec![txn("t-b", "acc-b", "2", "2026-01-01T10:00:00Z")], vec![], &[], "c1")).await.unwrap();
    let run = s.start_sync_run(&a.id, "manual").await.unwrap();

    s.delete_item(&alice.id, &"item-a".into()).await.unwrap();
    assert!(s.get_item_by_plaid_id(&"item-a".into()).await.unwrap().is_none());
    let accounts =
        s.list_accounts(&alice.id, &AccountFilter { include_removed: true, ..Default::default() }).await.unwrap();
    assert_eq!(accounts.iter().map(|a| a.account_id.as_str()).collect::<Vec<_>>(), ["acc-b"]);
    assert_eq!(ids(&all_txns(&s, &alice, TransactionFilter::default()).await), ["t-b"]);
    assert!(is_not_found(s.get_transaction(&alice.id, &"t-a".into()).await));
    assert!(s.list_sync_runs(&a.id, 10).await.unwrap().is_empty(), "run {} went with the Item", run.id);
    assert!(is_not_found(s.delete_item(&alice.id, &"item-a".into()).await));
}

pub(crate) async fn accounts_and_balances(s: S) {
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    let b = item(&s, &alice, "item-b", "ins_2").await;
    let as_of = at("2026-03-01T12:00:00Z");
    let acct = |id: &str, current: &str| NewAccount {
        account_id: id.into(),
        persistent_account_id: None,
        name: format!("Account {id}"),
        official_name: Some("Official".into()),
        mask: Some("1234".into()),
        account_type: "depository".into(),
        subtype: Some("checking".into()),
        balances: Balances {
            available: Some(dec("100.10")),
            current: Some(dec(current)),
            limit: None,
            currency: Some("USD".into()),
            currency_is_official: true,
        },
        balance_as_of: Some(as_of),
        balance_source: BalanceSource::Cached,
    };
    s.upsert_accounts(&a, &[acct("acc-1", "1234567.891234"), acct("acc-2", "0.1")], true).await.unwrap();
    s.upsert_accounts(&b, &[acct("acc-3", "5")], true).await.unwrap();

    let all = s.list_accounts(&alice.id, &AccountFilter::default()).await.unwrap();
    assert_eq!(all.len(), 3);
    let one = all.iter().find(|x| x.account_id == "acc-1").unwrap();
    assert_eq!(one.item_id, "item-a");
    assert_eq!(one.balances.current, Some(dec("1234567.891234")));
    assert_eq!(one.balances.available.unwrap().to_string(), "100.10", "scale kept");
    assert_eq!((one.balance_as_of, one.balance_source), (Some(as_of), BalanceSource::Cached));
    let only_b = AccountFilter { item_id: Some("item-b".into()), ..Default::default() };
    assert_eq!(s.list_accounts(&alice.id, &only_b).await.unwrap().len(), 1);
    assert!(s.list_accounts(&bob.id, &AccountFilter::default()).await.unwrap().is_empty(), "scoped by owner");

    // A full list without acc-2 flags it removed; it comes back when listed again.
    s.upsert_accounts(&a, &[acct("acc-1", "1")], true).await.unwrap();
    let visible = s.list_accounts(&alice.id, &AccountFilter::default()).await.unwrap();
    assert!(visible.iter().all(|x| x.account_id != "acc-2"));
    let with_removed = AccountFilter { include_removed: true, ..Default::default() };
    let listed = s.list_accounts(&alice.id, &with_removed).await.unwrap();
    assert!(listed.iter().any(|x| x.account_id == "acc-2" && x.removed));

    let live_at = at("2026-03-02T08:00:00Z");
    let update = |id: &str| BalanceUpdate {
        account_id: id.into(),
        balances: Balances {
            available: None,
            current: Some(dec("-42.005")),
            limit: Some(dec("1000")),
            currency: Some("EUR".into()),
            currency_is_official: true,
        },
        as_of: live_at,
        source: BalanceSource::Live,
    };
    let n = s.update_balances(&a.id, &[update("acc-1"), update("acc-3"), update("ghost")]).await.unwrap();
    assert_eq!(n, 1, "only the Item's own accounts are updated");
    let got = s.list_accounts(&alice.id, &AccountFilter::default()).await.unwrap();
    let one = got.iter().find(|x| x.account_id == "acc-1").unwrap();
    assert_eq!(one.balances.current.unwrap().to_string(), "-42.005");
    assert_eq!((one.balance_as_of, one.balance_source), (Some(live_at), BalanceSource::Live));
    let three = got.iter().find(|x| x.account_id == "acc-3").unwrap();
    assert_eq!(three.balance_source, BalanceSource::Cached, "acc-3 belongs to item-b");
}

pub(crate) async fn cached_balances_do_not_replace_newer_or_recent_live_ones(s: S) {
    let alice = user(&s, "alice").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    let acct = |id: &str, name: &str, current: &str, as_of: Option<DateTime<Utc>>| NewAccount {
        account_id: id.into(),
        persistent_account_id: None,
        name: name.into(),
        official_name: None,
        mask: None,
        account_type: "depository".into(),
        subtype: None,
        balances: Balances {
            current: Some(dec(current)),
            currency: Some("USD".into()),
            currency_is_official: true,
            ..Balances::default()
        },
        balance_as_of: as_of,
        balance_source: BalanceSource::Cached,
    };
    let balance = |current: &str, as_of: DateTime<Utc>, source: BalanceSource| BalanceUpdate {
        account_id: "acc-1".into(),
        balances: Balances { current: Some(dec(current)), currency: Some("EUR".into()), ..Balances::default() },
        as_of,
        source,
    };
    async fn get(s: &S, user_id: &UserId) -> Account {
        let all = s.list_accounts(user_id, &AccountFilter::default()).await.unwrap();
        all.into_iter().find(|x| x.account_id == "acc-1").unwrap()
    }
    // Whole seconds: the database keeps microseconds.
    let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    let hour = chrono::TimeDelta::hours(1);
    s.upsert_accounts(&a, &[acct("acc-1", "Checking", "10", Some(now - hour * 48))], true).await.unwrap();

    // A live balance from a minute ago; then a sync brings a cached one stamped "now" (age unknown).
    let live_at = now - chrono::TimeDelta::minutes(1);
    s.update_balances(&a.id, &[balance("20", live_at, BalanceSource::Live)]).await.unwrap();
    s.upsert_accounts(&a, &[acct("acc-1", "Renamed", "11", Some(now))], false).await.unwrap();
    let one = get(&s, &alice.id).await;
    assert_eq!(one.name, "Renamed", "the account's details are still updated");
    assert_eq!(one.balances.current, Some(dec("20")), "the recent live balance stays");
    assert_eq!(one.balances.currency.as_deref(), Some("EUR"), "all balance columns stay together");
    assert_eq!((one.balance_source, one.balance_as_of), (BalanceSource::Live, Some(live_at)));

    // Cached data older than what is stored never replaces it, whatever the source.
    s.update_balances(&a.id, &[balance("30", now - hour * 5, BalanceSource::Cached)]).await.unwrap();
    s.upsert_accounts(&a, &[acct("acc-1", "Checking", "12", Some(now - hour * 6))], false).await.unwrap();
    let one = get(&s, &alice.id).await;
    assert_eq!((one.balances.current, one.balance_source), (Some(dec("30")), BalanceSource::Cached));
    // Nor does a balance without a date.
    s.upsert_accounts(&a, &[acct("acc-1", "Checking", "13", None)], false).await.unwrap();
    assert_eq!(get(&s, &alice.id).await.balances.current, Some(dec("30")));

    // Newer cached data replaces an older cached balance, and a live balance that is no longer recent.
    s.upsert_accounts(&a, &[acct("acc-1", "Checking", "14", Some(now - hour * 4))], false).await.unwrap();
    assert_eq!(get(&s, &alice.id).await.balances.current, Some(dec("14")));
    s.update_balances(&a.id, &[balance("40", now - hour * 3, BalanceSource::Live)]).await.unwrap();
    s.upsert_accounts(&a, &[acct("acc-1", "Checking", "15", Some(now - hour * 2))], false).await.unwrap();
    let one = get(&s, &alice.id).await;
    assert_eq!((one.balances.current, one.balance_source), (Some(dec("15")), BalanceSource::Cached));
    assert_eq!(one.balances.currency.as_deref(), Some("USD"));
}

/// A key re-seal writes only over the record it read: a token replaced in between (an update-mode relink) stands.
pub(crate) async fn reseal_is_a_compare_and_set_on_the_token_it_read(s: S) {
    let alice = user(&s, "alice").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    let read = a.access_token.clone();
    let relinked = Sealed { key_id: "k1".into(), nonce: vec![1; 12], ciphertext: b"new-token".to_vec() };
    s.update_item_access_token(&a.id, &relinked).await.unwrap();
    let resealed = Sealed { key_id: "k2".into(), nonce: vec![2; 12], ciphertext: b"old-token-resealed".to_vec() };
    assert!(!s.reseal_item_access_token(&a.id, &read, &resealed).await.unwrap(), "stale read: not written");
    assert_eq!(fresh(&s, &a).await.access_token, relinked);
    assert!(s.reseal_item_access_token(&a.id, &relinked, &resealed).await.unwrap(), "current read: written");
    assert_eq!(fresh(&s, &a).await.access_token, resealed);
    assert!(!s.reseal_item_access_token(&"missing".into(), &resealed, &read).await.unwrap());
}
