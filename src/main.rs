//! The `leakbench` binary: parse arguments, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = leakbench::cli::Cli::parse();
    match leakbench::cli::execute(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("leakbench: error: {}", leakbench::exit::error_line(&err));
            ExitCode::from(leakbench::exit::ERROR)
        }
    }
}
