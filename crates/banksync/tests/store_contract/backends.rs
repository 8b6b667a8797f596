//! Backend selection and the two migration trees.

use super::*;

#[tokio::test]
async fn the_url_scheme_selects_the_backend() {
    for bad in ["mysql://localhost/db", "banksync.db", "", "http://x"] {
        assert!(matches!(connect(bad).await, Err(StoreError::InvalidInput(_))), "{bad:?}");
    }
    let memory = connect("sqlite::memory:").await.unwrap();
    assert_eq!(memory.backend(), Backend::Sqlite);
    memory.migrate().await.unwrap();
    memory.ping().await.unwrap();
    // An in-memory database shares one connection between writes and reads.
    let u = memory.create_user("solo", "h").await.unwrap();
    assert_eq!(memory.get_user(&u.id).await.unwrap().username, "solo");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested.db");
    let file = Store::open_sqlite(&path).await.unwrap();
    file.migrate().await.unwrap();
    assert!(path.exists(), "created on first open");
}

#[test]
fn both_migration_trees_have_the_same_versions_and_names() {
    let names = |dialect: &str| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(dialect);
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    };
    let sqlite = names("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, names("postgres"));
}

/// PostgreSQL refreshes the planner's statistics after a bulk write, on a connection of its own, and never waits
/// for another session analyzing the same table (several instances share one database; a queued `ANALYZE` held a
/// sync job for 9.8 s on CI): that table is skipped, the others analyzed, and the next bulk write analyzes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refreshes_statistics_after_a_bulk_write_without_waiting_for_another_analyze() {
    // One pooled connection: the refresh must not need a second one from the pool.
    run_postgres_with(1, statistics_refresh_never_waits_for_another_analyze).await;
}

async fn statistics_refresh_never_waits_for_another_analyze(s: S, options: sqlx::postgres::PgConnectOptions) {
    use sqlx::{ConnectOptions as _, Connection as _};
    let owner = user(&s, "stats").await;
    let initial_sync = |item_id: &'static str| {
        let (s, owner) = (s.clone(), owner.clone());
        async move {
            let it = item(&s, &owner, item_id, "ins_1").await;
            let run = s.start_sync_run(&it.id, "link").await.unwrap();
            assert!(s.claim_initial_sync(&it, &run.id).await.unwrap());
            let rows =
                (0..12_000).map(|i| txn(&format!("{item_id}-{i:05}"), "acc", "5", "2026-01-01T00:00:00Z")).collect();
            s.write_initial_pages(&it, &run.id, &[page(rows, vec![], &[])]).await.unwrap();
            tokio::time::timeout(Duration::from_secs(30), s.commit_initial_sync(&it, &run.id, "c1"))
                .await
                .expect("the commit waited for another session's lock on the table")
                .unwrap();
        }
    };
    let mut observer = options.connect().await.unwrap();
    // How many times `table` was analyzed (the migrations analyze `transactions` once).
    let analyses = |table: &'static str| {
        sqlx::query_scalar::<_, i64>(
            "SELECT analyze_count FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = $1",
        )
        .bind(table)
    };
    let before = analyses("transactions").fetch_one(&mut observer).await.unwrap();

    // Another session holds the lock ANALYZE takes (as its own ANALYZE or autovacuum would) until it is done.
    let mut other = options.connect().await.unwrap();
    sqlx::query("BEGIN").execute(&mut other).await.unwrap();
    sqlx::query("LOCK TABLE transactions IN SHARE UPDATE EXCLUSIVE MODE").execute(&mut other).await.unwrap();
    initial_sync("item-a").await;
    assert_eq!(analyses("transactions").fetch_one(&mut observer).await.unwrap(), before, "the other session has it");
    assert_eq!(analyses("accounts").fetch_one(&mut observer).await.unwrap(), 1, "the tables nobody else held");
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();

    initial_sync("item-b").await;
    assert_eq!(analyses("transactions").fetch_one(&mut observer).await.unwrap(), before + 1, "the next bulk write");
    let estimate: f32 = sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE oid = 'transactions'::regclass")
        .fetch_one(&mut observer)
        .await
        .unwrap();
    assert_eq!(estimate, 24_000.0, "both histories, as the planner now sees the table");

    for conn in [observer, other] {
        conn.close().await.unwrap();
    }
}
