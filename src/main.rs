//! The `leakbench` binary: parse arguments, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match leakbench::cli::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        // A command line `git bisect run` cannot use is no reason to call a
        // commit bad: say so and skip it.
        Err(e) if leakbench::cli::wants_bisect(&args) && e.use_stderr() => {
            let _ = e.print();
            let (code, line) =
                leakbench::exit::bisect::code(leakbench::exit::ERROR, "bad arguments");
            eprintln!("{}", line.unwrap_or_default());
            return ExitCode::from(code);
        }
        Err(e) => e.exit(),
    };
    match leakbench::cli::execute(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("leakbench: error: {}", leakbench::exit::error_line(&err));
            ExitCode::from(leakbench::exit::ERROR)
        }
    }
}
