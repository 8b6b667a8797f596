//! Audit trails and the durable job queue.

use super::*;

pub(crate) async fn sync_runs_plaid_calls_and_webhooks(s: S) {
    let alice = user(&s, "alice").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    let run = s.start_sync_run(&a.id, "webhook").await.unwrap();
    assert_eq!((run.status, run.triggered_by.as_str()), (SyncRunStatus::Running, "webhook"));
    let outcome = SyncRunOutcome {
        succeeded: true,
        added: 5,
        modified: 2,
        removed: 1,
        pages: 2,
        restarts: 1,
        ..Default::default()
    };
    let done = s.finish_sync_run(&run.id, &outcome).await.unwrap();
    assert_eq!(
        (done.status, done.added, done.modified, done.removed, done.pages, done.restarts),
        (SyncRunStatus::Succeeded, 5, 2, 1, 2, 1)
    );
    assert!(done.finished_at.is_some());
    let failed = s.start_sync_run(&a.id, "schedule").await.unwrap();
    let outcome = SyncRunOutcome {
        succeeded: false,
        error_code: Some("ITEM_LOGIN_REQUIRED".into()),
        error_message: Some("login".into()),
        ..Default::default()
    };
    s.finish_sync_run(&failed.id, &outcome).await.unwrap();
    let runs = s.list_sync_runs(&a.id, 10).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert!(
        runs.iter()
            .any(|r| r.status == SyncRunStatus::Failed && r.error_code.as_deref() == Some("ITEM_LOGIN_REQUIRED"))
    );
    assert!(fresh(&s, &a).await.last_sync_at.is_some());
    assert!(is_not_found(s.finish_sync_run("missing", &SyncRunOutcome::default()).await));

    for (i, outcome) in ["ok", "plaid_error"].iter().enumerate() {
        s.record_plaid_call(&PlaidCall {
            endpoint: "/transactions/sync".into(),
            item_id: Some("item-a".into()),
            request_id: Some(format!("req-{i}")),
            http_status: Some(if i == 0 { 200 } else { 400 }),
            outcome: (*outcome).into(),
            error_type: (i == 1).then(|| "ITEM_ERROR".into()),
            error_code: (i == 1).then(|| "ITEM_LOGIN_REQUIRED".into()),
            latency_ms: 12 + i as i64,
            at: at(&format!("2026-01-01T00:00:0{i}Z")),
        })
        .await
        .unwrap();
    }
    let calls = s.list_plaid_calls(Some(&"item-a".into()), 10).await.unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!((calls[0].request_id.as_deref(), calls[0].http_status), (Some("req-1"), Some(400)), "newest first");
    assert!(s.list_plaid_calls(Some(&"item-b".into()), 10).await.unwrap().is_empty());

    let event = sync_update("sha256-of-body", "item-a");
    let first = s.record_webhook_event(&event).await.unwrap();
    assert!(first.is_new);
    let again = s.record_webhook_event(&event).await.unwrap();
    assert_eq!(again, WebhookRecord { id: first.id.clone(), is_new: false, duplicates: 1 });
    let third = s.record_webhook_event(&event).await.unwrap();
    assert_eq!(third, WebhookRecord { id: first.id.clone(), is_new: false, duplicates: 2 });
    s.mark_webhook_processed(&first.id).await.unwrap();
    assert!(is_not_found(s.mark_webhook_processed("missing").await));
}

/// The trail's writer batches what waits in its queue; `flush` returns once everything observed before it is
/// written (the server and the CLI call it before they exit: those records were lost before).
pub(crate) async fn the_audit_trail_holds_every_observed_call_once_flushed(s: S) {
    let trail = banksync::audit::AuditTrail::start(s.clone());
    let observer = trail.observer();
    for i in 0..1_500 {
        observer.on_call(&plaid::CallRecord {
            endpoint: plaid::Endpoint::TransactionsSync,
            attempt: 1,
            http_status: Some(200),
            request_id: Some(format!("req-{i}")),
            outcome: plaid::CallOutcome::Ok,
            latency: Duration::from_millis(3),
        });
    }
    trail.flush().await;
    let calls = s.list_plaid_calls(None, 5_000).await.unwrap();
    let ids: HashSet<_> = calls.iter().filter_map(|c| c.request_id.clone()).collect();
    assert_eq!((calls.len(), ids.len()), (1_500, 1_500), "every observed call, once, when flush returns");
    assert!(calls.iter().all(|c| c.outcome == "ok" && c.http_status == Some(200) && c.latency_ms == 3));
}

/// The webhook receiver's hot path: the delivery recorded (processed) and the sync queued in one transaction; a
/// repeat only counts; the job coalesces like `enqueue_job` and never runs before the Item's rate-limit hold.
pub(crate) async fn webhook_record_and_enqueue_is_one_step(s: S) {
    let owner = user(&s, "alice").await;
    let a = item(&s, &owner, "item-a", "ins_1").await;
    let event = |key: &str| sync_update(key, "item-a");
    let job = NewJob::for_item("sync", &"item-a".into());
    let (first, queued) = s.record_webhook_and_enqueue(&event("d1"), &a.item_id, &job).await.unwrap().unwrap();
    assert!(first.is_new);
    let queued = queued.expect("a new delivery queues the sync");
    assert!(!queued.coalesced);
    // Recorded as processed: marking it again still finds it.
    s.mark_webhook_processed(&first.id).await.unwrap();

    // The same delivery again: counted, nothing queued.
    let (again, none) = s.record_webhook_and_enqueue(&event("d1"), &a.item_id, &job).await.unwrap().unwrap();
    assert_eq!(again, WebhookRecord { id: first.id.clone(), is_new: false, duplicates: 1 });
    assert!(none.is_none());

    // Another delivery joins the queued job.
    let (_, joined) = s.record_webhook_and_enqueue(&event("d2"), &a.item_id, &job).await.unwrap().unwrap();
    assert_eq!(joined, Some(Enqueued { job_id: queued.job_id.clone(), coalesced: true }));
    let claimed = s.claim_job("w1", Duration::from_secs(60)).await.unwrap().expect("due now");
    assert_eq!(claimed.id, queued.job_id);

    // Held by a rate limit: the next sync is queued for when the hold ends, not now.
    let until = Utc::now() + chrono::Duration::seconds(120);
    s.hold_syncs(&a.id, until).await.unwrap();
    let (_, held) = s.record_webhook_and_enqueue(&event("d3"), &a.item_id, &job).await.unwrap().unwrap();
    let held = s.get_job(&held.expect("queued").job_id).await.unwrap();
    assert!(held.run_after >= until - chrono::Duration::seconds(1), "{:?} before the hold {until:?}", held.run_after);
    assert!(s.claim_job("w1", Duration::from_secs(60)).await.unwrap().is_none(), "nothing due during the hold");
}

/// Plaid retrying a delivery while the first is still being recorded: exactly one is new and queues the sync, each
/// repeat is counted once (on PostgreSQL a repeat that waited on the first's key is counted by a second statement).
pub(crate) async fn concurrent_repeats_of_a_webhook_are_counted_once_each(s: S) {
    let owner = user(&s, "alice").await;
    let a = item(&s, &owner, "item-a", "ins_1").await;
    let event = sync_update("same", "item-a");
    let job = NewJob::for_item("sync", &"item-a".into());
    let calls = (0..8).map(|_| {
        let (s, event, job, item) = (s.clone(), event.clone(), job.clone(), a.item_id.clone());
        tokio::spawn(async move { s.record_webhook_and_enqueue(&event, &item, &job).await.unwrap().unwrap() })
    });
    let outcomes: Vec<_> = futures::future::join_all(calls).await.into_iter().map(Result::unwrap).collect();
    let new: Vec<_> = outcomes.iter().filter(|(record, _)| record.is_new).collect();
    assert_eq!(new.len(), 1, "{outcomes:?}");
    assert!(new[0].1.is_some(), "the new delivery queues the sync");
    let mut counts: Vec<_> = outcomes
        .iter()
        .filter(|(r, _)| !r.is_new)
        .map(|(r, queued)| {
            assert!(queued.is_none() && r.id == new[0].0.id);
            r.duplicates
        })
        .collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..8).collect::<Vec<i64>>());
}

/// Several deliveries in one transaction (the receiver's group commit) come out as if recorded one after the
/// other: a repeat within the batch counts as a duplicate, a second delivery for an Item joins the job the first
/// queued, another Item gets its own, and a delivery for an Item that is not ours or is revoked records nothing.
pub(crate) async fn webhook_batches_record_as_if_one_after_the_other(s: S) {
    let owner = user(&s, "alice").await;
    let a = item(&s, &owner, "item-a", "ins_1").await;
    let b = item(&s, &owner, "item-b", "ins_1").await;
    let revoked = item(&s, &owner, "item-r", "ins_2").await;
    let health = ItemHealth { status: ItemStatus::Revoked, ..ItemHealth::good() };
    s.update_item_status(&revoked.id, &health).await.unwrap();
    let delivery = |key: &str, item_id: &PlaidItemId| WebhookSync {
        event: sync_update(key, item_id.as_str()),
        item: item_id.clone(),
        job: NewJob::for_item("sync", item_id),
    };
    let unknown = PlaidItemId::from("item-x");
    let batch = [
        delivery("d1", &a.item_id),
        delivery("d1", &a.item_id),
        delivery("u1", &unknown),
        delivery("d2", &a.item_id),
        delivery("r1", &revoked.item_id),
        delivery("e1", &b.item_id),
    ];
    let out = s.record_webhooks_and_enqueue(&batch).await.unwrap();
    assert_eq!(out.len(), 6);
    assert_eq!((&out[2], &out[4]), (&None, &None), "nothing recorded for an unknown or a revoked Item");
    let out: Vec<_> = out.into_iter().flatten().collect();
    let (first, queued) = &out[0];
    let queued = queued.clone().expect("queued");
    assert!(first.is_new && !queued.coalesced);
    assert_eq!(out[1], (WebhookRecord { id: first.id.clone(), is_new: false, duplicates: 1 }, None));
    assert!(out[2].0.is_new);
    assert_eq!(out[2].1, Some(Enqueued { job_id: queued.job_id.clone(), coalesced: true }));
    let other = out[3].1.clone().expect("queued");
    assert!(out[3].0.is_new && !other.coalesced && other.job_id != queued.job_id);
    assert_eq!(s.record_webhooks_and_enqueue(&[]).await.unwrap(), vec![]);
    // One at a time too (PostgreSQL's path), and the skipped deliveries were not recorded as seen.
    for (key, item_id) in [("u1", &unknown), ("r1", &revoked.item_id)] {
        let job = NewJob::for_item("sync", item_id);
        assert_eq!(
            s.record_webhook_and_enqueue(&sync_update(key, item_id.as_str()), item_id, &job).await.unwrap(),
            None
        );
        assert!(s.record_webhook_event(&sync_update(key, item_id.as_str())).await.unwrap().is_new);
    }
}

pub(crate) async fn jobs_coalesce_while_queued(s: S) {
    let first = s.enqueue_job(&NewJob::for_item("sync", &"item-a".into())).await.unwrap();
    assert!(!first.coalesced);
    for _ in 0..3 {
        let again = s.enqueue_job(&NewJob::for_item("sync", &"item-a".into())).await.unwrap();
        assert_eq!(again, Enqueued { job_id: first.job_id.clone(), coalesced: true });
    }
    let other_item = s.enqueue_job(&NewJob::for_item("sync", &"item-b".into())).await.unwrap();
    let other_kind = s.enqueue_job(&NewJob::for_item("balances", &"item-a".into())).await.unwrap();
    assert!(!other_item.coalesced && !other_kind.coalesced);
    assert_ne!(other_item.job_id, first.job_id);
    assert_ne!(other_kind.job_id, first.job_id);
    // No coalesce key: never coalesces.
    let free = NewJob { coalesce_key: None, ..NewJob::for_item("refresh", &"item-a".into()) };
    let f1 = s.enqueue_job(&free).await.unwrap();
    let f2 = s.enqueue_job(&free).await.unwrap();
    assert_ne!(f1.job_id, f2.job_id);

    // A later request that is more urgent moves the queued job earlier; a less urgent one does not delay it.
    let later =
        NewJob { run_after: Utc::now() + chrono::Duration::hours(2), ..NewJob::for_item("sync", &"item-c".into()) };
    let c = s.enqueue_job(&later).await.unwrap();
    let even_later = NewJob { run_after: Utc::now() + chrono::Duration::hours(5), ..later.clone() };
    s.enqueue_job(&even_later).await.unwrap();
    let job = s.get_job(&c.job_id).await.unwrap();
    assert!(
        job.run_after > Utc::now() + chrono::Duration::minutes(100)
            && job.run_after < Utc::now() + chrono::Duration::hours(3)
    );
    s.enqueue_job(&NewJob::for_item("sync", &"item-c".into())).await.unwrap();
    assert!(s.get_job(&c.job_id).await.unwrap().run_after <= Utc::now());
    // A joining request keeps the queued job's payload, unless it asks to replace it (a "sync now").
    let asked = NewJob { payload: r#"{"refresh":true}"#.into(), ..NewJob::for_item("sync", &"item-c".into()) };
    assert_eq!(s.enqueue_job(&asked).await.unwrap().job_id, c.job_id);
    assert_eq!(s.get_job(&c.job_id).await.unwrap().payload, "{}");
    assert_eq!(
        s.enqueue_job_replacing_payload(&asked).await.unwrap(),
        Enqueued { job_id: c.job_id.clone(), coalesced: true }
    );
    assert_eq!(s.get_job(&c.job_id).await.unwrap().payload, asked.payload);

    // Once the job runs, a new request queues a new job (changes during a sync need another sync).
    let mut claimed = HashSet::new();
    while let Some(job) = s.claim_job("w1", Duration::from_secs(60)).await.unwrap() {
        claimed.insert(job.id);
    }
    assert!(claimed.contains(&first.job_id));
    let next = s.enqueue_job(&NewJob::for_item("sync", &"item-a".into())).await.unwrap();
    assert!(!next.coalesced);
    assert_ne!(next.job_id, first.job_id);

    // ...but it waits while the first one runs under a live lease, in any process: one Item never syncs twice at
    // once. It becomes claimable when the running job ends.
    assert!(
        s.claim_job("w2", Duration::from_secs(60)).await.unwrap().is_none(),
        "a job must not be claimed while another job for the same Item runs"
    );
    s.complete_job(&first.job_id, "w1", None).await.unwrap();
    let claimed_next =
        s.claim_job("w2", Duration::from_secs(60)).await.unwrap().expect("claimable after the first ended");
    assert_eq!(claimed_next.id, next.job_id);
}

pub(crate) async fn job_lease_complete_and_fail(s: S) {
    let mut new = NewJob::for_item("sync", &"item-a".into());
    new.payload = r#"{"trigger":"webhook"}"#.into();
    new.max_attempts = 2;
    let id = s.enqueue_job(&new).await.unwrap().job_id;
    let job = s.claim_job("w1", Duration::from_secs(60)).await.unwrap().unwrap();
    assert_eq!((job.id.as_str(), job.state, job.attempts), (id.as_str(), JobState::Running, 1));
    assert_eq!(job.lease_owner.as_deref(), Some("w1"));
    assert_eq!(job.payload, r#"{"trigger":"webhook"}"#);
    assert!(job.lease_expires_at.unwrap() > Utc::now() + chrono::Duration::seconds(50));
    assert!(s.claim_job("w2", Duration::from_secs(60)).await.unwrap().is_none(), "leased job is not claimable");

    s.heartbeat_job(&id, "w1", Duration::from_secs(120)).await.unwrap();
    assert!(s.get_job(&id).await.unwrap().lease_expires_at.unwrap() > Utc::now() + chrono::Duration::seconds(100));
    assert!(is_not_found(s.heartbeat_job(&id, "w2", Duration::from_secs(1)).await), "only the holder extends");
    assert!(is_not_found(s.complete_job(&id, "w2", None).await), "only the holder completes");

    // Failure with attempts left: queued again after the backoff.
    assert_eq!(s.fail_job(&id, "w1", "bank timeout", None, None).await.unwrap(), JobState::Queued);
    let job = s.get_job(&id).await.unwrap();
    assert_eq!((job.last_error.as_deref(), job.lease_owner.as_deref()), (Some("bank timeout"), None));
    assert!(job.run_after > Utc::now(), "backoff");
    assert!(s.claim_job("w1", Duration::from_secs(60)).await.unwrap().is_none(), "not due yet");
    assert!(is_not_found(s.fail_job(&id, "w1", "again", None, None).await), "no longer held");

    // Make it due (a more urgent request coalesces into it), run it again and exhaust the attempts.
    s.enqueue_job(&NewJob::for_item("sync", &"item-a".into())).await.unwrap();
    let job = s.claim_job("w1", Duration::from_secs(60)).await.unwrap().unwrap();
    assert_eq!((job.id.as_str(), job.attempts), (id.as_str(), 2));
    assert_eq!(s.fail_job(&id, "w1", "still broken", Some(Duration::ZERO), None).await.unwrap(), JobState::Failed);
    assert!(s.claim_job("w1", Duration::from_secs(60)).await.unwrap().is_none());

    // Completion records the result.
    let id = s.enqueue_job(&NewJob::for_item("balances", &"item-a".into())).await.unwrap().job_id;
    let job = s.claim_job("w3", Duration::from_secs(60)).await.unwrap().unwrap();
    assert_eq!(job.id, id);
    s.complete_job(&id, "w3", Some(r#"{"ok":true}"#)).await.unwrap();
    let job = s.get_job(&id).await.unwrap();
    assert_eq!((job.state, job.result.as_deref(), job.lease_owner), (JobState::Done, Some(r#"{"ok":true}"#), None));
    assert!(is_not_found(s.complete_job(&id, "w3", None).await), "completing twice");

    // A retry while another request for the same work is already queued yields to that job.
    let id = s.enqueue_job(&NewJob::for_item("sync", &"item-z".into())).await.unwrap().job_id;
    s.claim_job("w4", Duration::from_secs(60)).await.unwrap().unwrap();
    let queued = s.enqueue_job(&NewJob::for_item("sync", &"item-z".into())).await.unwrap();
    assert!(!queued.coalesced);
    assert_eq!(s.fail_job(&id, "w4", "boom", None, None).await.unwrap(), JobState::Failed);
    assert_eq!(s.get_job(&queued.job_id).await.unwrap().state, JobState::Queued);
    assert!(is_not_found(s.get_job(&"missing".into()).await));
}

/// A holder that dies stops renewing. Its lease running out is played by a last renewal of zero length (so the lease
/// ends now): no test here depends on how fast the machine gets from one statement to the next.
async fn lease_runs_out(s: &S, id: &JobId, holder: &str) {
    s.heartbeat_job(id, holder, Duration::ZERO).await.unwrap();
    let expiry = s.get_job(id).await.unwrap().lease_expires_at.unwrap();
    // The stored expiry is "now" at the database's clock resolution: wait until that moment has passed.
    while Utc::now() <= expiry {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

pub(crate) async fn expired_lease_is_reclaimed(s: S) {
    let id = s.enqueue_job(&NewJob::for_item("sync", &"item-a".into())).await.unwrap().job_id;
    let job = s.claim_job("crashed-worker", Duration::from_secs(60)).await.unwrap().unwrap();
    assert_eq!(job.id, id);
    assert!(s.claim_job("w2", Duration::from_secs(60)).await.unwrap().is_none());
    lease_runs_out(&s, &id, "crashed-worker").await;
    let again = s.claim_job("w2", Duration::from_secs(60)).await.unwrap().unwrap();
    assert_eq!((again.id.as_str(), again.attempts, again.lease_owner.as_deref()), (id.as_str(), 2, Some("w2")));
    assert!(is_not_found(s.complete_job(&id, "crashed-worker", None).await), "the old holder lost the lease");
    s.complete_job(&id, "w2", None).await.unwrap();

    // With no attempts left, an expired lease is failed by the reclaimer instead.
    let one_shot = NewJob { max_attempts: 1, ..NewJob::for_item("sync", &"item-b".into()) };
    let id = s.enqueue_job(&one_shot).await.unwrap().job_id;
    s.claim_job("crashed-worker", Duration::from_secs(60)).await.unwrap().unwrap();
    assert_eq!(s.reclaim_expired_jobs().await.unwrap(), 0, "a live lease is not reclaimed");
    lease_runs_out(&s, &id, "crashed-worker").await;
    assert!(s.claim_job("w2", Duration::from_secs(60)).await.unwrap().is_none());
    assert_eq!(s.reclaim_expired_jobs().await.unwrap(), 1);
    let job = s.get_job(&id).await.unwrap();
    assert_eq!((job.state, job.last_error.as_deref()), (JobState::Failed, Some("lease expired")));
    assert_eq!(s.reclaim_expired_jobs().await.unwrap(), 0);
}

pub(crate) async fn concurrent_claimers_never_share_a_job(s: S) {
    let mut expected = HashSet::new();
    for i in 0..60 {
        expected.insert(s.enqueue_job(&NewJob::for_item("sync", &format!("item-{i}").into())).await.unwrap().job_id);
    }
    let mut workers = Vec::new();
    for w in 0..6 {
        let s = s.clone();
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(job) = s.claim_job(&format!("w{w}"), Duration::from_secs(60)).await.unwrap() {
                assert_eq!(job.lease_owner.as_deref(), Some(format!("w{w}").as_str()));
                mine.push(job.id);
                tokio::task::yield_now().await;
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), unique.len(), "a job was claimed twice");
    assert_eq!(unique, expected);
}

pub(crate) async fn running_jobs_are_recorded_joined_and_never_claimed(s: S) {
    let lease = Duration::from_secs(60);
    let new = NewJob {
        coalesce_key: Some("u1/*".into()),
        user_id: Some("u1".into()),
        item_id: None,
        ..NewJob::for_item("balance_refresh", &"unused".into())
    };
    let created = s.create_running_job(&"job-1".into(), &new, "w1", lease, r#"{"n":0}"#).await.unwrap();
    assert_eq!(created, Enqueued { job_id: "job-1".into(), coalesced: false });
    let job = s.get_job(&"job-1".into()).await.unwrap();
    assert_eq!(
        (job.kind.as_str(), job.state, job.attempts, job.max_attempts, job.lease_owner.as_deref()),
        ("balance_refresh", JobState::Running, 1, 1, Some("w1"))
    );
    assert_eq!(
        (
            job.user_id.as_ref().map(UserId::as_str),
            job.item_id.as_ref().map(PlaidItemId::as_str),
            job.result.as_deref()
        ),
        (Some("u1"), None, Some(r#"{"n":0}"#))
    );
    assert!(job.lease_expires_at.unwrap() > Utc::now() + chrono::Duration::seconds(50));

    // The same work while it runs under a live lease, from any worker: joined, nothing created.
    let again = s.create_running_job(&"job-2".into(), &new, "w2", lease, "{}").await.unwrap();
    assert_eq!(again, Enqueued { job_id: "job-1".into(), coalesced: true });
    assert!(is_not_found(s.get_job(&"job-2".into()).await));
    // Other work: its own job.
    let one_item = NewJob { coalesce_key: Some("u1/item-a".into()), item_id: Some("item-a".into()), ..new.clone() };
    assert!(!s.create_running_job(&"job-3".into(), &one_item, "w1", lease, "{}").await.unwrap().coalesced);
    // Workers never claim such a job.
    assert!(s.claim_job("w9", lease).await.unwrap().is_none());

    // Progress is written by the holder only; completion ends it, and the same work then starts anew.
    s.update_running_job_result(&"job-1".into(), "w1", r#"{"n":1}"#).await.unwrap();
    assert!(is_not_found(s.update_running_job_result(&"job-1".into(), "w2", "{}").await), "only the holder");
    assert_eq!(s.get_job(&"job-1".into()).await.unwrap().result.as_deref(), Some(r#"{"n":1}"#));
    s.heartbeat_job(&"job-1".into(), "w1", lease).await.unwrap();
    s.complete_job(&"job-1".into(), "w1", Some(r#"{"n":2}"#)).await.unwrap();
    let job = s.get_job(&"job-1".into()).await.unwrap();
    assert_eq!((job.state, job.result.as_deref()), (JobState::Done, Some(r#"{"n":2}"#)));
    assert!(is_not_found(s.update_running_job_result(&"job-1".into(), "w1", "{}").await), "finished");
    let next = s.create_running_job(&"job-4".into(), &new, "w2", lease, "{}").await.unwrap();
    assert_eq!(next, Enqueued { job_id: "job-4".into(), coalesced: false });

    // A holder that dies stops renewing: its job is neither joined nor claimed once the lease ran out, and the
    // reclaimer fails it.
    let dying = NewJob { coalesce_key: Some("u2/*".into()), user_id: Some("u2".into()), ..new.clone() };
    s.create_running_job(&"job-5".into(), &dying, "crashed", lease, "{}").await.unwrap();
    let joined = s.create_running_job(&"job-5b".into(), &dying, "w3", lease, "{}").await.unwrap();
    assert_eq!(joined, Enqueued { job_id: "job-5".into(), coalesced: true }, "joined while its lease lives");
    lease_runs_out(&s, &"job-5".into(), "crashed").await;
    assert!(s.claim_job("w9", lease).await.unwrap().is_none(), "a dead holder's job is not run again");
    let fresh = s.create_running_job(&"job-6".into(), &dying, "w3", lease, "{}").await.unwrap();
    assert_eq!(fresh, Enqueued { job_id: "job-6".into(), coalesced: false });
    assert_eq!(s.reclaim_expired_jobs().await.unwrap(), 1);
    let job = s.get_job(&"job-5".into()).await.unwrap();
    assert_eq!((job.state, job.last_error.as_deref()), (JobState::Failed, Some("lease expired")));

    // Retention: finished jobs of the kind started before the cutoff go; running ones and other kinds stay.
    let sync = s.enqueue_job(&NewJob::for_item("sync", &"item-a".into())).await.unwrap().job_id;
    s.claim_job("w1", lease).await.unwrap().unwrap();
    s.complete_job(&sync, "w1", None).await.unwrap();
    assert_eq!(s.delete_finished_jobs("balance_refresh", Utc::now() - chrono::Duration::hours(1)).await.unwrap(), 0);
    assert_eq!(s.delete_finished_jobs("balance_refresh", Utc::now() + chrono::Duration::seconds(1)).await.unwrap(), 2);
    assert!(is_not_found(s.get_job(&"job-1".into()).await));
    assert!(is_not_found(s.get_job(&"job-5".into()).await));
    for kept in ["job-3", "job-4", "job-6", sync.as_str()] {
        s.get_job(&kept.into()).await.unwrap();
    }
}
