//! Owners, first-run setup, sessions (public id, idle expiry, touch), password change and user deletion.

use super::*;

pub(crate) fn new_session(user: &User, id_hash: &str, public_id: &str) -> NewSession {
    NewSession {
        id_hash: id_hash.into(),
        public_id: public_id.into(),
        user_id: user.id.clone(),
        csrf_token: "csrf".into(),
        expires_at: Utc::now() + chrono::Duration::hours(1),
        idle_expires_at: Utc::now() + chrono::Duration::minutes(30),
        user_agent: Some("Firefox".into()),
    }
}

pub(crate) async fn the_first_user_is_the_owner_and_setup_creates_one_only_while_there_is_none(s: S) {
    assert_eq!(s.count_users().await.unwrap(), 0);
    let owner = s.create_owner_if_none("olive", "h").await.unwrap().expect("no user yet: setup creates the owner");
    assert!(owner.is_owner);
    assert!(s.get_user(&owner.id).await.unwrap().is_owner);
    assert!(s.create_owner_if_none("mallory", "h").await.unwrap().is_none(), "a user exists");
    assert!(s.find_user_by_username("mallory").await.unwrap().is_none());
    let plain = s.create_user("paul", "h").await.unwrap();
    assert!(!plain.is_owner, "only the first user is the owner");
    assert_eq!(s.count_users().await.unwrap(), 2);
    let owners: Vec<bool> = s.list_users().await.unwrap().iter().map(|u| u.is_owner).collect();
    assert_eq!(owners, [true, false], "by name: olive, paul");
}

pub(crate) async fn racing_first_users_make_exactly_one_owner(s: S) {
    // Setups and CLI adds all at once on an empty database: one owner, every CLI add still creates its user.
    let mut tasks = Vec::new();
    for i in 0..6 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                s.create_owner_if_none(&format!("setup{i}"), "h").await.unwrap().is_some()
            } else {
                s.create_user(&format!("cli{i}"), "h").await.unwrap();
                false
            }
        }));
    }
    let mut setups_won = 0;
    for task in tasks {
        setups_won += usize::from(task.await.unwrap());
    }
    let users = s.list_users().await.unwrap();
    assert_eq!(users.iter().filter(|u| u.is_owner).count(), 1, "exactly one owner");
    assert_eq!(users.iter().filter(|u| u.username.starts_with("cli")).count(), 3, "every CLI add made its user");
    assert!(setups_won <= 1, "at most one setup won");
    if setups_won == 1 {
        assert_eq!(users.len(), 4, "a setup wins only on an empty database: nothing else existed then");
    }
}

pub(crate) async fn sessions_carry_a_public_id_idle_expiry_and_are_touched_at_most_once_a_minute(s: S) {
    let alice = user(&s, "alice").await;
    let created = s.create_session(&new_session(&alice, "h1", "p1")).await.unwrap();
    let found = s.find_session("h1").await.unwrap().unwrap();
    assert_eq!(found.public_id, "p1");
    assert_eq!(found.user_agent.as_deref(), Some("Firefox"));
    assert_eq!(found.last_seen_at, created.created_at);
    // The extractor's one-statement read: the same session, and its user exactly as `get_user` reads it.
    let (with_user, owner) = s.find_session_with_user("h1").await.unwrap().unwrap();
    assert_eq!((with_user.public_id.as_str(), with_user.idle_expires_at), ("p1", found.idle_expires_at));
    let stored = s.get_user(&alice.id).await.unwrap();
    assert_eq!(
        (&owner.id, &owner.username, &owner.password_hash, owner.created_at, owner.is_owner),
        (&stored.id, &stored.username, &stored.password_hash, stored.created_at, stored.is_owner)
    );
    assert!(s.find_session_with_user("no-such-hash").await.unwrap().is_none());

    // Used within the minute: no write.
    let idle = chrono::Duration::minutes(30);
    assert!(!s.touch_session(&found, Utc::now(), idle).await.unwrap());
    // Used later: last_seen and the idle expiry move, once.
    let later = Utc::now() + chrono::Duration::minutes(5);
    assert!(s.touch_session(&found, later, idle).await.unwrap());
    assert!(!s.touch_session(&found, later, idle).await.unwrap(), "the stored time is fresh now: no second write");
    let touched = s.find_session("h1").await.unwrap().unwrap();
    assert!((touched.last_seen_at - later).num_milliseconds().abs() < 1, "{touched:?}");
    assert!((touched.idle_expires_at - (later + idle)).num_milliseconds().abs() < 1, "{touched:?}");
    // Never past the absolute expiry (1 h after creation).
    let much_later = Utc::now() + chrono::Duration::minutes(50);
    assert!(s.touch_session(&touched, much_later, idle).await.unwrap());
    let capped = s.find_session("h1").await.unwrap().unwrap();
    assert_eq!(capped.idle_expires_at, capped.expires_at);

    // Past its idle expiry a session is gone, though its absolute expiry is far.
    let idle_out =
        NewSession { idle_expires_at: Utc::now() - chrono::Duration::seconds(1), ..new_session(&alice, "h2", "p2") };
    s.create_session(&idle_out).await.unwrap();
    assert!(s.find_session("h2").await.unwrap().is_none());
    assert!(s.find_session_with_user("h2").await.unwrap().is_none(), "idle-expired for the extractor too");
    assert_eq!(s.delete_expired_sessions().await.unwrap(), 1, "idle-expired sessions are cleaned up too");
    assert!(s.find_session("h1").await.unwrap().is_some());
}

pub(crate) async fn sessions_are_listed_and_ended_per_user(s: S) {
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    for (hash, id) in [("a1", "pa1"), ("a2", "pa2"), ("a3", "pa3")] {
        s.create_session(&new_session(&alice, hash, id)).await.unwrap();
    }
    s.create_session(&new_session(&bob, "b1", "pb1")).await.unwrap();
    let ids = |v: Vec<Session>| v.into_iter().map(|s| s.public_id).collect::<HashSet<_>>();
    assert_eq!(
        ids(s.list_sessions(&alice.id).await.unwrap()),
        HashSet::from(["pa1".into(), "pa2".into(), "pa3".into()])
    );

    assert!(is_not_found(s.delete_session_by_public_id(&alice.id, "pb1").await), "another user's session");
    assert!(is_not_found(s.delete_session_by_public_id(&alice.id, "nope").await));
    s.delete_session_by_public_id(&alice.id, "pa3").await.unwrap();
    assert!(s.find_session("a3").await.unwrap().is_none());

    assert_eq!(s.delete_other_sessions(&alice.id, Some("pa1")).await.unwrap(), 1);
    assert_eq!(ids(s.list_sessions(&alice.id).await.unwrap()), HashSet::from(["pa1".into()]));
    assert_eq!(s.delete_other_sessions(&alice.id, None).await.unwrap(), 1);
    assert!(s.list_sessions(&alice.id).await.unwrap().is_empty());
    assert_eq!(s.list_sessions(&bob.id).await.unwrap().len(), 1, "bob's untouched");
}

pub(crate) async fn password_change_keeps_the_asking_session_and_tokens_record_their_origin(s: S) {
    let alice = user(&s, "alice").await;
    for (hash, id) in [("a1", "pa1"), ("a2", "pa2"), ("a3", "pa3")] {
        s.create_session(&new_session(&alice, hash, id)).await.unwrap();
    }
    let web = s
        .create_api_token_from(&alice.id, "web", "t-web", TokenOrigin::Session { session_id: "pa2".into() })
        .await
        .unwrap();
    s.create_api_token_from(&alice.id, "script", "t-script", TokenOrigin::Token).await.unwrap();
    s.create_api_token(&alice.id, "cli", "t-cli").await.unwrap();

    assert_eq!(s.set_password_and_end_other_sessions(&alice.id, "new-hash", Some("pa1")).await.unwrap(), 2);
    assert_eq!(s.get_user(&alice.id).await.unwrap().password_hash, "new-hash");
    assert_eq!(s.list_sessions(&alice.id).await.unwrap().len(), 1);
    assert!(s.find_session("a1").await.unwrap().is_some(), "the asking session stays");

    // Tokens stay, and say where they came from.
    let origins: Vec<(String, TokenOrigin)> =
        s.list_api_tokens(&alice.id).await.unwrap().into_iter().map(|t| (t.name, t.origin)).collect();
    assert_eq!(origins.len(), 3);
    assert!(origins.contains(&("web".into(), TokenOrigin::Session { session_id: "pa2".into() })));
    assert!(origins.contains(&("script".into(), TokenOrigin::Token)));
    assert!(origins.contains(&("cli".into(), TokenOrigin::Cli)));
    assert_eq!(s.find_user_by_api_token_hash("t-web").await.unwrap().unwrap().id, alice.id);
    assert_eq!(web.origin, TokenOrigin::Session { session_id: "pa2".into() });

    assert_eq!(s.set_password_and_end_sessions(&alice.id, "newer").await.unwrap(), 1);
    assert!(s.list_sessions(&alice.id).await.unwrap().is_empty());
}

pub(crate) async fn deleting_a_user_takes_their_data_but_never_their_items(s: S) {
    let _owner = user(&s, "olive").await;
    let bob = user(&s, "bob").await;
    s.create_session(&new_session(&bob, "b1", "pb1")).await.unwrap();
    s.create_api_token(&bob.id, "cli", "t-bob").await.unwrap();
    let it = item(&s, &bob, "item-bob", "ins_1").await;

    assert_eq!(s.delete_user(&bob.id).await.unwrap(), DeleteUser::HasItems(1), "Items must be removed at Plaid first");
    assert!(s.find_session("b1").await.unwrap().is_some(), "nothing deleted");

    s.delete_item(&bob.id, &it.item_id).await.unwrap();
    assert_eq!(s.delete_user(&bob.id).await.unwrap(), DeleteUser::Deleted);
    assert!(is_not_found(s.get_user(&bob.id).await));
    assert!(s.find_session("b1").await.unwrap().is_none(), "sessions cascade");
    assert!(s.find_user_by_api_token_hash("t-bob").await.unwrap().is_none(), "tokens cascade");
    assert!(is_not_found(s.delete_user(&bob.id).await), "unknown user");
}
