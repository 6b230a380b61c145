//! `switchboard-loadtest`: load tests of Switchboard against raw rmcp. See `--help` and
//! `docs/benchmarks.md`; usually run as `cargo xtask loadtest [SCENARIO] [OPTIONS]`.
//!
//! Exit codes: 0 success, 1 error, 2 bad arguments, 3 a gate failed.

use std::process::ExitCode;

use clap::Parser as _;
use switchboard_loadtest::{GATE_FAILED_EXIT_CODE, Options, run, write_outputs};

fn main() -> ExitCode {
    let options = Options::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("switchboard-loadtest: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut report = match runtime.block_on(run(&options)) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("switchboard-loadtest: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    report.command = Some(std::env::args().collect::<Vec<_>>().join(" "));
    print!("{}", report.render());
    if let Err(error) = write_outputs(&report, &options) {
        eprintln!("switchboard-loadtest: {error:#}");
        return ExitCode::FAILURE;
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(GATE_FAILED_EXIT_CODE)
    }
}
