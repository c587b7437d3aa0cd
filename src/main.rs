//! The `infra` binary: parse arguments, run the command, map the result to an
//! exit code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    infra::commands::answer_completion_if_asked();
    let cli = infra::cli::Cli::parse();
    infra::commands::run(cli)
}
