//! Token vault: AES-256-GCM with per-record nonces, the Item bound as associated data, key ids and rotation, and
//! the master key's sources.

use std::os::unix::fs::PermissionsExt as _;

use banksync::vault::*;
use secrecy::{ExposeSecret, SecretString};

const TOKEN: &str = "access-sandbox-0b5e2f1c-8a4d-4a6e-9f1e-secretsecret";

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

fn key(byte: u8) -> MasterKey {
    MasterKey::from_bytes([byte; KEY_LEN])
}

#[test]
fn round_trip() {
    let vault = Vault::new(key(1));
    let sealed = vault.encrypt(&secret(TOKEN), "item-1").unwrap();
    assert_eq!(sealed.key_id, vault.primary_key_id());
    assert_eq!(sealed.nonce.len(), NONCE_LEN);
    assert_eq!(sealed.ciphertext.len(), TOKEN.len() + 16, "ciphertext plus GCM tag");
    assert!(!sealed.ciphertext.windows(6).any(|w| w == b"secret"), "no plaintext in the record");
    assert_eq!(vault.decrypt(&sealed, "item-1").unwrap().expose_secret(), TOKEN);
}

#[test]
fn every_record_gets_a_fresh_nonce() {
    let vault = Vault::new(key(1));
    let records: Vec<Sealed> = (0..50).map(|_| vault.encrypt(&secret(TOKEN), "item-1").unwrap()).collect();
    let nonces: std::collections::HashSet<_> = records.iter().map(|r| r.nonce.clone()).collect();
    assert_eq!(nonces.len(), records.len());
    assert_ne!(records[0].ciphertext, records[1].ciphertext, "same plaintext, different ciphertext");
}

#[test]
fn wrong_key_fails_without_plaintext() {
    let sealed = Vault::new(key(1)).encrypt(&secret(TOKEN), "item-1").unwrap();
    // A different key that claims the same id (e.g. a wrong BANKSYNC_MASTER_KEY with a forged record) still fails.
    let other = Vault::new(key(2));
    let forged = Sealed { key_id: other.primary_key_id().to_owned(), ..sealed.clone() };
    let err = other.decrypt(&forged, "item-1").unwrap_err();
    assert!(matches!(err, VaultError::Decrypt), "{err}");
    assert!(!err.to_string().contains(TOKEN));
    // A record naming a key the vault does not hold says which key is missing.
    let err = other.decrypt(&sealed, "item-1").unwrap_err();
    assert!(matches!(&err, VaultError::UnknownKey(id) if *id == sealed.key_id), "{err}");
}

#[test]
fn a_record_cannot_move_to_another_item() {
    let vault = Vault::new(key(1));
    let sealed = vault.encrypt(&secret(TOKEN), "item-1").unwrap();
    assert!(matches!(vault.decrypt(&sealed, "item-2"), Err(VaultError::Decrypt)));
}

#[test]
fn tampering_is_detected() {
    let vault = Vault::new(key(1));
    let sealed = vault.encrypt(&secret(TOKEN), "item-1").unwrap();
    let mut flipped = sealed.clone();
    flipped.ciphertext[3] ^= 1;
    assert!(matches!(vault.decrypt(&flipped, "item-1"), Err(VaultError::Decrypt)));
    let mut nonce = sealed.clone();
    nonce.nonce[0] ^= 1;
    assert!(matches!(vault.decrypt(&nonce, "item-1"), Err(VaultError::Decrypt)));
    let short = Sealed { nonce: vec![0; 8], ..sealed };
    assert!(matches!(vault.decrypt(&short, "item-1"), Err(VaultError::Decrypt)));
}

#[test]
fn rotation_decrypts_old_records_and_reseals_with_the_primary() {
    let old_vault = Vault::new(key(1));
    let old_record = old_vault.encrypt(&secret(TOKEN), "item-1").unwrap();

    let rotated = Vault::with_old_keys(key(2), vec![key(1)]);
    assert_ne!(rotated.primary_key_id(), old_vault.primary_key_id());
    assert!(rotated.needs_rotation(&old_record));
    assert_eq!(rotated.decrypt(&old_record, "item-1").unwrap().expose_secret(), TOKEN);
    let new_record = rotated.reseal(&old_record, "item-1").unwrap();
    assert_eq!(new_record.key_id, rotated.primary_key_id());
    assert!(!rotated.needs_rotation(&new_record));
    // After the old key is dropped, only resealed records open.
    let new_only = Vault::new(key(2));
    assert_eq!(new_only.decrypt(&new_record, "item-1").unwrap().expose_secret(), TOKEN);
    assert!(matches!(new_only.decrypt(&old_record, "item-1"), Err(VaultError::UnknownKey(_))));
}

#[test]
fn key_ids_are_stable_and_distinct() {
    assert_eq!(key(1).id(), key(1).id());
    assert_ne!(key(1).id(), key(2).id());
    assert_eq!(key(1).id().len(), 8);
    assert!(key(1).id().bytes().all(|b| b.is_ascii_hexdigit()));
}

#[test]
fn debug_output_holds_no_key_material() {
    let k = MasterKey::from_bytes([0xAB; KEY_LEN]);
    let b64 = k.to_base64();
    let vault = Vault::new(MasterKey::from_encoded(b64.expose_secret()).unwrap());
    let sealed = vault.encrypt(&secret(TOKEN), "item-1").unwrap();
    for text in [format!("{k:?}"), format!("{vault:?}"), format!("{sealed:?}")] {
        assert!(!text.contains("ab, ab") && !text.contains("171") && !text.to_lowercase().contains("abab"), "{text}");
        assert!(!text.contains(b64.expose_secret()), "{text}");
        assert!(!text.contains(TOKEN), "{text}");
    }
    assert!(format!("{vault:?}").contains(&vault.primary_key_id()), "key ids are fine to show");
}

#[test]
fn master_key_encodings() {
    let hex_key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let from_hex = MasterKey::from_encoded(hex_key).unwrap();
    let bytes: [u8; KEY_LEN] = hex::decode(hex_key).unwrap().try_into().unwrap();
    assert_eq!(from_hex.id(), MasterKey::from_bytes(bytes).id());
    let b64 = MasterKey::from_bytes(bytes).to_base64();
    assert_eq!(MasterKey::from_encoded(&format!("  {}\n", b64.expose_secret())).unwrap().id(), from_hex.id());

    for bad in ["", "too short", "c2hvcnQ=", &hex_key[..62], "zz".repeat(32).as_str()] {
        let err = MasterKey::from_encoded(bad).unwrap_err();
        assert!(matches!(err, VaultError::InvalidKey(_)), "{bad:?}: {err}");
    }
}

#[test]
fn key_file_is_created_0600_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let first = load_master_key(None, &data_dir).unwrap();
    let path = data_dir.join(KEY_FILE_NAME);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let second = load_master_key(None, &data_dir).unwrap();
    assert_eq!(first.id(), second.id(), "the same key on the next start");

    // The environment wins over the file.
    let env = MasterKey::generate().to_base64();
    let from_env = load_master_key(Some(&env), &data_dir).unwrap();
    assert_ne!(from_env.id(), first.id());
    let err = load_master_key(Some(&secret("not-a-key")), &data_dir).unwrap_err();
    assert!(err.to_string().contains("BANKSYNC_MASTER_KEY"), "{err}");
    assert!(!err.to_string().contains("not-a-key"), "the bad value is not echoed");
}

#[test]
fn unsafe_or_broken_key_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(KEY_FILE_NAME);
    std::fs::write(&path, MasterKey::generate().to_base64().expose_secret()).unwrap();

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = MasterKey::load_or_create(&path).unwrap_err();
    assert!(err.to_string().contains("chmod 600"), "{err}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(MasterKey::load_or_create(&path).is_err(), "group-readable");

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(MasterKey::load_or_create(&path).is_ok());

    // Wrong length: refused, and never silently replaced by a new key.
    std::fs::write(&path, "c2hvcnQ=").unwrap();
    let err = MasterKey::load_or_create(&path).unwrap_err();
    assert!(matches!(err, VaultError::KeyFile { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "c2hvcnQ=");

    // A directory where the file should be.
    let as_dir = dir.path().join("dir.key");
    std::fs::create_dir(&as_dir).unwrap();
    assert!(MasterKey::load_or_create(&as_dir).is_err());
}
