//! Rebuilds the server when a migration changes: `sqlx::migrate!` embeds `migrations/` at
//! compile time, and cargo does not know to look there otherwise.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
