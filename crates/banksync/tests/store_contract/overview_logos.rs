//! The web app's store parts: the user's last overview visit, what changed since, and the merchant logo cache.

use super::*;

pub(crate) async fn overview_visits_and_changes_since(s: S) {
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    assert_eq!(s.overview_seen_at(&alice.id).await.unwrap(), None);
    assert_eq!(s.changes_since(&alice.id, None).await.unwrap(), ChangesSince::default());

    let lunch = txn("t-lunch", "acc-1", "12.30", "2026-01-05T12:00:00Z");
    let rent = txn("t-rent", "acc-1", "-100", "2026-01-06T09:00:00Z");
    s.apply_sync(&a, &batch(vec![lunch, rent], vec![], &[], "c1")).await.unwrap();
    let everything = ChangesSince { new_transactions: 2, items_synced: 1 };
    assert_eq!(s.changes_since(&alice.id, None).await.unwrap(), everything);
    assert_eq!(s.changes_since(&alice.id, Some(at("2000-01-01T00:00:00Z"))).await.unwrap(), everything);
    assert_eq!(s.changes_since(&bob.id, None).await.unwrap(), ChangesSince::default(), "scoped to the owner");

    let later = at("2099-01-01T00:00:00.123456Z");
    s.mark_overview_seen(&alice.id, at("2098-01-01T00:00:00Z")).await.unwrap();
    s.mark_overview_seen(&alice.id, later).await.unwrap();
    assert_eq!(s.overview_seen_at(&alice.id).await.unwrap(), Some(later), "the last visit wins");
    assert_eq!(s.changes_since(&alice.id, Some(later)).await.unwrap(), ChangesSince::default());
    assert_eq!(s.overview_seen_at(&bob.id).await.unwrap(), None);

    // A removed transaction no longer counts.
    s.apply_sync(&fresh(&s, &a).await, &batch(vec![], vec![], &["t-rent"], "c2")).await.unwrap();
    assert_eq!(s.changes_since(&alice.id, None).await.unwrap().new_transactions, 1);
}

pub(crate) async fn logo_urls_are_scoped_and_the_cache_is_bounded(s: S) {
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    let url = "https://logos.example/coffee.png";
    let mut coffee = txn("t-coffee", "acc-1", "4.50", "2026-01-05T12:00:00Z");
    coffee.fields.logo_url = Some(url.into());
    let mut coffee2 = txn("t-coffee-2", "acc-1", "4.50", "2026-01-06T12:00:00Z");
    coffee2.fields.logo_url = Some(url.into());
    let plain = txn("t-plain", "acc-1", "1", "2026-01-07T12:00:00Z");
    s.apply_sync(&a, &batch(vec![coffee, coffee2, plain], vec![], &[], "c1")).await.unwrap();
    assert_eq!(s.user_logo_urls(&alice.id).await.unwrap(), vec![url.to_owned()], "distinct, no nulls");
    assert!(s.user_has_logo_url(&alice.id, url).await.unwrap());
    assert!(!s.user_has_logo_url(&bob.id, url).await.unwrap(), "another user's merchant");
    assert!(s.user_logo_urls(&bob.id).await.unwrap().is_empty());

    let image = CachedLogo {
        id: "aa".into(),
        url: url.into(),
        content: Ok(LogoImage {
            content_type: "image/png".into(),
            body: vec![0x89, b'P', 0, 255],
            etag: "\"e\"".into(),
        }),
        fetched_at: at("2026-01-01T00:00:00Z"),
        expires_at: at("2026-01-08T00:00:00Z"),
    };
    let failure = CachedLogo {
        id: "bb".into(),
        url: "https://logos.example/gone.png".into(),
        content: Err("the logo host answered 404".into()),
        fetched_at: at("2026-01-02T00:00:00Z"),
        expires_at: at("2026-01-02T01:00:00Z"),
    };
    s.put_logo(&image).await.unwrap();
    s.put_logo(&failure).await.unwrap();
    assert_eq!(s.get_logo("aa").await.unwrap(), Some(image.clone()), "bytes round-trip exactly");
    assert_eq!(s.get_logo("bb").await.unwrap(), Some(failure.clone()));
    assert_eq!(s.get_logo("cc").await.unwrap(), None);
    let refreshed = CachedLogo { fetched_at: at("2026-01-03T00:00:00Z"), ..image.clone() };
    s.put_logo(&refreshed).await.unwrap();
    assert_eq!(s.get_logo("aa").await.unwrap(), Some(refreshed), "a refetch replaces the row");

    // Past the bounds the oldest rows go: "bb" (fetched 01-02) before "aa" (01-03).
    s.evict_logos(1024, 1).await.unwrap();
    assert_eq!(s.get_logo("bb").await.unwrap(), None);
    assert!(s.get_logo("aa").await.unwrap().is_some());
    s.evict_logos(3, 10).await.unwrap();
    assert_eq!(s.get_logo("aa").await.unwrap(), None, "4 bytes of images exceed a 3-byte bound");
}
