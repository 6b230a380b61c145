//! The one error type of configuration loading: it names the file, the key and the fix.

use std::path::{Path, PathBuf};

/// A configuration file that cannot be read or used.
///
/// The message names the file, the key (a dotted path such as `mcpServers.calc.args[1]`) and
/// what is expected instead. It never contains the value of an `env` or `headers` entry.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read {}: {source}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// What the operating system said.
        source: std::sync::Arc<std::io::Error>,
    },
    /// The file was read but its content is not a valid configuration.
    #[error("{}: {}{message}", file.display(), key_prefix(key))]
    Invalid {
        /// The file.
        file: PathBuf,
        /// The dotted path of the offending key; empty when the error concerns the whole file.
        key: String,
        /// What is wrong and what is expected.
        message: String,
    },
}

impl ConfigError {
    /// The file the error is about.
    pub fn file(&self) -> &Path {
        match self {
            Self::Io { file, .. } | Self::Invalid { file, .. } => file,
        }
    }

    /// The dotted path of the offending key, such as `mcpServers.calc.args[1]`; empty when the
    /// error concerns the whole file.
    pub fn key(&self) -> &str {
        match self {
            Self::Io { .. } => "",
            Self::Invalid { key, .. } => key,
        }
    }

    /// An error about the content of `file` at `key`.
    pub(super) fn invalid(file: &Path, key: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            file: file.to_path_buf(),
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

/// `"KEY: "`, or nothing for whole-file errors.
fn key_prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    }
}
