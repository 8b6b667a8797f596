//! argon2id password hashing and the rules for new passwords. Hashing is deliberately slow (tens of milliseconds,
//! 19 MiB each), so it runs on the blocking pool and never stalls the async workers. The server runs every hash
//! and verification through the bounded [`super::hash_pool::PasswordPool`]; the free functions here are for the
//! one-shot CLI commands.

use anyhow::Context;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq as _;

/// Verified against when the username does not exist, so a login attempt for an unknown user costs as much as one
/// for a known user (no user enumeration by timing): a fixed argon2id hash of a throwaway password with the
/// parameters of [`params`] (a test keeps the two in step). A constant rather than hashed at first use: that hash
/// took its own 19 MiB beside the pool's buffers, and made the first unknown name's answer twice as slow.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$/LFtaAMdpZsDphSjFTbnvQ$mZy9prneCoQYsoiJ2eXodjbj9Av+7ruxYnw0CJx2/7U";

/// OWASP's argon2id baseline: 19 MiB, 2 iterations, 1 lane.
fn params() -> Params {
    Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters")
}

/// The memory one argon2 run works in (19 MiB for our parameters), kept and reused by its owner.
///
/// Why not let argon2 allocate: each run's fresh 19 MiB came from whichever blocking thread ran it, glibc keeps freed
/// memory in that thread's arena, and a login flood spread over the blocking pool's threads left the process at
/// ~650 MiB although only two hashes ever ran at once. The server's pool keeps one `Scratch` per turn instead, so
/// hashing memory is exactly `concurrency` × 19 MiB for the life of the process.
#[derive(Default)]
pub(crate) struct Scratch(Vec<Block>);

impl Scratch {
    fn blocks(&mut self, params: &Params) -> &mut [Block] {
        let needed = params.block_count();
        if self.0.len() < needed {
            self.0.resize(needed, Block::default());
        }
        &mut self.0[..needed]
    }
}

/// The argon2id PHC string of `password`, computed in `scratch`.
pub(crate) fn hash_with(scratch: &mut Scratch, password: &str) -> anyhow::Result<String> {
    let params = params();
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| anyhow::anyhow!("cannot hash password: {e}"))?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let hash = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
        Ok(argon2.hash_password_into_with_memory(password.as_bytes(), salt_bytes, out, scratch.blocks(&params))?)
    })
    .map_err(|e| anyhow::anyhow!("cannot hash password: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| anyhow::anyhow!("cannot hash password: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(hash),
    };
    Ok(phc.to_string())
}

/// Checks `password` against a stored PHC string (its own algorithm, version and parameters), computed in `scratch`;
/// the comparison is constant-time.
pub(crate) fn verify_with(scratch: &mut Scratch, hash: &str, password: &str) -> anyhow::Result<bool> {
    let unreadable = |e: &dyn std::fmt::Display| anyhow::anyhow!("stored password hash is unreadable: {e}");
    let parsed = PasswordHash::new(hash).map_err(|e| unreadable(&e))?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|e| unreadable(&e))?;
    let version = parsed.version.map(Version::try_from).transpose().map_err(|e| unreadable(&e))?.unwrap_or_default();
    let params = Params::try_from(&parsed).map_err(|e| unreadable(&e))?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(unreadable(&"no salt or no hash"));
    };
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| unreadable(&e))?;
    let mut computed = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut computed, scratch.blocks(&params))
        .map_err(|e| anyhow::anyhow!("cannot verify password: {e}"))?;
    Ok(computed.ct_eq(expected.as_bytes()).into())
}

/// The PHC string (`$argon2id$v=19$…`) of `password`.
pub async fn hash_password(password: SecretString) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || hash_with(&mut Scratch::default(), password.expose_secret()))
        .await
        .context("password hashing task panicked")?
}

/// Checks `password` against `hash`; with `None` (unknown user) checks against a dummy hash and returns false.
pub async fn verify_password(hash: Option<String>, password: SecretString) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        verify_or_dummy(&mut Scratch::default(), hash.as_deref(), password.expose_secret())
    })
    .await
    .context("password verification task panicked")?
}

/// [`verify_with`], or a verification against a dummy hash that returns false when there is no user (the same
/// cost either way, so timing does not tell which names exist).
pub(crate) fn verify_or_dummy(scratch: &mut Scratch, hash: Option<&str>, password: &str) -> anyhow::Result<bool> {
    match hash {
        Some(hash) => verify_with(scratch, hash, password),
        None => verify_with(scratch, DUMMY_HASH, password).map(|_| false),
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

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        let dummy = PasswordHash::new(DUMMY_HASH).unwrap();
        assert_eq!(dummy.algorithm, Algorithm::Argon2id.ident());
        let (ours, theirs) = (params(), Params::try_from(&dummy).unwrap());
        assert_eq!((theirs.m_cost(), theirs.t_cost(), theirs.p_cost()), (ours.m_cost(), ours.t_cost(), ours.p_cost()));
        let real = hash_with(&mut Scratch::default(), "a real password").unwrap();
        assert_eq!(PasswordHash::new(&real).unwrap().params, dummy.params);
        assert!(!verify_or_dummy(&mut Scratch::default(), None, "banksync-dummy-password").unwrap());
        assert!(verify_with(&mut Scratch::default(), DUMMY_HASH, "banksync-dummy-password").unwrap());
    }

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
    fn hashes_agree_with_the_argon2_crates_own_hasher_and_verifier_and_scratch_is_reused() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, params());
        // Ours verifies with theirs (hashes stored by this version)...
        let mut scratch = Scratch::default();
        let ours = hash_with(&mut scratch, "correct horse").unwrap();
        reference.verify_password(b"correct horse", &PasswordHash::new(&ours).unwrap()).unwrap();
        assert!(reference.verify_password(b"wrong horse", &PasswordHash::new(&ours).unwrap()).is_err());
        // ...and theirs, including other parameters, with ours (hashes stored by earlier versions), in one scratch.
        let salt = SaltString::generate(&mut OsRng);
        let theirs = reference.hash_password(b"correct horse", &salt).unwrap().to_string();
        let small = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(8 * 1024, 3, 1, Some(40)).unwrap());
        let theirs_small = small.hash_password(b"correct horse", &salt).unwrap().to_string();
        for stored in [&ours, &theirs, &theirs_small] {
            assert!(verify_with(&mut scratch, stored, "correct horse").unwrap(), "{stored}");
            assert!(!verify_with(&mut scratch, stored, "correct horsf").unwrap(), "{stored}");
        }
        assert_eq!(scratch.0.len(), params().block_count(), "one 19 MiB buffer, reused");
        assert!(verify_with(&mut scratch, "$argon2id$v=19$garbage", "x").is_err());
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
