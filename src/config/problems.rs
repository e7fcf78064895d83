//! The report of a configuration that cannot start the app: every problem at once, each
//! named by the environment variable an operator would set, never repeating a value.

use std::fmt;

/// One configuration problem: the setting's name (as the environment variable
/// an operator would set) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub name: &'static str,
    pub what: String,
}

/// All problems found, in a stable order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigProblems(pub Vec<Problem>);

impl ConfigProblems {
    /// Records a problem.
    pub fn push(&mut self, name: &'static str, what: impl Into<String>) {
        self.0.push(Problem { name, what: what.into() });
    }

    /// The names of the settings with problems.
    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|p| p.name).collect()
    }
}

impl fmt::Display for ConfigProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "App ID configuration is incomplete or invalid ({} problem(s)):", self.0.len())?;
        for p in &self.0 {
            writeln!(f, "  - {}: {}", p.name, p.what)?;
        }
        write!(
            f,
            "Set them as environment variables or under [<profile>.appid] in Rocket.toml (see README.md)."
        )
    }
}
