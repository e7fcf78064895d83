//! Heap allocations per request: the guarded bench route against the plain one, counted
//! with dhat's allocator (a separate bench so it does not slow the timing benches).
//!
//! Run: `cargo bench --bench allocations`
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const REQUESTS: u64 = 1_000;

fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (client, session, _idp) = common::app_with_session(&runtime);
    let mut per_request = Vec::new();
    for path in ["/bench/plain", "/bench/guarded", "/noauth_route", "/auth_route"] {
        let before = dhat::HeapStats::get();
        for _ in 0..REQUESTS {
            let response = client.get(path).cookie(session.clone()).dispatch();
            assert_eq!(response.status().code, 200, "{path}");
            response.into_string();
        }
        let after = dhat::HeapStats::get();
        let blocks = (after.total_blocks - before.total_blocks) / REQUESTS;
        let bytes = (after.total_bytes - before.total_bytes) / REQUESTS;
        println!("{path:<16} {blocks:>5} allocations, {bytes:>7} bytes per request");
        per_request.push(blocks);
    }
    println!("guard (guarded - plain): {} allocations per request", per_request[1] - per_request[0]);
}
