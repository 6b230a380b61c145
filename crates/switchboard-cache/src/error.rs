//! Errors returned by the cache and by second levels.
//!
//! Display texts are lowercase, carry no trailing period and are not a stable
//! API: match on the variants or use the `is_*` predicates instead.

use std::sync::Arc;

/// A boxed error, as returned by loaders and codecs.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a cache call failed.
///
/// The type is cheap to clone: one failed load is delivered to every caller
/// that waited on it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The loader returned an error. The error is not cached.
    #[error("load failed")]
    Load(#[source] Arc<dyn std::error::Error + Send + Sync + 'static>),
    /// The load task ended without a result: the loader panicked, or the
    /// runtime shut down while it ran.
    #[error("load ended without a result")]
    LoadAborted,
    /// The call was made outside a Tokio runtime, so no load task could be
    /// spawned.
    #[error("no tokio runtime is running")]
    NoRuntime,
    /// The second level failed while invalidating.
    #[error("second-level cache failed")]
    SecondLevel(#[source] Arc<SecondLevelError>),
}

impl Error {
    /// True if the loader returned an error.
    pub fn is_load(&self) -> bool {
        matches!(self, Error::Load(_))
    }

    /// True if the load task ended without a result (panic or shutdown).
    pub fn is_load_aborted(&self) -> bool {
        matches!(self, Error::LoadAborted)
    }

    /// True if the second level failed.
    pub fn is_second_level(&self) -> bool {
        matches!(self, Error::SecondLevel(_))
    }

    /// The loader's own error, if this is a load failure. Downcast it to the
    /// loader's error type with [`downcast_ref`](std::error::Error).
    pub fn load_error(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match self {
            Error::Load(error) => Some(error.as_ref()),
            _ => None,
        }
    }
}

/// Why a second-level operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecondLevelError {
    /// The encoded value is larger than the second level accepts; it was not
    /// stored.
    #[error("value of {size} bytes exceeds the second-level limit of {limit} bytes")]
    TooLarge {
        /// Size of the rejected value, in bytes.
        size: usize,
        /// The configured limit, in bytes.
        limit: usize,
    },
    /// A key or value could not be encoded or decoded.
    #[error("second-level codec failed")]
    Codec(#[source] BoxError),
    /// The backend (for example Redis) failed.
    #[error("second-level backend failed")]
    Backend(#[source] BoxError),
}

impl SecondLevelError {
    /// True if the value was rejected for its size.
    pub fn is_too_large(&self) -> bool {
        matches!(self, SecondLevelError::TooLarge { .. })
    }

    /// True if a key or value could not be encoded or decoded.
    pub fn is_codec(&self) -> bool {
        matches!(self, SecondLevelError::Codec(_))
    }

    /// True if the backend failed.
    pub fn is_backend(&self) -> bool {
        matches!(self, SecondLevelError::Backend(_))
    }
}
