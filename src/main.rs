//! The `rxsync` command: parses arguments, sets up logging, dispatches to
//! one subcommand, and turns the outcome into an exit code (0 success,
//! 1 failure, 2 usage or configuration error). Errors print their cause chain.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
