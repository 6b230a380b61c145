//! Calls hold no memory once they are done: after a warm-up, thousands more calls through the
//! full stack (every policy, cache off) over stdio leave the process's live heap where it was.
//! Resident memory (what `cargo xtask loadtest soak` watches) also moves with the allocator's
//! own bookkeeping; counting allocated and freed bytes does not.
//!
//! This binary holds a single test, so nothing else allocates meanwhile. It needs the testkit
//! server: `cargo build -p switchboard-testkit` (`cargo xtask test` builds it).

mod support;

use std::{alloc::System, time::Duration};

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use support::{echo_calls, testkit_spec};
use switchboard::Switchboard;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const WARM_UP: usize = 2_000;
const CALLS: usize = 20_000;
/// Net heap growth allowed over `CALLS` calls: one leaked 16-byte allocation per call would be
/// 320 KB.
const MAX_GROWTH: isize = 64 * 1024;
/// Net live allocations allowed over `CALLS` calls (one leaked allocation per call would be
/// 20,000).
const MAX_LIVE: isize = 200;

#[test]
fn finished_calls_leave_the_heap_as_it_was() {
    support::runtime().block_on(async {
        let sb = Switchboard::builder()
            .call_timeout(Duration::from_secs(10))
            .server(testkit_spec())
            .build()
            .await
            .expect("connect");
        // Eight in flight, as an application would.
        echo_calls(&sb, WARM_UP, 8).await;
        let region = Region::new(GLOBAL);
        echo_calls(&sb, CALLS, 8).await;
        let change = region.change();
        // A `realloc` is already counted in the allocated or deallocated bytes.
        let growth = change.bytes_allocated as isize - change.bytes_deallocated as isize;
        let live = change.allocations as isize - change.deallocations as isize;
        eprintln!(
            "over {CALLS} calls: heap {growth:+} bytes, {live:+} live allocations; {change:?}"
        );
        assert!(
            growth < MAX_GROWTH,
            "the heap grew by {growth} bytes over {CALLS} calls ({:.2} bytes per call): {change:?}",
            growth as f64 / CALLS as f64
        );
        assert!(
            live < MAX_LIVE,
            "{live} more allocations are live after {CALLS} calls: {change:?}"
        );
        sb.shutdown().await;
    });
}
