//! The numeric settings as a table: one row per setting with its bounds and default, checked
//! by one loop in `validate`.

use super::problems::ConfigProblems;
use super::settings::RawSettings;

/// Upper bound of `session_max_chunks`: 8 cookies of under 4 KB each already make a
/// `Cookie` header of about 32 KB, more than many proxies accept.
pub const MAX_SESSION_CHUNKS: usize = 8;
/// Upper bound of `login_max_pending` (the entries share one cookie of under 4 KB anyway).
pub const MAX_PENDING_LOGINS: usize = 8;

/// How a setting's bounds are written in its problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unit {
    /// "must be between 1 and 100"
    Count,
    /// "must be between 1 and 120 seconds", or "must be at most 300 seconds" from 0.
    Seconds,
    /// Seconds, with a whole number of days as the upper bound: "must be between 60 seconds
    /// and 7 days".
    SecondsUpToDays,
}

/// One numeric setting, as `check` sees it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limit {
    /// The environment variable, which names the setting in the problem report.
    pub env: &'static str,
    pub min: u64,
    pub max: u64,
    pub unit: Unit,
    /// The setting's value in `raw`.
    pub value: fn(&RawSettings) -> u64,
}

use Unit::{Count, Seconds, SecondsUpToDays};

const WEEK: u64 = 7 * 24 * 3600;

/// A setting's value for the comparison with its bounds. A count too large for `u64`
/// cannot occur, and would fail its range check rather than wrap.
fn widen<T: TryInto<u64>>(value: T) -> u64 {
    value.try_into().unwrap_or(u64::MAX)
}

/// Declares the tables from rows `field: type, "VARIABLE", min, max, default, unit;`, and
/// from the same rows the defaults `RawSettings::default` uses ([`DEFAULTS`]), so a
/// default is written once, next to its bounds.
macro_rules! numeric_settings {
    ($($(#[$doc:meta])* $table:ident: [$($field:ident: $ty:ty, $env:literal, $min:expr, $max:expr, $default:expr, $unit:ident;)*])*) => {
        $(
            $(#[$doc])*
            pub(super) const $table: &[Limit] = &[$(
                Limit { env: $env, min: $min, max: $max, unit: $unit, value: |raw| widen(raw.$field) },
            )*];
        )*

        /// The defaults of the numeric settings, for `RawSettings::default`.
        pub(super) struct Defaults {
            $($(pub $field: $ty,)*)*
        }

        pub(super) const DEFAULTS: Defaults = Defaults { $($($field: $default,)*)* };

        /// Every row's variable and default, for the tests.
        #[cfg(test)]
        const ROW_DEFAULTS: &[(&str, u64)] = &[$($(($env, $default),)*)*];
    };
}

numeric_settings! {
    /// Outbound calls, tokens and the session's lifetime, in the order problems are reported.
    CALL_AND_TOKEN_LIMITS: [
        // field (Rocket.toml key)    type   environment variable             min  max     default   unit
        connect_timeout_secs:         u64,   "APPID_CONNECT_TIMEOUT_SECS",    1,   120,    3,        Seconds;
        request_timeout_secs:         u64,   "APPID_REQUEST_TIMEOUT_SECS",    1,   120,    5,        Seconds;
        token_timeout_secs:           u64,   "APPID_TOKEN_TIMEOUT_SECS",      1,   120,    10,       Seconds;
        introspection_ttl_secs:       u64,   "APPID_INTROSPECTION_TTL_SECS",  1,   3600,   60,       Seconds;
        roles_ttl_secs:               u64,   "APPID_ROLES_TTL_SECS",          1,   86_400, 300,      Seconds;
        outage_window_secs:           u64,   "APPID_OUTAGE_WINDOW_SECS",      0,   86_400, 900,      Seconds;
        breaker_failures:             u32,   "APPID_BREAKER_FAILURES",        1,   100,    5,        Count;
        breaker_open_secs:            u64,   "APPID_BREAKER_OPEN_SECS",       1,   600,    30,       Seconds;
        token_calls_per_sec:          u32,   "APPID_TOKEN_CALLS_PER_SEC",     1,   1000,   20,       Count;
        max_concurrent_calls:         usize, "APPID_MAX_CONCURRENT_CALLS",    1,   10_000, 64,       Count;
        clock_leeway_secs:            u64,   "APPID_CLOCK_LEEWAY_SECS",       0,   300,    60,       Seconds;
        session_max_age_secs:         u64,   "APPID_SESSION_MAX_AGE_SECS",    60,  WEEK,   8 * 3600, SecondsUpToDays;
        refresh_window_secs:          u64,   "APPID_REFRESH_WINDOW_SECS",     0,   600,    60,       Seconds;
        refresh_grace_secs:           u64,   "APPID_REFRESH_GRACE_SECS",      1,   300,    30,       Seconds;
    ]

    /// The session as the browser holds it, in the order problems are reported; a table of
    /// its own because the report lists the post-logout URL between the two. An idle timeout
    /// at or above the absolute lifetime is allowed: it simply never ends a session first.
    BROWSER_SESSION_LIMITS: [
        // field (Rocket.toml key)    type   environment variable             min  max                        default  unit
        session_idle_secs:            u64,   "APPID_SESSION_IDLE_SECS",       60,  WEEK,                      30 * 60, SecondsUpToDays;
        session_max_chunks:           usize, "APPID_SESSION_MAX_CHUNKS",      1,   MAX_SESSION_CHUNKS as u64, 4,       Count;
        login_max_pending:            usize, "APPID_LOGIN_MAX_PENDING",       1,   MAX_PENDING_LOGINS as u64, 4,       Count;
        sign_in_per_minute:           u32,   "APPID_SIGN_IN_PER_MINUTE",      1,   10_000,                    10,      Count;
        trusted_proxies:              usize, "APPID_TRUSTED_PROXIES",         0,   10,                        0,       Count;
    ]
}

impl Limit {
    /// What the report says when the value is out of bounds.
    pub(super) fn problem(&self) -> String {
        match self.unit {
            Count => format!("must be between {} and {}", self.min, self.max),
            Seconds if self.min == 0 => format!("must be at most {} seconds", self.max),
            Seconds => format!("must be between {} and {} seconds", self.min, self.max),
            SecondsUpToDays => format!("must be between {} seconds and {} days", self.min, self.max / 86_400),
        }
    }
}

/// Records a problem for every setting of `table` outside its bounds, in table order.
pub(super) fn check(table: &[Limit], raw: &RawSettings, problems: &mut ConfigProblems) {
    for limit in table {
        if !(limit.min..=limit.max).contains(&(limit.value)(raw)) {
            problems.push(limit.env, limit.problem());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> impl Iterator<Item = &'static Limit> {
        CALL_AND_TOKEN_LIMITS.iter().chain(BROWSER_SESSION_LIMITS)
    }

    #[test]
    fn the_settings_defaults_are_the_tables_and_within_bounds() {
        let defaults = RawSettings::default();
        let rows: Vec<(&str, u64)> = all().map(|l| (l.env, (l.value)(&defaults))).collect();
        assert_eq!(rows, ROW_DEFAULTS);
        for limit in all() {
            assert!((limit.min..=limit.max).contains(&(limit.value)(&defaults)), "{}", limit.env);
        }
    }

    #[test]
    fn bounds_told_in_days_are_whole_days() {
        for limit in all().filter(|l| l.unit == SecondsUpToDays) {
            assert_eq!(limit.max % 86_400, 0, "{}", limit.env);
        }
    }

    /// The texts operators have seen, word for word.
    #[test]
    fn the_problems_read_as_before() {
        let texts: Vec<(&str, String)> = all().map(|l| (l.env, l.problem())).collect();
        let expected = [
            ("APPID_CONNECT_TIMEOUT_SECS", "must be between 1 and 120 seconds"),
            ("APPID_REQUEST_TIMEOUT_SECS", "must be between 1 and 120 seconds"),
            ("APPID_TOKEN_TIMEOUT_SECS", "must be between 1 and 120 seconds"),
            ("APPID_INTROSPECTION_TTL_SECS", "must be between 1 and 3600 seconds"),
            ("APPID_ROLES_TTL_SECS", "must be between 1 and 86400 seconds"),
            ("APPID_OUTAGE_WINDOW_SECS", "must be at most 86400 seconds"),
            ("APPID_BREAKER_FAILURES", "must be between 1 and 100"),
            ("APPID_BREAKER_OPEN_SECS", "must be between 1 and 600 seconds"),
            ("APPID_TOKEN_CALLS_PER_SEC", "must be between 1 and 1000"),
            ("APPID_MAX_CONCURRENT_CALLS", "must be between 1 and 10000"),
            ("APPID_CLOCK_LEEWAY_SECS", "must be at most 300 seconds"),
            ("APPID_SESSION_MAX_AGE_SECS", "must be between 60 seconds and 7 days"),
            ("APPID_REFRESH_WINDOW_SECS", "must be at most 600 seconds"),
            ("APPID_REFRESH_GRACE_SECS", "must be between 1 and 300 seconds"),
            ("APPID_SESSION_IDLE_SECS", "must be between 60 seconds and 7 days"),
            ("APPID_SESSION_MAX_CHUNKS", "must be between 1 and 8"),
            ("APPID_LOGIN_MAX_PENDING", "must be between 1 and 8"),
            ("APPID_SIGN_IN_PER_MINUTE", "must be between 1 and 10000"),
            ("APPID_TRUSTED_PROXIES", "must be between 0 and 10"),
        ];
        assert_eq!(texts, expected.map(|(env, what)| (env, what.to_string())));
    }
}
