//! When a session ends, in words, computed once in Rust rather than in the template
//! (Tera's `date` filter and arithmetic cost more than the rest of the protected page).

use std::fmt::Write;

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

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

/// The human-readable form, `Saturday 28 November 2026, 19:47 UTC`.
const TEXT: &[BorrowedFormatItem<'static>] = format_description!(
    "[weekday] [day padding:none] [month repr:long] [year padding:none], [hour]:[minute] UTC"
);

/// Years outside 0..=9999 are shown as the epoch: a session never ends there, and the
/// ISO form stays four digits.
const MIN_SECS: i64 = -62_167_219_200; // 0000-01-01T00:00:00Z
const MAX_SECS: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z

impl When {
    /// `at` (seconds since the epoch) as seen at `now`.
    pub fn new(at: i64, now: i64) -> Self {
        let shown = if (MIN_SECS..=MAX_SECS).contains(&at) { at } else { 0 };
        // Within four-digit years (checked above) neither the conversion nor the formatting
        // can fail; the fallbacks only keep a provider's value from ever panicking.
        let moment = OffsetDateTime::from_unix_timestamp(shown).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        When {
            iso: moment.format(&Rfc3339).unwrap_or_default(),
            text: moment.format(TEXT).unwrap_or_default(),
            relative: relative(at.saturating_sub(now)),
        }
    }
}

fn push_count(out: &mut String, n: i64, unit: &str) {
    // Writing into a String cannot fail.
    let _ = write!(out, "{n} {unit}");
    if n != 1 {
        out.push('s');
    }
}

fn relative(seconds: i64) -> String {
    let minutes = seconds / 60;
    let (hours, minutes) = (minutes / 60, minutes % 60);
    let mut out = String::with_capacity(24);
    match (seconds, hours, minutes) {
        (s, _, _) if s <= 0 => out.push_str("now"),
        (_, 0, 0) => out.push_str("in less than a minute"),
        (_, h, m) => {
            out.push_str("in ");
            if h > 0 {
                push_count(&mut out, h, "hour");
            }
            if h > 0 && m > 0 {
                out.push(' ');
            }
            if m > 0 {
                push_count(&mut out, m, "minute");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rocket::time::OffsetDateTime;

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
        assert_eq!(relative(119), "in 1 minute");
        assert_eq!(relative(7_200), "in 2 hours");
        assert_eq!(relative(3_660), "in 1 hour 1 minute");
        assert_eq!(relative(90_000), "in 25 hours");
        assert_eq!(relative(-5), "now");
        assert_eq!(relative(0), "now");
    }

    /// The format descriptions agree with the `time` crate's calendar read field by field,
    /// moment for moment, across leap years, century rules (1900, 2000, 2100), month ends
    /// and times of day.
    #[test]
    fn the_calendar_agrees_with_the_time_crate() {
        let mut checked = 0;
        let mut at = -2_208_988_800_i64; // 1900-01-01
        while at < 4_102_444_800 + 86_400 * 400 {
            let when = When::new(at, at);
            let t = OffsetDateTime::from_unix_timestamp(at).unwrap_or(OffsetDateTime::UNIX_EPOCH);
            let (year, month, day) = t.to_calendar_date();
            let (hour, minute, second) = t.to_hms();
            let iso = format!("{year:04}-{:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z", u8::from(month));
            let text = format!("{} {day} {month} {year}, {hour:02}:{minute:02} UTC", t.weekday());
            assert_eq!((when.iso.as_str(), when.text.as_str()), (iso.as_str(), text.as_str()), "at {at}");
            // A step that is not a whole number of days walks through every time of day.
            at += 86_400 + 3_671;
            checked += 1;
        }
        assert!(checked > 50_000, "{checked}");
    }

    #[test]
    fn moments_outside_four_digit_years_are_shown_as_the_epoch() {
        assert_eq!(When::new(i64::MAX, 0).iso, "1970-01-01T00:00:00Z");
        assert_eq!(When::new(i64::MIN, 0).iso, "1970-01-01T00:00:00Z");
        assert_eq!(When::new(MAX_SECS, 0).iso, "9999-12-31T23:59:59Z");
        assert_eq!(When::new(MIN_SECS, 0).iso, "0000-01-01T00:00:00Z");
        // People read a year without leading zeros.
        assert_eq!(When::new(MIN_SECS, 0).text, "Saturday 1 January 0, 00:00 UTC");
        assert_eq!(When::new(i64::MIN, i64::MAX).relative, "now");
    }
}
