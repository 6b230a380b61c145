//! A tamper-evident audit log of tool calls and policy decisions, as JSON lines.
//!
//! Every record carries `seq` (1, 2, …), `prev` (the previous record's `hash`) and its own
//! `hash`, the SHA-256 of its canonical JSON including `seq` and `prev`. Editing a line breaks
//! its hash; deleting, inserting or reordering lines breaks the `seq` run or a `prev` link.
//! [`verify`] names the first bad record. Only cutting records off the end goes unnoticed by
//! the chain alone: keep [`VerifySummary::last_hash`] (or the last [`AuditReceipt`])
//! elsewhere to detect that.
//!
//! ```json
//! {"arguments":{"path":"/etc/hosts","token":"[REDACTED]"},"kind":"tool_call","latency_us":1834,"outcome":"ok","prev":"0000…","principal":"alice","seq":1,"server":"files","tool":"read_file","ts":"2026-05-01T12:34:56.789Z","hash":"5f1c…"}
//! ```
//!
//! Sinks: the file (default) and, optionally, a `tracing` event per record with target
//! [`TRACING_TARGET`] and the line in field `record`. Tool arguments are redacted by a
//! [`Redactor`] before they reach any sink.

mod chain;
mod record;
mod redact;
#[cfg(test)]
mod tests;

use std::{
    fs::{File, OpenOptions},
    io::{self, Write as _},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
    time::SystemTime,
};

use serde_json::Value;

pub use chain::{GENESIS, Problem, VerifyError, VerifySummary, verify};
pub use record::{AuditRecord, CallOutcome, Decision};
pub use redact::{DEFAULT_REDACT_KEYS, REDACTED, Redactor};

/// The `tracing` target of the tracing sink.
pub const TRACING_TARGET: &str = "switchboard::audit";

/// Settings of an [`AuditLog`].
///
/// | Field | Default |
/// |---|---|
/// | `file` | `None` (set it, or use [`AuditLog::open`]) |
/// | `tracing` | `false` |
/// | `redact_keys` | [`DEFAULT_REDACT_KEYS`] (`password`, `token`, `secret`, `api_key`, `authorization`, …) |
/// | `fsync` | `false`: each record is written with one `write` and survives a crash of the process; `true` also survives a power loss, at the cost of a disk sync per record |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// The JSON-lines file to append to (created if missing).
    pub file: Option<PathBuf>,
    /// Whether to emit each record as a `tracing` event (target [`TRACING_TARGET`]).
    pub tracing: bool,
    /// Key patterns whose values are redacted in arguments (see [`Redactor`]).
    pub redact_keys: Vec<String>,
    /// Whether to sync the file to disk after each record.
    pub fsync: bool,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            file: None,
            tracing: false,
            redact_keys: DEFAULT_REDACT_KEYS.iter().map(|&k| k.to_owned()).collect(),
            fsync: false,
        }
    }
}

/// Why the audit log could not be opened or appended to.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The configuration has no sink.
    #[error("the audit log has no sink: set `file` or `tracing`")]
    NoSink,
    /// The file could not be opened, read or written.
    #[error("cannot {action} audit log {}", path.display())]
    Io {
        /// `open`, `read` or `append to`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The existing file does not verify; appending would hide the damage.
    #[error(
        "refusing to append to a corrupted audit log (move it aside and keep it as evidence, then start a new one)"
    )]
    Corrupt(#[source] VerifyError),
    /// A write failed earlier and may have left a partial line.
    #[error("the audit log failed earlier ({0}); reopen it to check the file")]
    Failed(String),
}

/// What [`AuditLog::append`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReceipt {
    /// The record's `seq`.
    pub seq: u64,
    /// The record's `hash`, the head of the chain.
    pub hash: String,
}

/// An append-only, hash-chained audit log; cheap to clone and safe to share between tasks.
///
/// Appends are serialized by a mutex and written with one `write` call each (plus a disk sync
/// with `fsync`). One process must own a file at a time.
#[derive(Debug, Clone)]
pub struct AuditLog {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    redactor: Redactor,
    tracing: bool,
    fsync: bool,
    path: Option<PathBuf>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    file: Option<File>,
    seq: u64,
    prev: String,
    failed: Option<String>,
}

impl AuditLog {
    /// Opens (or creates) the audit log file at `path` with the default settings, after
    /// verifying it; appends continue its chain.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, AuditError> {
        Self::open_with(AuditConfig {
            file: Some(path.as_ref().to_owned()),
            ..Default::default()
        })
    }

    /// Opens an audit log as `config` says. An existing file is verified first and refused
    /// with [`AuditError::Corrupt`] if any record is bad.
    pub fn open_with(config: AuditConfig) -> Result<Self, AuditError> {
        let AuditConfig {
            file: path,
            tracing,
            redact_keys,
            fsync,
        } = config;
        if path.is_none() && !tracing {
            return Err(AuditError::NoSink);
        }
        let mut summary = VerifySummary::empty();
        let file = match &path {
            None => None,
            Some(path) => {
                let io = |action, source| AuditError::Io {
                    action,
                    path: path.clone(),
                    source,
                };
                let file = OpenOptions::new()
                    .read(true)
                    .append(true)
                    .create(true)
                    .open(path)
                    .map_err(|source| io("open", source))?;
                summary = chain::scan(path, &file).map_err(|error| match error {
                    VerifyError::Io { source, .. } => io("read", source),
                    corrupt => AuditError::Corrupt(corrupt),
                })?;
                Some(file)
            }
        };
        let state = State {
            file,
            seq: summary.last_seq,
            prev: summary.last_hash,
            failed: None,
        };
        Ok(Self {
            shared: Arc::new(Shared {
                redactor: Redactor::new(&redact_keys),
                tracing,
                fsync,
                path,
                state: Mutex::new(state),
            }),
        })
    }

    /// Redacts, stamps, chains and writes `record`; returns its `seq` and `hash`.
    ///
    /// Blocks for one `write` (and a disk sync with `fsync`); from async code with `fsync` on,
    /// prefer [`append_async`](Self::append_async).
    pub fn append(&self, record: AuditRecord) -> Result<AuditReceipt, AuditError> {
        let shared = &self.shared;
        let mut fields = record.into_fields();
        if let Some(arguments) = fields.get_mut("arguments") {
            shared.redactor.redact(arguments);
        }

        let mut state = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(failure) = &state.failed {
            return Err(AuditError::Failed(failure.clone()));
        }
        let seq = state.seq + 1;
        fields.insert("seq".into(), Value::from(seq));
        fields.insert("prev".into(), Value::from(state.prev.clone()));
        fields.insert("ts".into(), Value::from(record::rfc3339(SystemTime::now())));
        let (mut line, hash) = chain::seal(&fields);
        line.push('\n');

        if let (Some(file), Some(path)) = (state.file.as_mut(), shared.path.as_ref()) {
            let written = file
                .write_all(line.as_bytes())
                .and_then(|()| file.flush())
                .and_then(|()| {
                    if shared.fsync {
                        file.sync_data()
                    } else {
                        Ok(())
                    }
                });
            if let Err(source) = written {
                state.failed = Some(source.to_string());
                return Err(AuditError::Io {
                    action: "append to",
                    path: path.clone(),
                    source,
                });
            }
        }
        state.seq = seq;
        state.prev.clone_from(&hash);
        drop(state);

        if shared.tracing {
            let record = line.trim_end();
            tracing::info!(target: TRACING_TARGET, seq, record, "audit record");
        }
        Ok(AuditReceipt { seq, hash })
    }

    /// [`append`](Self::append) on Tokio's blocking thread pool.
    pub async fn append_async(&self, record: AuditRecord) -> Result<AuditReceipt, AuditError> {
        let log = self.clone();
        tokio::task::spawn_blocking(move || log.append(record))
            .await
            .unwrap_or_else(|join| {
                Err(AuditError::Failed(format!(
                    "the append task did not finish: {join}"
                )))
            })
    }

    /// The `seq` and `hash` of the last record (0 and [`GENESIS`] before the first).
    pub fn head(&self) -> AuditReceipt {
        let state = self
            .shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        AuditReceipt {
            seq: state.seq,
            hash: state.prev.clone(),
        }
    }
}
