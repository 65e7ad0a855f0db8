//! The exit-code contract and the one line an error is printed as.
//!
//! Every part of leakbench that ends a process, and the tests that check
//! how it ended, take their codes from here: 0 pass, 1 leak, 2 error,
//! 3 inconclusive, 130 interrupted. A leak is a verdict, never an error.

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
