//! The `liankong` binary: parses the command line and hands it to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    liankong::cli::main(liankong::cli::Cli::parse())
}
