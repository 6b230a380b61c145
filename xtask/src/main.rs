//! Project automation, run as `cargo xtask <task>`.
//!
//! - `cargo xtask test [-- CARGO_TEST_ARGS]`: installs what the test suite needs on a fresh
//!   machine (reference MCP servers from npm and PyPI into the ignored `.cache/` folder, Debian
//!   packages through apt when running as root), builds the workspace binaries, then runs
//!   `cargo test --workspace` with `SWITCHBOARD_REFSERVERS` pointing at the installed servers.
//! - `cargo xtask setup`: only the installation step.
//! - `cargo xtask demo`: builds the testkit server and `mcpctl`, then calls a tool through the
//!   demo configuration in `examples/demo.json`.
//! - `cargo xtask conformance`: runs the official MCP conformance suite (client mode, spec
//!   versions 2025-11-25 and 2026-07-28) against `switchboard-conformance`.

use std::{
    env,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use anyhow::{Context, Result, bail};

mod conformance;
mod discovery_eval;
mod loadtest;

/// npm packages the end-to-end tests run (pinned; reference servers).
const NPM_PACKAGES: &[&str] = &[
    "@modelcontextprotocol/server-everything@2026.8.31",
    "@modelcontextprotocol/server-filesystem@2026.8.31",
    "@modelcontextprotocol/server-memory@2026.8.31",
];

/// PyPI packages the end-to-end tests run (pinned; reference servers).
const PYPI_PACKAGES: &[&str] = &["mcp-server-time==2026.10.19", "mcp-server-git==2026.10.19"];

/// Debian packages the test suite needs (real services for distributed features).
const DEBIAN_PACKAGES: &[&str] = &["redis-server", "prometheus"];

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("setup") => setup().map(|_| ()),
        Some("demo") => demo(),
        Some("conformance") => workspace_root().and_then(|root| conformance::conformance(&root)),
        Some("discovery-eval") => discovery_eval::run(&args[1..]),
        Some("loadtest") => loadtest::run(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <task>\n\n\
                 tasks:\n  \
                 test [-- ARGS]   install test dependencies, then run the whole test suite\n  \
                 setup            install test dependencies only (into .cache/)\n  \
                 demo             call a tool on the testkit server through mcpctl\n  \
                 discovery-eval   tool-discovery recall and nDCG on ToolRet (shared/toolret)\n  \
                 loadtest [ARGS]  load tests, Switchboard against raw rmcp (docs/benchmarks.md)\n  \
                 conformance      the official MCP conformance suite against Switchboard's client"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> Result<PathBuf> {
    let manifest = env::var("CARGO_MANIFEST_DIR").context("run me through `cargo xtask`")?;
    Path::new(&manifest)
        .parent()
        .map(Path::to_owned)
        .context("xtask lives one level below the workspace root")
}

fn run(command: &mut Command) -> Result<()> {
    let shown = format!("{command:?}");
    let status = command
        .status()
        .with_context(|| format!("cannot run {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
}

/// Installs the test dependencies; returns the reference-server folder.
fn setup() -> Result<PathBuf> {
    let root = workspace_root()?;
    let dir = root.join(".cache/refservers");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    install_debian()?;
    install_npm(&dir.join("npm"))?;
    install_pypi(&dir.join("py"))?;
    Ok(dir)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn install_debian() -> Result<()> {
    let missing: Vec<&str> = DEBIAN_PACKAGES
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "the tests need Debian packages {}: run `sudo apt-get install -y {}` once, then again `cargo xtask test`",
            missing.join(", "),
            missing.join(" ")
        );
    }
    eprintln!("xtask: installing Debian packages {}", missing.join(", "));
    run(Command::new("apt-get").arg("update").arg("-q"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    // The tests start their own instances on free loopback ports; a system service is not needed.
    let _ = Command::new("service")
        .args(["redis-server", "stop"])
        .status();
    Ok(())
}

fn stamp_matches(stamp: &Path, wanted: &str) -> bool {
    std::fs::read_to_string(stamp).is_ok_and(|s| s == wanted)
}

fn install_npm(dir: &Path) -> Result<()> {
    let wanted = NPM_PACKAGES.join("\n");
    let stamp = dir.join(".installed");
    if stamp_matches(&stamp, &wanted) {
        return Ok(());
    }
    eprintln!("xtask: installing npm packages into {}", dir.display());
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
        .args(NPM_PACKAGES))
    .context("npm is needed for the reference servers (Debian package `npm`)")?;
    std::fs::write(stamp, wanted)?;
    Ok(())
}

fn install_pypi(dir: &Path) -> Result<()> {
    let wanted = PYPI_PACKAGES.join("\n");
    let stamp = dir.join(".installed");
    if stamp_matches(&stamp, &wanted) {
        return Ok(());
    }
    eprintln!("xtask: installing PyPI packages into {}", dir.display());
    run(Command::new("python3").args(["-m", "venv"]).arg(dir))
        .context("python3 with venv is needed for the Python reference servers")?;
    run(Command::new(dir.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(PYPI_PACKAGES))?;
    std::fs::write(stamp, wanted)?;
    Ok(())
}

fn test(extra: &[String]) -> Result<()> {
    let refservers = setup()?;
    let root = workspace_root()?;
    // The end-to-end tests start the binaries, so build them first.
    run(cargo()
        .current_dir(&root)
        .args(["build", "--workspace", "--bins"]))?;
    let extra: Vec<&String> = extra.iter().skip_while(|a| *a == "--").collect();
    run(cargo()
        .current_dir(&root)
        .args(["test", "--workspace", "--all-features"])
        .args(extra)
        .env("SWITCHBOARD_REFSERVERS", &refservers))
}

fn demo() -> Result<()> {
    let root = workspace_root()?;
    run(cargo().current_dir(&root).args([
        "build",
        "-q",
        "-p",
        "switchboard-testkit",
        "-p",
        "mcpctl",
    ]))?;
    let bin = root.join("target/debug");
    let path = format!("{}:{}", bin.display(), env::var("PATH").unwrap_or_default());
    let config = root.join("examples/demo.json");
    for args in [
        vec!["servers"],
        vec!["tools"],
        vec!["call", "testkit.add", "a=2", "b=40"],
    ] {
        eprintln!("$ mcpctl --config examples/demo.json {}", args.join(" "));
        run(Command::new(bin.join("mcpctl"))
            .arg("--config")
            .arg(&config)
            .args(&args)
            .env("PATH", &path))?;
    }
    Ok(())
}
