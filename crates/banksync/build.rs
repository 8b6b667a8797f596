// `sqlx::migrate!` embeds the migration files at compile time; without this, adding a migration would not
// trigger a rebuild and the binary would silently miss it.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
