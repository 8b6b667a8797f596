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
