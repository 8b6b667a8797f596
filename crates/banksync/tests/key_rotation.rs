//! Master-key rotation: `banksync key rotate | reseal | status` run as the real binary against a temp data
//! directory, and crashes simulated after each durable step of a rotation (the in-process `keys::rotate` stopped
//! by its step hook), checking that every stored token still opens with the keys a starting server loads and that
//! a rerun finishes the job.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use banksync::config::{Config, Settings};
use banksync::domain::NewItem;
use banksync::keys::{self, Step};
use banksync::startup::open_store;
use banksync::store::Store;
use banksync::vault::{KEY_FILE_NAME, Keyring, MasterKey, OLD_KEY_FILE_PREFIX, Vault};
use secrecy::{ExposeSecret as _, SecretString};

const ITEMS: usize = 5;

fn token_of(i: usize) -> String {
    format!("access-sandbox-rotation-test-{i}-SECRETTOKEN")
}

struct Fixture {
    dir: tempfile::TempDir,
    store: Arc<Store>,
    /// Plaid item_id -> plaintext access token.
    tokens: BTreeMap<String, String>,
}

impl Fixture {
    fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    fn config(&self, env_key: Option<&str>, old_keys: Option<&str>) -> Config {
        Config::resolve(Settings {
            data_dir: Some(self.data_dir().to_owned()),
            master_key: env_key.map(str::to_owned),
            old_master_keys: old_keys.map(str::to_owned),
            ..Settings::default()
        })
        .unwrap()
    }
}

/// A data directory whose database holds `ITEMS` Items sealed under `key` (written as the key file when `in_file`).
async fn fixture(key: &MasterKey, in_file: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    if in_file {
        key.write_file_atomic(&dir.path().join(KEY_FILE_NAME)).unwrap();
    }
    let config = Config::resolve(Settings { data_dir: Some(dir.path().to_owned()), ..Settings::default() }).unwrap();
    let store = open_store(&config).await.unwrap();
    let user = store.create_user("alice", "$argon2id$not-used-here").await.unwrap();
    let vault = Vault::new(MasterKey::from_encoded(key.to_base64().expose_secret()).unwrap());
    let mut tokens = BTreeMap::new();
    for i in 0..ITEMS {
        let item_id = format!("item-{i}");
        let sealed = vault.encrypt(&SecretString::from(token_of(i)), &item_id).unwrap();
        store
            .insert_item(&NewItem {
                item_id: item_id.clone().into(),
                user_id: user.id.clone(),
                institution_id: Some(format!("ins_{i}")),
                institution_name: None,
                access_token: sealed,
            })
            .await
            .unwrap();
        tokens.insert(item_id, token_of(i));
    }
    Fixture { dir, store, tokens }
}

fn banksync(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_banksync"));
    command
        .args(args)
        .env("BANKSYNC_DATA_DIR", data_dir)
        .env_remove("BANKSYNC_DATABASE_URL")
        .env_remove("BANKSYNC_MASTER_KEY")
        .env_remove("BANKSYNC_OLD_MASTER_KEYS")
        .env_remove("BANKSYNC_CONFIG")
        .env_remove("PLAID_CLIENT_ID")
        .env_remove("PLAID_SECRET")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("banksync binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
fn ok(output: &Output) -> (String, String) {
    assert!(output.status.success(), "exit {:?}; stderr: {}", output.status, text(&output.stderr));
    (text(&output.stdout), text(&output.stderr))
}

/// No plaintext token and none of `keys` (base64) in `output`.
#[track_caller]
fn assert_no_secrets(fx: &Fixture, output: &str, keys: &[&MasterKey]) {
    for token in fx.tokens.values() {
        assert!(!output.contains(token.as_str()), "a token leaked: {output}");
    }
    assert!(!output.contains("SECRETTOKEN"), "a token leaked: {output}");
    for key in keys {
        assert!(!output.contains(key.to_base64().expose_secret()), "a key leaked: {output}");
    }
}

fn file_key(dir: &Path) -> MasterKey {
    MasterKey::load_file(&dir.join(KEY_FILE_NAME)).unwrap()
}

fn copy(key: &MasterKey) -> MasterKey {
    MasterKey::from_encoded(key.to_base64().expose_secret()).unwrap()
}

/// Every Item's token opens with `vault` and is the original plaintext.
async fn assert_all_open(fx: &Fixture, vault: &Vault) {
    let items = fx.store.list_all_items().await.unwrap();
    assert_eq!(items.len(), ITEMS);
    for item in items {
        let plain = vault
            .decrypt(&item.access_token, item.item_id.as_str())
            .unwrap_or_else(|e| panic!("{}: {e}", item.item_id));
        assert_eq!(plain.expose_secret(), fx.tokens[item.item_id.as_str()]);
    }
}

async fn key_ids(fx: &Fixture) -> BTreeMap<String, usize> {
    let mut ids = BTreeMap::new();
    for item in fx.store.list_all_items().await.unwrap() {
        *ids.entry(item.access_token.key_id).or_insert(0) += 1;
    }
    ids
}

#[tokio::test]
async fn rotate_with_a_key_file_reseals_everything_keeps_the_old_key_and_a_reseal_rerun_is_a_no_op() {
    let key_a = MasterKey::generate();
    let fx = fixture(&key_a, true).await;
    let dir = fx.data_dir();

    let (status, _) = ok(&banksync(dir, &["key", "status"], &[]));
    assert!(status.contains(&format!("primary key: {}", key_a.id())), "{status}");
    assert!(status.contains(&format!("{}  {ITEMS}  (primary)", key_a.id())), "{status}");

    // A server started before the rotation keeps opening every record afterwards (it re-reads the key files).
    let running_server = keys::server_vault(&fx.config(None, None)).unwrap();

    let rotated = banksync(dir, &["key", "rotate"], &[]);
    let (stdout, stderr) = ok(&rotated);
    let key_b = file_key(dir);
    assert_ne!(key_b.id(), key_a.id(), "a new primary key");
    // The server started before the rotation seals what it seals from now on (a bank linked before it restarts)
    // under the new key, never the one the rotation retired: the next rotation then rotates again instead of
    // finishing this one.
    let sealed = running_server.encrypt(&SecretString::from("access-sandbox-linked-later"), "item-later").unwrap();
    assert_eq!(sealed.key_id, key_b.id(), "a running server seals under the key the rotation installed");
    assert!(!running_server.needs_rotation(&sealed));
    assert!(stdout.is_empty(), "nothing on stdout with a key file: {stdout}");
    assert!(stderr.contains(&format!("{ITEMS} Item(s) re-sealed")), "{stderr}");
    assert_no_secrets(&fx, &format!("{stdout}{stderr}"), &[&key_a, &key_b]);

    // The new key alone opens every token; nothing is left under the old one.
    assert_all_open(&fx, &Vault::new(copy(&key_b))).await;
    assert_eq!(key_ids(&fx).await, BTreeMap::from([(key_b.id().to_owned(), ITEMS)]));
    assert_all_open(&fx, &running_server).await;

    // Key files: the new one private, the previous one kept as an old key, also private; no temporary files.
    let old_path = dir.join(format!("{OLD_KEY_FILE_PREFIX}{}", key_a.id()));
    assert_eq!(MasterKey::load_file(&old_path).unwrap().id(), key_a.id());
    for path in [dir.join(KEY_FILE_NAME), old_path] {
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "{}", path.display());
    }
    let names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(!names.iter().any(|n| n.starts_with(".master.key.tmp")), "{names:?}");

    // Rerunning the re-seal changes nothing: same records byte for byte.
    let before: Vec<_> = fx.store.list_all_items().await.unwrap().into_iter().map(|i| i.access_token).collect();
    let (_, stderr) = ok(&banksync(dir, &["key", "reseal"], &[]));
    assert!(stderr.contains("0 Item(s) re-sealed"), "{stderr}");
    let after: Vec<_> = fx.store.list_all_items().await.unwrap().into_iter().map(|i| i.access_token).collect();
    assert_eq!(before, after);
    assert_eq!(file_key(dir).id(), key_b.id(), "reseal never makes a new key");

    let (status, _) = ok(&banksync(dir, &["key", "status"], &[]));
    assert!(status.contains(&format!("primary key: {}", key_b.id())), "{status}");
    assert!(status.contains(&format!("  {} (", key_a.id())), "the old key is listed: {status}");
    assert!(status.contains(&format!("{}  {ITEMS}  (primary)", key_b.id())), "{status}");
    assert_no_secrets(&fx, &status, &[&key_a, &key_b]);

    // A second rotation keeps both older keys and moves everything again.
    ok(&banksync(dir, &["key", "rotate"], &[]));
    let key_c = file_key(dir);
    assert!(key_c.id() != key_a.id() && key_c.id() != key_b.id());
    assert_all_open(&fx, &Vault::new(key_c)).await;
    assert!(dir.join(format!("{OLD_KEY_FILE_PREFIX}{}", key_b.id())).exists());
}

/// Stops a rotation at `crash_at`, checks what a starting server would load still opens every token, then lets
/// the real binary rerun the rotation.
async fn crash_then_rerun(crash_at: Step) -> (Fixture, MasterKey, String) {
    let key_a = MasterKey::generate();
    let fx = fixture(&key_a, true).await;
    let config = fx.config(None, None);

    let err = keys::rotate(fx.store.as_ref(), &config, &mut |step| {
        if step == crash_at { Err(anyhow::anyhow!("simulated crash at {step:?}")) } else { Ok(()) }
    })
    .await
    .expect_err("the simulated crash stops the rotation");
    assert!(err.to_string().contains("simulated crash"), "{err:#}");

    // What a server starting now loads: the key file plus every old key.
    assert_all_open(&fx, &keys::server_vault(&config).unwrap()).await;

    let (stdout, stderr) = ok(&banksync(fx.data_dir(), &["key", "rotate"], &[]));
    assert_no_secrets(&fx, &format!("{stdout}{stderr}"), &[&key_a]);
    let primary = file_key(fx.data_dir());
    assert_all_open(&fx, &Vault::new(copy(&primary))).await;
    assert_eq!(key_ids(&fx).await, BTreeMap::from([(primary.id().to_owned(), ITEMS)]));
    assert!(fx.data_dir().join(format!("{OLD_KEY_FILE_PREFIX}{}", key_a.id())).exists(), "the old key is kept");
    (fx, key_a, stderr)
}

#[tokio::test]
async fn a_crash_after_saving_the_old_key_loses_nothing_and_a_rerun_rotates() {
    let (fx, key_a, stderr) = crash_then_rerun(Step::OldKeySaved).await;
    assert_ne!(file_key(fx.data_dir()).id(), key_a.id());
    assert!(stderr.contains("rotated"), "{stderr}");
}

#[tokio::test]
async fn a_crash_after_installing_the_new_key_is_finished_by_a_rerun_without_another_new_key() {
    let key_a = MasterKey::generate();
    let fx = fixture(&key_a, true).await;
    let config = fx.config(None, None);
    let _ = keys::rotate(fx.store.as_ref(), &config, &mut |step| {
        if step == Step::NewKeyInstalled { Err(anyhow::anyhow!("simulated crash")) } else { Ok(()) }
    })
    .await
    .expect_err("crash");
    let key_b = file_key(fx.data_dir());
    assert_ne!(key_b.id(), key_a.id());
    // Nothing re-sealed yet; status says so, and a starting server opens everything through the old-key file.
    let (status, _) = ok(&banksync(fx.data_dir(), &["key", "status"], &[]));
    assert!(status.contains(&format!("{}  {ITEMS}  (old key", key_a.id())), "{status}");
    assert_all_open(&fx, &keys::server_vault(&config).unwrap()).await;

    let (_, stderr) = ok(&banksync(fx.data_dir(), &["key", "rotate"], &[]));
    assert!(stderr.contains(&format!("finished an earlier rotation: {ITEMS} Item(s) re-sealed")), "{stderr}");
    assert_eq!(file_key(fx.data_dir()).id(), key_b.id(), "the rerun finishes, it does not rotate again");
    assert_all_open(&fx, &Vault::new(key_b)).await;
}

#[tokio::test]
async fn a_crash_half_way_through_resealing_is_finished_by_a_rerun() {
    let (fx, key_a, stderr) = crash_then_rerun(Step::Resealed(2)).await;
    assert!(stderr.contains(&format!("finished an earlier rotation: {} Item(s) re-sealed", ITEMS - 2)), "{stderr}");
    assert_ne!(file_key(fx.data_dir()).id(), key_a.id());
}

#[tokio::test]
async fn with_banksync_master_key_rotation_prints_a_new_key_and_reseals_only_once_it_is_configured() {
    let key_a = MasterKey::generate();
    let fx = fixture(&key_a, false).await;
    let dir = fx.data_dir();
    let a64 = key_a.to_base64();
    let a = a64.expose_secret();

    // Step 1: a new key on stdout (one line), instructions on stderr, nothing changed, no key file written.
    let before = key_ids(&fx).await;
    let (stdout, stderr) = ok(&banksync(dir, &["key", "rotate"], &[("BANKSYNC_MASTER_KEY", a)]));
    assert_eq!(stdout.lines().count(), 1, "{stdout:?}");
    let key_b = MasterKey::from_encoded(stdout.trim()).expect("stdout is the new key");
    assert_ne!(key_b.id(), key_a.id());
    assert!(stderr.contains("BANKSYNC_OLD_MASTER_KEYS") && stderr.contains("BANKSYNC_MASTER_KEY"), "{stderr}");
    assert!(stderr.contains("banksync key reseal"), "{stderr}");
    assert_no_secrets(&fx, &stderr, &[&key_a, &key_b]);
    assert_eq!(key_ids(&fx).await, before, "nothing is re-sealed under a key that is not configured yet");
    assert!(!dir.join(KEY_FILE_NAME).exists(), "no key file in environment mode");

    // Forgetting the old key: the re-seal refuses, names the key id, changes nothing.
    let b64 = key_b.to_base64();
    let b = b64.expose_secret();
    let refused = banksync(dir, &["key", "reseal"], &[("BANKSYNC_MASTER_KEY", b)]);
    assert!(!refused.status.success());
    let stderr = text(&refused.stderr);
    assert!(stderr.contains(key_a.id()), "{stderr}");
    assert_no_secrets(&fx, &stderr, &[&key_a, &key_b]);
    assert_eq!(key_ids(&fx).await, before);

    // Step 2: configured as instructed, the re-seal moves every Item; a rerun is a no-op.
    let env = [("BANKSYNC_MASTER_KEY", b), ("BANKSYNC_OLD_MASTER_KEYS", a)];
    let (status, _) = ok(&banksync(dir, &["key", "status"], &env));
    assert!(status.contains(&format!("primary key: {} (BANKSYNC_MASTER_KEY)", key_b.id())), "{status}");
    assert!(status.contains(&format!("{}  {ITEMS}  (old key", key_a.id())), "{status}");
    let (_, stderr) = ok(&banksync(dir, &["key", "reseal"], &env));
    assert!(stderr.contains(&format!("{ITEMS} Item(s) re-sealed")), "{stderr}");
    assert_all_open(&fx, &Vault::new(copy(&key_b))).await;
    let (_, stderr) = ok(&banksync(dir, &["key", "reseal"], &env));
    assert!(stderr.contains("0 Item(s) re-sealed"), "{stderr}");
    // With every Item on the primary, `key rotate` starts the next rotation: it prints another key, changes nothing.
    let (stdout, _) = ok(&banksync(dir, &["key", "rotate"], &env));
    assert_ne!(MasterKey::from_encoded(stdout.trim()).unwrap().id(), key_b.id());
    assert_eq!(key_ids(&fx).await, BTreeMap::from([(key_b.id().to_owned(), ITEMS)]));
}

#[tokio::test]
async fn rotation_refuses_to_start_when_the_current_key_does_not_open_the_tokens() {
    let key_a = MasterKey::generate();
    let fx = fixture(&key_a, true).await;
    // The key file is replaced by an unrelated key and no old key is kept: the records name a missing key.
    MasterKey::generate().write_file_atomic(&fx.data_dir().join(KEY_FILE_NAME)).unwrap();
    let before = key_ids(&fx).await;
    let output = banksync(fx.data_dir(), &["key", "rotate"], &[]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains(key_a.id()) && stderr.contains("BANKSYNC_OLD_MASTER_KEYS"), "{stderr}");
    assert_eq!(key_ids(&fx).await, before);
    let names: Vec<String> =
        std::fs::read_dir(fx.data_dir()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(!names.iter().any(|n| n.starts_with(OLD_KEY_FILE_PREFIX)), "nothing written: {names:?}");
}

#[tokio::test]
async fn keyring_loads_old_keys_from_both_sources_and_debug_shows_only_ids() {
    let dir = tempfile::tempdir().unwrap();
    let (primary, env_old, file_old) = (MasterKey::generate(), MasterKey::generate(), MasterKey::generate());
    primary.write_file_atomic(&dir.path().join(KEY_FILE_NAME)).unwrap();
    keys::save_old_key(&file_old, dir.path()).unwrap();
    let env_text = env_old.to_base64();
    let keyring =
        Keyring::load(None, &[SecretString::from(env_text.expose_secret().to_owned())], dir.path(), false).unwrap();
    assert_eq!(keyring.key_ids(), [primary.id(), env_old.id(), file_old.id()]);
    let debug = format!("{keyring:?}");
    for key in [&primary, &env_old, &file_old] {
        assert!(!debug.contains(key.to_base64().expose_secret()), "{debug}");
        assert!(debug.contains(key.id()), "{debug}");
    }
    // An unreadable old-key file is an error naming the file, not a silently smaller keyring.
    let old_path = dir.path().join(format!("{OLD_KEY_FILE_PREFIX}{}", file_old.id()));
    std::fs::set_permissions(&old_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = Keyring::load(None, &[], dir.path(), false).unwrap_err();
    assert!(err.to_string().contains(OLD_KEY_FILE_PREFIX), "{err}");
}

#[tokio::test]
async fn the_server_starts_mid_rotation_and_refuses_to_start_without_the_old_key() {
    let key_a = MasterKey::generate();
    let fx = fixture(&key_a, true).await;
    let _ = keys::rotate(fx.store.as_ref(), &fx.config(None, None), &mut |step| {
        if step == Step::NewKeyInstalled { Err(anyhow::anyhow!("simulated crash")) } else { Ok(()) }
    })
    .await
    .expect_err("crash");
    let server_config = || {
        let mut config = fx.config(None, None);
        config.listen = "127.0.0.1:0".parse().unwrap();
        config
    };
    banksync::startup::Application::build(server_config()).await.expect("old key file opens the old records");

    // Without the old key no configured key opens a record: the start stops and names the missing key id.
    std::fs::remove_file(fx.data_dir().join(format!("{OLD_KEY_FILE_PREFIX}{}", key_a.id()))).unwrap();
    let err = banksync::startup::Application::build(server_config()).await.err().expect("must not start");
    let text = format!("{err:#}");
    assert!(text.contains(key_a.id()) && text.contains("BANKSYNC_OLD_MASTER_KEYS"), "{text}");
    assert!(!text.contains(key_a.to_base64().expose_secret()), "{text}");

    // Given as BANKSYNC_OLD_MASTER_KEYS instead, it starts again.
    let mut config = fx.config(None, Some(key_a.to_base64().expose_secret()));
    config.listen = "127.0.0.1:0".parse().unwrap();
    banksync::startup::Application::build(config).await.expect("old key from the environment");
}

/// A re-seal racing a new access token for the same Item (an update-mode relink stores a new token between the
/// re-seal's read and its write): the re-seal's write does not apply, the new token stands, and the next pass (or
/// run) re-seals the new token, not the old one.
#[tokio::test]
async fn a_reseal_racing_a_new_token_never_overwrites_it_and_the_next_pass_reseals_the_new_one() {
    let old = MasterKey::generate();
    let fx = fixture(&old, false).await;
    let new = MasterKey::generate();
    let vault = Vault::with_old_keys(copy(&new), vec![copy(&old)]);
    let old_vault = Vault::new(copy(&old));

    // The re-seal reads item-0 ...
    let read = fx.store.list_all_items().await.unwrap().into_iter().find(|i| i.item_id.as_str() == "item-0").unwrap();
    // ... the relink stores a new token (sealed by a server still on the old key) ...
    let relinked =
        old_vault.encrypt(&SecretString::from("access-sandbox-RELINKED-token".to_owned()), "item-0").unwrap();
    fx.store.update_item_access_token(&read.id, &relinked).await.unwrap();
    // ... and the re-seal's compare-and-set write finds the token changed: nothing written.
    assert_eq!(keys::reseal_item(&fx.store, &vault, &read).await.unwrap(), keys::Resealed::Changed);
    let now = fx.store.get_item_by_plaid_id(&"item-0".into()).await.unwrap().unwrap();
    assert_eq!(now.access_token, relinked, "the new token stands");

    // The next run re-seals every Item, item-0 with its new token.
    let report = keys::reseal_all(&fx.store, &vault, &mut |_| Ok(())).await.unwrap();
    assert_eq!((report.resealed, report.raced, report.failed.len()), (ITEMS, 0, 0));
    let item0 = fx.store.get_item_by_plaid_id(&"item-0".into()).await.unwrap().unwrap();
    assert_eq!(item0.access_token.key_id, new.id());
    let plain = Vault::new(copy(&new)).decrypt(&item0.access_token, "item-0").unwrap();
    assert_eq!(plain.expose_secret(), "access-sandbox-RELINKED-token");
}
