//! Our HTML escaper (`web/escape.rs`) and calendar (`web/when.rs`) against the crates that
//! could replace them: `html-escape`'s `encode_quoted_attribute` (the one of its encoders
//! that escapes the same five characters, `& < > " '`, with the same references; its
//! `encode_text` leaves the quotes, which our templates need escaped inside attributes) and
//! the `time` crate's formatting. Tera's own escaper is timed too, for scale.
//!
//! Before timing, each pair is checked to give the same output on the inputs timed.
//!
//! Run: `cargo bench --bench escape_calendar` (figures in docs/BENCHMARKS.md). Timings on a
//! busy machine move by more than the differences measured here, so the binary also runs
//! one candidate in a loop for counting instructions under callgrind:
//! `valgrind --tool=callgrind --callgrind-out-file=/dev/null <bench binary> --count
//! <candidate> <times>` (candidates: see `count`); the count with 0 times is the baseline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, BenchmarkId, Criterion};
use rocket_appid::web::escape::escape_html;
use rocket_appid::web::when::When;
use time::format_description::well_known::Rfc3339;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

/// Tera wants `fn(&str) -> String`, so the crate's `Cow` is turned into a `String` as a
/// replacement would have to.
fn crate_escape(text: &str) -> String {
    html_escape::encode_quoted_attribute(text).into_owned()
}

const NAME: &str = "Alice Example";
const E_MAIL: &str = "alice.example@example.com";
const PARAGRAPH: &str = "You are signed in, and your account has a role that opens this page. After \
    the session ends you are asked to sign in again; signing out ends it now. Roles come from \
    App ID's management API and are read again at most every five minutes, so a role removed \
    there stops working within that time.";
const PARAGRAPH_MARKUP: &str = "You are signed in as \"Alice\" <alice@example.com>, and your \
    account has the roles 'admin' & 'user'. After the session ends you are asked to sign in \
    again; signing out ends it now. <script>alert('not run')</script> Roles removed in App ID \
    stop working within five minutes.";

/// What one protected page passes through the escaper: the header's three `page_id`
/// comparisons (both sides), the signed-in label, e-mail and logout token, and the page's
/// name, e-mail, subject, two roles and the three forms of the session end.
const PROTECTED_PAGE: [&str; 17] = [
    "protected",
    "protected",
    "admin",
    "protected",
    "open",
    "protected",
    "Alice Example",
    "alice.example@example.com",
    "Zq3nV0m3c1Lh8T0kq2Yb4sE9wX7rJ5uP6aD1fG8hK2o",
    "Alice Example",
    "alice.example@example.com",
    "8f14e45f-ceea-467a-9575-bd2a9e8f2c1b",
    "admin",
    "user",
    "2026-11-28T19:47:00Z",
    "Saturday 28 November 2026, 19:47 UTC",
    "in 1 hour 5 minutes",
];

fn escaping(c: &mut Criterion) {
    let inputs = [
        ("name", NAME),
        ("e-mail", E_MAIL),
        ("paragraph", PARAGRAPH),
        ("paragraph with markup", PARAGRAPH_MARKUP),
    ];
    for (_, text) in inputs.iter().chain(&[("tricky", "Zoë <Ärger> 😀&日本 a/b \"x\" 'y'")]) {
        assert_eq!(escape_html(text), crate_escape(text), "{text:?}");
    }
    for text in PROTECTED_PAGE {
        assert_eq!(escape_html(text), crate_escape(text), "{text:?}");
    }

    let mut group = c.benchmark_group("escape");
    group.measurement_time(Duration::from_secs(3));
    for (label, text) in inputs {
        group.bench_with_input(BenchmarkId::new("ours", label), text, |b, t| {
            b.iter(|| escape_html(black_box(t)))
        });
        group.bench_with_input(BenchmarkId::new("html-escape", label), text, |b, t| {
            b.iter(|| crate_escape(black_box(t)))
        });
        group.bench_with_input(BenchmarkId::new("tera", label), text, |b, t| {
            b.iter(|| rocket_dyn_templates::tera::escape_html(black_box(t)))
        });
    }
    let page = "protected page (17 values)";
    group.bench_function(BenchmarkId::new("ours", page), |b| b.iter(|| page_with(escape_html)));
    group.bench_function(BenchmarkId::new("html-escape", page), |b| b.iter(|| page_with(crate_escape)));
    group.bench_function(BenchmarkId::new("tera", page), |b| {
        b.iter(|| page_with(rocket_dyn_templates::tera::escape_html))
    });
    group.finish();
}

/// The session end on the protected page (2026-11-28T19:47:00Z).
const SESSION_END: i64 = 1_795_895_220;

const TEXT: &[BorrowedFormatItem<'static>] =
    format_description!("[weekday] [day padding:none] [month repr:long] [year], [hour]:[minute] UTC");

/// `When`'s machine- and human-readable forms through `time`; the relative part, which
/// `time` does not write, is the same allocation ours makes for a moment that is now.
fn with_time(at: i64) -> (String, String, String) {
    let t = OffsetDateTime::from_unix_timestamp(at).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let iso = t.format(&Rfc3339).unwrap_or_default();
    let text = t.format(TEXT).unwrap_or_default();
    (iso, text, String::from("now"))
}

fn calendar(c: &mut Criterion) {
    // A session end as the protected page shows it, a leap day, a single-digit day.
    let moments = [
        ("2026-11-28T19:47:00Z", SESSION_END),
        ("2028-02-29T00:00:59Z", 1_835_395_259),
        ("2027-03-01T09:05:00Z", 1_803_891_900),
    ];
    for (iso, at) in moments {
        let ours = When::new(at, at);
        assert_eq!(ours.iso, iso);
        assert_eq!((ours.iso, ours.text, ours.relative), with_time(at), "{iso}");
    }

    let mut group = c.benchmark_group("session end");
    group.measurement_time(Duration::from_secs(3));
    for (label, at) in moments {
        group.bench_with_input(BenchmarkId::new("ours", label), &at, |b, &at| {
            b.iter(|| When::new(black_box(at), black_box(at)))
        });
        group.bench_with_input(BenchmarkId::new("time", label), &at, |b, &at| {
            b.iter(|| with_time(black_box(at)))
        });
    }
    group.finish();
}

/// The protected page's values through `escape`, called through a function pointer as Tera
/// calls its escaper.
fn page_with(escape: fn(&str) -> String) -> usize {
    black_box(&PROTECTED_PAGE).iter().map(|t| escape(t).len()).sum()
}

/// Runs one candidate `times` times; see the module comment.
fn count(candidate: &str, times: usize) {
    let once: fn() -> usize = match candidate {
        "escape-ours" => || page_with(escape_html),
        "escape-html-escape" => || page_with(crate_escape),
        "escape-tera" => || page_with(rocket_dyn_templates::tera::escape_html),
        "when-ours" => || When::new(black_box(SESSION_END), black_box(SESSION_END)).text.len(),
        "when-time" => || with_time(black_box(SESSION_END)).1.len(),
        _ => panic!("unknown candidate {candidate}"),
    };
    for _ in 0..times {
        black_box(once());
    }
}

criterion_group!(benches, escaping, calendar);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, candidate, times] = args.as_slice() {
        if flag == "--count" {
            return count(candidate, times.parse().unwrap());
        }
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
