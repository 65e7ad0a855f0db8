//! The exit-code contract and the one line an error is printed as.
//!
//! Every part of leakbench that ends a process, and the tests that check
//! how it ended, take their codes from here: 0 pass, 1 leak, 2 error,
//! 3 inconclusive, 130 interrupted. A leak is a verdict, never an error.
//! [`bisect`] maps them to `git bisect run`'s codes for `run --bisect`.

/// No deciding signal grew: the target came back.
pub const PASS: u8 = 0;
/// A deciding signal grew with the load.
pub const LEAK: u8 = 1;
/// The run could not be carried out: bad input, unreachable target, a
/// target that died, a profile that could not be read.
pub const ERROR: u8 = 2;
/// The evidence supports neither a pass nor a leak.
pub const INCONCLUSIVE: u8 = 3;
/// Stopped by SIGINT or SIGTERM, as shells report death by SIGINT.
pub const INTERRUPTED: u8 = 130;

/// An error and its causes on one line, each cause said once: typed errors
/// here already quote their source in their own message, which `{:#}`
/// would repeat.
pub fn error_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(text.trim()) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(text.trim());
    }
    line
}

/// `run --bisect`: the outcome in `git bisect run`'s terms. Git reads 0 as
/// good, 125 as "cannot test this commit", any other code from 1 to 127 as
/// bad, and anything above 127 as a reason to stop bisecting.
pub mod bisect {
    use crate::exit;

    /// Exit code for "this commit cannot be tested".
    pub const SKIP: u8 = 125;

    /// Maps leakbench's exit code to git's, with the line to print on
    /// stderr when the commit is skipped. A pass is good and a leak is bad;
    /// an inconclusive run or an error says nothing about the commit, so
    /// git skips it; an interrupted run stays 130 and ends the bisection.
    pub fn code(leakbench: u8, why: &str) -> (u8, Option<String>) {
        let what = match leakbench {
            exit::PASS | exit::LEAK | exit::INTERRUPTED => return (leakbench, None),
            exit::INCONCLUSIVE => "the verdict is inconclusive",
            _ => "the run failed",
        };
        let why = if why.is_empty() {
            String::new()
        } else {
            format!(": {why}")
        };
        (
            SKIP,
            Some(format!(
                "leakbench: bisect: skipping this commit (exit {SKIP}), {what}{why}"
            )),
        )
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn pass_is_good_leak_is_bad_and_the_rest_is_skipped_with_a_reason() {
            assert_eq!(code(exit::PASS, ""), (0, None));
            assert_eq!(code(exit::LEAK, "heap grew"), (1, None));
            assert_eq!(code(exit::INTERRUPTED, ""), (130, None));
            let (c, line) = code(exit::INCONCLUSIVE, "goroutines still rising");
            assert_eq!(c, 125);
            let line = line.unwrap();
            assert!(
                line.contains("inconclusive: goroutines still rising"),
                "{line}"
            );
            let (c, line) = code(exit::ERROR, "connection refused");
            assert_eq!(c, 125);
            assert!(line.unwrap().contains("failed: connection refused"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_line_says_each_cause_once() {
        let inner = anyhow::anyhow!("http://127.0.0.1:1/debug/pprof: connection refused");
        let err = inner.context("reading the target during baseline");
        assert_eq!(
            error_line(&err),
            "reading the target during baseline: http://127.0.0.1:1/debug/pprof: connection refused"
        );
        let repeated = anyhow::anyhow!("refused").context("connect: refused");
        assert_eq!(error_line(&repeated), "connect: refused");
    }
}
