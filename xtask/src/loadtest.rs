//! `cargo xtask loadtest [SCENARIO] [OPTIONS]`: builds `switchboard-loadtest` and the testkit
//! server in release mode, then runs the loadtest with the given arguments from the workspace
//! root (so relative paths in configuration files resolve there), pointing it at the release
//! testkit through `SWITCHBOARD_TESTKIT`. Everything else lives in
//! `crates/switchboard-loadtest`; `docs/benchmarks.md` is the manual.

use std::{env, path::PathBuf, process::Command};

use anyhow::{Context, Result, bail};

/// Exit code of `switchboard-loadtest` when a gate failed.
const GATE_FAILED: i32 = 3;

/// Builds and runs the loadtest.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let root = super::workspace_root()?;
    super::run(super::cargo().current_dir(&root).args([
        "build",
        "--release",
        "-p",
        "switchboard-loadtest",
        "-p",
        "switchboard-testkit",
    ]))?;
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                root.join(dir)
            }
        })
        .unwrap_or_else(|| root.join("target"))
        .join("release");
    let loadtest = target.join("switchboard-loadtest");
    let status = Command::new(&loadtest)
        .args(args)
        .current_dir(&root)
        .env("SWITCHBOARD_TESTKIT", target.join("switchboard-testkit"))
        .status()
        .with_context(|| format!("cannot run {}", loadtest.display()))?;
    match status.code() {
        Some(0) => Ok(()),
        Some(GATE_FAILED) => bail!("a loadtest gate failed"),
        _ => bail!("switchboard-loadtest failed ({status})"),
    }
}
