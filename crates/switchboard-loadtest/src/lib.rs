//! The load generator behind `cargo xtask loadtest`: drives the same workload through a raw
//! rmcp `Peer` and through the full Switchboard stack (`Switchboard::call_with`), alternating
//! in rounds, and reports the throughput ratio, the latency the stack adds, and errors by
//! class. (With `--targets telemetry`, the two targets are Switchboard with telemetry off and
//! on.)
//!
//! Unpublished; the binary `switchboard-loadtest` is its user interface and
//! `docs/benchmarks.md` its manual.
//!
//! - **Load.** Closed loop at a fixed concurrency, or open loop at a target rate with latency
//!   counted from each call's intended start (no coordinated omission), recorded in
//!   HdrHistograms; a warm-up that is not measured; budgets by time or by calls.
//! - **Servers.** Testkit servers over stdio or streamable HTTP, one set per target so the
//!   targets never share a session, or any servers of a configuration file (`--config`).
//! - **Scenarios.** `steady`, `ramp`, `burst`, `soak`, `faults`, `many-servers`, `failover`
//!   (a replica killed under load) and `cache` (hit ratio and coalescing) ([`Scenario`]);
//!   `--targets telemetry` compares Switchboard with telemetry on and off instead of raw rmcp
//!   and Switchboard.
//! - **Output.** A progress bar, summary tables ([`Report::render`]), a JSON report, an SVG or
//!   HTML plot ([`plot`]), and gates that make the process exit with code 3.
//!
//! ```text
//! switchboard-loadtest steady --concurrency 64 --duration 10s --json-out steady.json --plot steady.svg
//! ```

pub mod options;
pub mod plot;
pub mod report;
pub mod scenario;

mod load;
mod otel;
mod progress;
mod record;
mod servers;
mod system;
mod target;

pub use options::{Budget, Options, Scenario, Settings, Targets, Transport};
pub use record::{Bin, Bucket, Percentiles};
pub use report::Report;
pub use scenario::run;
pub use servers::locate_testkit;
pub use system::Machine;
pub use target::TargetKind;

/// Exit code when a gate fails.
pub const GATE_FAILED_EXIT_CODE: u8 = 3;

/// Writes the `--json-out` report and the `--plot` file the options ask for.
///
/// # Errors
/// A file that cannot be written.
pub fn write_outputs(report: &Report, options: &Options) -> anyhow::Result<()> {
    use anyhow::Context as _;
    if let Some(path) = &options.json_out {
        let text = serde_json::to_string_pretty(report)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &options.plot {
        plot::write(report, path)?;
    }
    Ok(())
}
