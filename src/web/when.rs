//! When a session ends, in words, computed once in Rust rather than in the template
//! (Tera's `date` filter and arithmetic cost more than the rest of the protected page).

use rocket::time::OffsetDateTime;
use serde::Serialize;

/// A moment for display: machine-readable, human-readable, and relative to now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct When {
    /// `2026-11-28T19:47:00Z`, for `<time datetime>`.
    pub iso: String,
    /// `Saturday 28 November 2026, 19:47 UTC`.
    pub text: String,
    /// `in 1 hour 5 minutes`, `in 3 minutes`, `in less than a minute`, or `now`.
    pub relative: String,
}

impl When {
    /// `at` (seconds since the epoch) as seen at `now`.
    pub fn new(at: i64, now: i64) -> Self {
        use std::fmt::Write;
        let t = OffsetDateTime::from_unix_timestamp(at).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        // Calendar date and time of day computed once each (every `t.year()`, `t.day()`
        // ... call converts from the Julian day again); written into sized buffers. This
        // runs on every protected page.
        let (year, month, day) = t.to_calendar_date();
        let (hour, minute, second) = t.to_hms();
        let mut iso = String::with_capacity(20);
        let _ = write!(iso, "{year:04}-{:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z", u8::from(month));
        let mut text = String::with_capacity(40);
        let _ = write!(text, "{} {day} {month} {year}, {hour:02}:{minute:02} UTC", t.weekday());
        When { iso, text, relative: relative(at - now) }
    }
}

fn plural(n: i64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

fn relative(seconds: i64) -> String {
    let minutes = seconds / 60;
    let (hours, minutes) = (minutes / 60, minutes % 60);
    match (seconds, hours, minutes) {
        (s, _, _) if s <= 0 => "now".to_string(),
        (_, 0, 0) => "in less than a minute".to_string(),
        (_, 0, m) => format!("in {}", plural(m, "minute")),
        (_, h, 0) => format!("in {}", plural(h, "hour")),
        (_, h, m) => format!("in {} {}", plural(h, "hour"), plural(m, "minute")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moment_is_written_for_people_and_machines() {
        // 2026-11-28T19:47:00Z
        let when = When::new(1_795_895_220, 1_795_895_220 - 3_900);
        assert_eq!(when.iso, "2026-11-28T19:47:00Z");
        assert_eq!(when.text, "Saturday 28 November 2026, 19:47 UTC");
        assert_eq!(when.relative, "in 1 hour 5 minutes");
    }

    #[test]
    fn relative_times_read_naturally() {
        assert_eq!(relative(30), "in less than a minute");
        assert_eq!(relative(60), "in 1 minute");
        assert_eq!(relative(7_200), "in 2 hours");
        assert_eq!(relative(-5), "now");
    }
}
