//! The server under test: exactly the `cairn` binary (see the note in this crate's Cargo.toml).

fn main() -> std::process::ExitCode {
    cairn_server::cli::main()
}
