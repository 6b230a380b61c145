//! Hot reload: the server list can change while the application runs.
//!
//! A [`LiveSwitchboard`] holds the current [`Switchboard`]. [`LiveSwitchboard::reload`] builds a
//! new one from a new configuration — servers whose settings did not change keep their live
//! connection (no reconnect), added servers connect, changed servers get a new connection — and
//! swaps it in. Calls already running keep the switchboard they started on (each holds a clone),
//! so nothing in flight is lost: the old switchboard's removed and changed servers are closed
//! only when its last call has finished (or after `drain_timeout`).
//! [`LiveSwitchboard::watch_file`] reloads whenever the configuration file changes.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, PoisonError, RwLock, atomic::Ordering},
    time::{Duration, SystemTime},
};

use serde::Serialize;
use switchboard_telemetry::Telemetry;

use crate::{Error, Switchboard, config::Config};

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReloadReport {
    /// Servers that were added.
    pub added: Vec<String>,
    /// Servers that were removed (closed once their calls finish).
    pub removed: Vec<String>,
    /// Servers whose settings changed (reconnected).
    pub changed: Vec<String>,
    /// Servers kept as they were, connection included.
    pub kept: Vec<String>,
}

/// A switchboard whose configuration can be replaced while it runs.
#[derive(Debug, Clone)]
pub struct LiveSwitchboard {
    current: Arc<RwLock<Switchboard>>,
    telemetry: Option<Telemetry>,
    /// The longest a replaced switchboard waits for its calls before closing its servers.
    drain_timeout: Duration,
}

impl LiveSwitchboard {
    /// Starts from a switchboard built from `config`; `telemetry` is used for every switchboard
    /// built on reload too.
    ///
    /// # Errors
    /// See [`Switchboard::connect`].
    pub async fn start(config: Config, telemetry: Option<Telemetry>) -> Result<Self, Error> {
        let drain_timeout = drain_timeout(&config);
        let switchboard = Switchboard::connect_with(config, telemetry.clone()).await?;
        Ok(Self {
            current: Arc::new(RwLock::new(switchboard)),
            telemetry,
            drain_timeout,
        })
    }

    /// The current switchboard. Calls made on it finish on it even if a reload happens
    /// meanwhile.
    pub fn get(&self) -> Switchboard {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the configuration.
    ///
    /// # Errors
    /// The new configuration cannot be used (the old one stays in force).
    pub async fn reload(&self, config: Config) -> Result<ReloadReport, Error> {
        let old = self.get();
        let old_specs: HashMap<_, _> = old
            .inner
            .servers
            .iter()
            .map(|s| (s.config.spec.name.clone(), s))
            .collect();
        let mut report = ReloadReport::default();
        let mut reuse = HashMap::new();
        for server in &config.servers {
            match old_specs.get(&server.spec.name) {
                Some(slot)
                    if slot.config.spec == server.spec
                        && slot.config.disabled == server.disabled =>
                {
                    if let Some(connection) = &slot.connection {
                        reuse.insert(server.spec.name.clone(), connection.clone());
                    }
                    report.kept.push(server.spec.name.to_string());
                }
                Some(_) => report.changed.push(server.spec.name.to_string()),
                None => report.added.push(server.spec.name.to_string()),
            }
        }
        for name in old_specs.keys() {
            if !config.servers.iter().any(|s| &s.spec.name == name) {
                report.removed.push(name.to_string());
            }
        }
        let handed_over: Vec<_> = reuse.keys().cloned().collect();
        let drain_timeout = drain_timeout(&config);
        let new = Switchboard::connect_reusing(config, self.telemetry.clone(), reuse).await?;
        for slot in &old.inner.servers {
            if handed_over.contains(&slot.config.spec.name) {
                slot.handed_over.store(true, Ordering::Release);
            }
        }
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = new;
        tracing::info!(
            added = ?report.added, removed = ?report.removed, changed = ?report.changed,
            "configuration reloaded"
        );
        tokio::spawn(drain(old, drain_timeout.max(self.drain_timeout)));
        Ok(report)
    }

    /// Reloads from `path` whenever its modification time changes, checking every `interval`,
    /// until the returned task is aborted. A file that does not load is reported and the
    /// configuration in force stays.
    pub fn watch_file(&self, path: PathBuf, interval: Duration) -> tokio::task::JoinHandle<()> {
        let live = self.clone();
        tokio::spawn(async move {
            let mut seen = modified(&path);
            loop {
                tokio::time::sleep(interval).await;
                let now = modified(&path);
                if now == seen {
                    continue;
                }
                seen = now;
                match Config::load(&path) {
                    Ok(config) => {
                        if let Err(error) = live.reload(config).await {
                            tracing::error!(%error, "reload failed; the old configuration stays");
                        }
                    }
                    Err(error) => {
                        tracing::error!(%error, "the changed configuration does not load; the old one stays");
                    }
                }
            }
        })
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// How long a replaced switchboard may take to finish its calls: the longest call deadline.
fn drain_timeout(config: &Config) -> Duration {
    config
        .servers
        .iter()
        .filter_map(|s| s.call_timeout)
        .chain(std::iter::once(config.defaults.call_timeout))
        .max()
        .unwrap_or(Duration::from_secs(60))
}

/// Waits until every call on `old` has finished (no other clone of it is alive), then closes
/// the servers it did not hand over.
async fn drain(old: Switchboard, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    while Arc::strong_count(&old.inner) > 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let closing: Vec<_> = old
        .inner
        .servers
        .iter()
        .filter(|s| !s.handed_over.load(Ordering::Acquire))
        .filter_map(|s| s.connection.clone())
        .collect();
    futures::future::join_all(closing.iter().map(|c| c.shutdown())).await;
}
