//! Rebuilds the crate when a migration changes: `sqlx::migrate!` embeds the SQL files at
//! compile time but does not tell cargo to watch them.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
