//! Shared vocabulary of Switchboard.
//!
//! Every other Switchboard crate speaks in these terms:
//!
//! - [`ServerName`] and [`ToolRef`] identify servers and the tools they offer;
//! - [`ErrorClass`] sorts every failure into the classes that later layers use to decide
//!   whether to retry, whether to count a failure against a circuit breaker, and which exit
//!   code a command-line tool returns;
//! - [`Provenance`] and [`Outcome`] say where an answer came from and how long it took.
//!
//! ```
//! use std::time::Duration;
//! use switchboard_core::{ErrorClass, Outcome, Provenance, ServerName, ToolRef};
//!
//! let tool = ToolRef::parse("github.search_issues").expect("a qualified name");
//! assert_eq!(tool.server.as_deref(), Some("github"));
//! assert_eq!(tool.tool, "search_issues");
//!
//! let answer = Outcome::new("42", Provenance::new(ServerName::new("calc"), Duration::from_millis(3)));
//! assert_eq!(answer.provenance.server.as_str(), "calc");
//! assert!(ErrorClass::Timeout.is_transient());
//! assert!(!ErrorClass::ToolError.counts_as_failure());
//! ```

mod error;
mod name;
mod outcome;

pub use error::ErrorClass;
pub use name::{InvalidName, ServerName, ToolRef, validate_server_name};
pub use outcome::{Outcome, Provenance};
