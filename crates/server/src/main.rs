//! The `cairn` binary. All of it lives in the library: see `cairn_server::cli`.

fn main() -> std::process::ExitCode {
    cairn_server::cli::main()
}
