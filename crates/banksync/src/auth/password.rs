//! argon2id password hashing. Hashing is deliberately slow (tens of milliseconds), so it runs in
//! `spawn_blocking` and never stalls the async workers.

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

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let hash =
        hasher().hash_password(password.as_bytes(), &salt).map_err(|e| anyhow::anyhow!("cannot hash password: {e}"))?;
    Ok(hash.to_string())
}

fn verify_blocking(hash: &str, password: &str) -> anyhow::Result<bool> {
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
    tokio::task::spawn_blocking(move || match hash {
        Some(hash) => verify_blocking(&hash, password.expose_secret()),
        None => verify_blocking(&DUMMY_HASH, password.expose_secret()).map(|_| false),
    })
    .await
    .context("password verification task panicked")?
}

/// Rejects passwords too short to be worth hashing.
pub fn validate_new_password(password: &str) -> Result<(), String> {
    if password.chars().count() < 8 {
        return Err("the password must have at least 8 characters".into());
    }
    if password.len() > 1024 {
        return Err("the password must have at most 1024 bytes".into());
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
}
