//! How `doctor` prints: one line per check with its verdict, the fix under each failure,
//! and the exit status.

use std::process::ExitCode;

/// The verdicts so far; every line is printed as soon as it is known (a slow provider
/// shows where it is slow).
#[derive(Debug, Default)]
pub(super) struct Report {
    failed: usize,
    warned: usize,
}

impl Report {
    /// The check passed.
    pub fn ok(&mut self, check: &str, text: impl AsRef<str>) {
        line("ok", check, text.as_ref());
    }

    /// Not a check: what the provider does, for the operator to know.
    pub fn info(&mut self, check: &str, text: impl AsRef<str>) {
        line("info", check, text.as_ref());
    }

    /// Works, but deserves a look; does not change the exit status.
    pub fn warn(&mut self, check: &str, text: impl AsRef<str>) {
        self.warned += 1;
        line("warn", check, text.as_ref());
    }

    /// Not checked, and why.
    pub fn skip(&mut self, check: &str, text: impl AsRef<str>) {
        line("skip", check, text.as_ref());
    }

    /// The check failed; `fix` says what to do.
    pub fn fail(&mut self, check: &str, text: impl AsRef<str>, fix: impl AsRef<str>) {
        self.failed += 1;
        line("FAIL", check, text.as_ref());
        println!("{:27}fix: {}", "", fix.as_ref());
    }

    /// Prints the summary; success only when no check failed.
    pub fn finish(self) -> ExitCode {
        println!();
        if self.failed == 0 {
            println!("doctor: every check passed ({} warning(s))", self.warned);
            ExitCode::SUCCESS
        } else {
            println!("doctor: {} check(s) failed, {} warning(s)", self.failed, self.warned);
            ExitCode::FAILURE
        }
    }
}

fn line(verdict: &str, check: &str, text: &str) {
    println!("  {verdict:<5} {check:<18} {text}");
}
