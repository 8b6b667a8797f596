//! argon2id password hashing and the rules for new passwords. Hashing is deliberately slow (tens of milliseconds,
//! 19 MiB each), so it runs on the blocking pool and never stalls the async workers. The server runs every hash
//! and verification through the bounded [`super::hash_pool::PasswordPool`]; the free functions here are for the
//! one-shot CLI commands.

use anyhow::Context;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};

/// Hashed once per process and verified against when the username does not exist, so a login attempt for an
/// unknown user costs as much as one for a known user (no user enumeration by timing).
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    hash_blocking("banksync-dummy-password").expect("hashing a constant with valid parameters cannot fail")
});

fn hasher() -> Argon2<'static> {
    // OWASP's argon2id baseline: 19 MiB, 2 iterations, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub(crate) fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let hash =
        hasher().hash_password(password.as_bytes(), &salt).map_err(|e| anyhow::anyhow!("cannot hash password: {e}"))?;
    Ok(hash.to_string())
}

pub(crate) fn verify_blocking(hash: &str, password: &str) -> anyhow::Result<bool> {
    let parsed = PasswordHash::new(hash).map_err(|e| anyhow::anyhow!("stored password hash is unreadable: {e}"))?;
    match hasher().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(anyhow::anyhow!("cannot verify password: {e}")),
    }
}

/// The PHC string (`$argon2id$v=19$…`) of `password`.
pub async fn hash_password(password: SecretString) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || hash_blocking(password.expose_secret()))
        .await
        .context("password hashing task panicked")?
}

/// Checks `password` against `hash`; with `None` (unknown user) checks against a dummy hash and returns false.
pub async fn verify_password(hash: Option<String>, password: SecretString) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || verify_or_dummy(hash.as_deref(), password.expose_secret()))
        .await
        .context("password verification task panicked")?
}

/// [`verify_blocking`], or a verification against a dummy hash that returns false when there is no user (the same
/// cost either way, so timing does not tell which names exist).
pub(crate) fn verify_or_dummy(hash: Option<&str>, password: &str) -> anyhow::Result<bool> {
    match hash {
        Some(hash) => verify_blocking(hash, password),
        None => verify_blocking(&DUMMY_HASH, password).map(|_| false),
    }
}

/// Shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest password accepted, in bytes (argon2 would take more, but nobody types this).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The rules for a new password: at least [`MIN_PASSWORD_CHARS`] characters, at most [`MAX_PASSWORD_BYTES`] bytes,
/// and not the user name (in any case). The message says which rule failed.
pub fn validate_new_password(password: &str, username: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!("the password must have at least {MIN_PASSWORD_CHARS} characters"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("the password must have at most {MAX_PASSWORD_BYTES} bytes"));
    }
    if password.trim().to_lowercase() == username.trim().to_lowercase() {
        return Err("the password must not be the user name".into());
    }
    Ok(())
}

/// Longest user name, in bytes.
pub const MAX_USERNAME_BYTES: usize = 64;

/// The rules for a new user name: 1 to [`MAX_USERNAME_BYTES`] bytes, no spaces or control characters (the
/// `banksync user add` rules).
pub fn validate_new_username(username: &str) -> Result<(), String> {
    if username.is_empty()
        || username.len() > MAX_USERNAME_BYTES
        || username.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!("the user name must be 1-{MAX_USERNAME_BYTES} characters without spaces"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_salted_and_verify_only_the_right_password() {
        let a = hash_password(SecretString::from("correct horse")).await.unwrap();
        let b = hash_password(SecretString::from("correct horse")).await.unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "salts must differ");
        assert!(verify_password(Some(a.clone()), SecretString::from("correct horse")).await.unwrap());
        assert!(!verify_password(Some(a), SecretString::from("wrong horse")).await.unwrap());
        assert!(!verify_password(None, SecretString::from("banksync-dummy-password")).await.unwrap());
    }

    #[test]
    fn new_passwords_need_ten_characters_and_must_differ_from_the_name() {
        assert!(validate_new_password("123456789", "alice").unwrap_err().contains("at least 10"));
        assert!(validate_new_password("1234567890", "alice").is_ok());
        assert!(validate_new_password("éééééééééé", "alice").is_ok(), "characters, not bytes");
        assert!(validate_new_password("AliceAlice", "alicealice").unwrap_err().contains("user name"));
        assert!(validate_new_password(&"x".repeat(1025), "alice").unwrap_err().contains("1024"));
        assert!(validate_new_username("alice").is_ok());
        for bad in ["", "a b", "a\u{7}", &"x".repeat(65)] {
            assert!(validate_new_username(bad).is_err(), "{bad:?}");
        }
    }
}
