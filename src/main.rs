//! The `rxsync` command: parses arguments, sets up logging, dispatches to
//! one subcommand, and turns the outcome into an exit code (0 success,
//! 1 failure, 2 usage or configuration error). Errors print their cause chain.

mod cli;

/// mimalloc: parsing and normalizing allocate many small strings, and the
/// system allocator's frees dominated the profile (BENCHMARKS.md has both).
/// `--features system-allocator` builds with the system's instead.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

fn main() -> ExitCode {
    restore_sigpipe();
    cli::main()
}

/// Rust ignores SIGPIPE, so `rxsync queue list | head` would panic on the
/// first write after `head` exits. A command-line tool should end quietly
/// instead, as `cat` does: restore the default action.
#[cfg(unix)]
fn restore_sigpipe() {
    // SAFETY: called first thing in main, before any thread exists; setting a
    // signal's disposition to SIG_DFL has no other precondition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn restore_sigpipe() {}
