//! Retention: old webhook deliveries, Plaid calls and sync runs are deleted in batches; recent rows, each Item's
//! newest runs and running runs stay.

use super::*;

/// A moment strictly between what was written before and what is written after it.
async fn boundary() -> DateTime<Utc> {
    tokio::time::sleep(Duration::from_millis(3)).await;
    let t = Utc::now();
    tokio::time::sleep(Duration::from_millis(3)).await;
    t
}

async fn finished_run(s: &S, item: &Item) -> SyncRun {
    let run = s.start_sync_run(&item.id, "schedule").await.unwrap();
    // Distinct start times, so "newest" is well defined.
    tokio::time::sleep(Duration::from_millis(2)).await;
    s.finish_sync_run(&run.id, &SyncRunOutcome { succeeded: true, ..Default::default() }).await.unwrap()
}

fn call(at_: DateTime<Utc>, request_id: &str) -> PlaidCall {
    PlaidCall {
        endpoint: "/transactions/sync".into(),
        item_id: Some("item-a".into()),
        request_id: Some(request_id.into()),
        http_status: Some(200),
        outcome: "ok".into(),
        error_type: None,
        error_code: None,
        latency_ms: 5,
        at: at_,
    }
}

pub(crate) async fn retention_prunes_old_rows_in_batches_and_keeps_recent_and_last_runs(s: S) {
    let alice = user(&s, "alice").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    let b = item(&s, &alice, "item-b", "ins_2").await;

    // Old: 5 finished runs of A, 2 of B, one of A still running; 3 webhook deliveries.
    let running = s.start_sync_run(&a.id, "webhook").await.unwrap();
    let mut a_runs = Vec::new();
    for _ in 0..5 {
        a_runs.push(finished_run(&s, &a).await);
    }
    for _ in 0..2 {
        finished_run(&s, &b).await;
    }
    for i in 0..3 {
        assert!(s.record_webhook_event(&sync_update(&format!("old-{i}"), "item-a")).await.unwrap().is_new);
    }
    let cutoff = boundary().await;
    // Recent: one run of A, one delivery.
    let recent_run = finished_run(&s, &a).await;
    assert!(s.record_webhook_event(&sync_update("recent", "item-a")).await.unwrap().is_new);
    for (i, when) in [cutoff - chrono::Duration::days(200), cutoff - chrono::Duration::seconds(1)].iter().enumerate() {
        s.record_plaid_call(&call(*when, &format!("old-{i}"))).await.unwrap();
    }
    s.record_plaid_call(&call(cutoff + chrono::Duration::milliseconds(1), "recent")).await.unwrap();

    // Batches of 2: each statement deletes at most 2 rows.
    assert_eq!(s.prune_webhook_events(cutoff, 2).await.unwrap(), 2);
    assert_eq!(s.prune_webhook_events(cutoff, 2).await.unwrap(), 1);
    assert_eq!(s.prune_webhook_events(cutoff, 2).await.unwrap(), 0);
    assert_eq!(s.prune_plaid_calls(cutoff, 10).await.unwrap(), 2);
    // Keep each Item's newest 3: A's recent run and its two newest old ones; B's two; the running one.
    assert_eq!(s.prune_sync_runs(cutoff, 3, 2).await.unwrap(), 2);
    assert_eq!(s.prune_sync_runs(cutoff, 3, 2).await.unwrap(), 1);
    assert_eq!(s.prune_sync_runs(cutoff, 3, 2).await.unwrap(), 0);

    let kept: HashSet<String> = s.list_sync_runs(&a.id, 100).await.unwrap().into_iter().map(|r| r.id).collect();
    let expected: HashSet<String> =
        [&recent_run.id, &a_runs[4].id, &a_runs[3].id, &running.id].into_iter().cloned().collect();
    assert_eq!(kept, expected, "A keeps its newest 3 finished runs and the running one");
    assert_eq!(s.list_sync_runs(&b.id, 100).await.unwrap().len(), 2, "B has no more than 3: all kept");
    let calls = s.list_plaid_calls(Some(&"item-a".into()), 100).await.unwrap();
    assert_eq!(calls.iter().map(|c| c.request_id.as_deref().unwrap()).collect::<Vec<_>>(), ["recent"]);
    // The recent delivery is still there (a repeat is a duplicate); the old ones are gone (a repeat is new).
    assert!(!s.record_webhook_event(&sync_update("recent", "item-a")).await.unwrap().is_new);
    assert!(s.record_webhook_event(&sync_update("old-0", "item-a")).await.unwrap().is_new);

    // The background task's loop: everything older than now, in batches of 1, keeping 1 run per Item.
    let settings = banksync::config::RetentionSettings {
        audit: Duration::ZERO,
        events: Duration::ZERO,
        runs: Duration::ZERO,
        runs_keep: 1,
    };
    tokio::time::sleep(Duration::from_millis(3)).await;
    let pruned = banksync::retention::prune_in_batches(&s, &settings, 1, Duration::ZERO).await.unwrap();
    assert_eq!((pruned.webhook_events, pruned.plaid_calls, pruned.sync_runs), (2, 1, 3));
    let left: Vec<String> = s.list_sync_runs(&a.id, 100).await.unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(left.len(), 2, "A's newest run and the running one: {left:?}");
    assert!(left.contains(&recent_run.id) && left.contains(&running.id));
    assert_eq!(s.list_sync_runs(&b.id, 100).await.unwrap().len(), 1);
}
