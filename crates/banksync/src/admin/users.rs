//! `banksync user list` and `banksync user passwd NAME`.

use anyhow::Context as _;
use secrecy::ExposeSecret as _;

use crate::auth::password::{hash_password, validate_new_password};
use crate::store::Store;

/// Tab-separated, one user per line (or JSON): name, id, created, Items, API tokens, live sessions.
pub async fn list(store: &Store, json: bool) -> anyhow::Result<()> {
    let users = store.list_user_summaries().await.context("cannot list the users")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&users)?);
        return Ok(());
    }
    println!("NAME\tID\tCREATED_AT\tITEMS\tAPI_TOKENS\tSESSIONS");
    for u in &users {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            u.username,
            u.id,
            u.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            u.items,
            u.api_tokens,
            u.active_sessions
        );
    }
    eprintln!("{} user(s)", users.len());
    Ok(())
}

/// Sets NAME's password (read like `user add`'s) and signs them out of every browser session.
pub async fn passwd(store: &Store, name: &str, password: secrecy::SecretString) -> anyhow::Result<()> {
    let user = store
        .find_user_by_username(name.trim())
        .await
        .context("cannot look up the user")?
        .with_context(|| format!("no user named {name:?} (see `banksync user list`)"))?;
    validate_new_password(password.expose_secret(), &user.username).map_err(anyhow::Error::msg)?;
    let hash = hash_password(password).await?;
    let ended = store.set_password_and_end_sessions(&user.id, &hash).await.context("cannot change the password")?;
    eprintln!(
        "changed the password of {}; {ended} browser session(s) signed out (API tokens keep working: revoke them \
         with `banksync token revoke`)",
        user.username
    );
    Ok(())
}
