//! When a session ends, in words, computed once in Rust rather than in the template
//! (Tera's `date` filter and arithmetic cost more than the rest of the protected page).
//!
//! The calendar arithmetic is written out (days since the epoch to a civil date) instead of
//! going through `time`'s `OffsetDateTime` and its `Display` impls: this runs on every
//! protected page, and the general-purpose path cost about 10k instructions per request
//! (callgrind, docs/BENCHMARKS.md). A test compares the two over a wide range of moments.

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

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
/// Indexed by days since the epoch modulo 7 (1970-01-01 was a Thursday).
const WEEKDAYS: [&str; 7] = ["Thursday", "Friday", "Saturday", "Sunday", "Monday", "Tuesday", "Wednesday"];

/// Years outside 0..=9999 are shown as the epoch: a session never ends there, and the
/// ISO form stays four digits.
const MIN_SECS: i64 = -62_167_219_200; // 0000-01-01T00:00:00Z
const MAX_SECS: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z

impl When {
    /// `at` (seconds since the epoch) as seen at `now`.
    pub fn new(at: i64, now: i64) -> Self {
        let t = if (MIN_SECS..=MAX_SECS).contains(&at) { at } else { 0 };
        let (days, secs_of_day) = (t.div_euclid(86_400), t.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        let (hour, minute, second) = (secs_of_day / 3600, secs_of_day / 60 % 60, secs_of_day % 60);
        // Values are in range here (checked above), so the narrowing casts cannot wrap.
        let weekday = WEEKDAYS[days.rem_euclid(7) as usize];
        let month_name = MONTHS[(month - 1) as usize];

        let mut iso = String::with_capacity(20);
        push_digits(&mut iso, year, 4);
        iso.push('-');
        push_digits(&mut iso, month, 2);
        iso.push('-');
        push_digits(&mut iso, day, 2);
        iso.push('T');
        push_digits(&mut iso, hour, 2);
        iso.push(':');
        push_digits(&mut iso, minute, 2);
        iso.push(':');
        push_digits(&mut iso, second, 2);
        iso.push('Z');

        let mut text = String::with_capacity(40);
        text.push_str(weekday);
        text.push(' ');
        push_digits(&mut text, day, 1);
        text.push(' ');
        text.push_str(month_name);
        text.push(' ');
        push_digits(&mut text, year, 1);
        text.push_str(", ");
        push_digits(&mut text, hour, 2);
        text.push(':');
        push_digits(&mut text, minute, 2);
        text.push_str(" UTC");

        When { iso, text, relative: relative(at.saturating_sub(now)) }
    }
}

/// Year, month (1-12) and day (1-31) of a day count since 1970-01-01, in the proleptic
/// Gregorian calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // March = 0
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Appends `value` (not negative) in decimal, zero-padded to at least `width` digits.
fn push_digits(out: &mut String, value: i64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut rest = value.unsigned_abs();
    let mut start = digits.len();
    while rest > 0 || digits.len() - start < width.max(1) {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out.extend(digits[start..].iter().map(|&d| char::from(d)));
}

fn push_count(out: &mut String, n: i64, unit: &str) {
    push_digits(out, n, 1);
    out.push(' ');
    out.push_str(unit);
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

    /// The written-out calendar agrees with the `time` crate's, moment for moment, across
    /// leap years, century rules (1900, 2000, 2100), month ends and times of day.
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
        assert_eq!(When::new(i64::MIN, i64::MAX).relative, "now");
    }
}
