//! Server names and tool references.

use std::{borrow::Borrow, fmt, ops::Deref, sync::Arc};

use serde::{Deserialize, Serialize};

/// The configured name of one MCP server, cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ServerName(Arc<str>);

impl ServerName {
    /// Wraps a name.
    pub fn new(name: impl AsRef<str>) -> Self {
        Self(Arc::from(name.as_ref()))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Deref for ServerName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for ServerName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ServerName {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for ServerName {
    fn from(value: String) -> Self {
        Self(Arc::from(value))
    }
}

/// A reference to a tool as a caller writes it: `server.tool`, or a bare `tool`.
///
/// Server names may not contain a dot, so the first dot separates the server from the tool;
/// tool names may contain dots (`github.repos.list` is tool `repos.list` on server `github`,
/// when a server named `github` exists — the catalog resolves the ambiguity).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ToolRef {
    /// The server, when the reference names one.
    pub server: Option<String>,
    /// The tool name.
    pub tool: String,
}

/// A tool reference or server name that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid name {name:?}: {reason}")]
pub struct InvalidName {
    /// The offending text.
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl ToolRef {
    /// Parses `server.tool` or `tool`.
    ///
    /// # Errors
    /// An empty reference, or an empty server or tool part.
    pub fn parse(text: &str) -> Result<Self, InvalidName> {
        let invalid = |reason| InvalidName {
            name: text.to_owned(),
            reason,
        };
        if text.trim().is_empty() {
            return Err(invalid("a tool name cannot be empty"));
        }
        match text.split_once('.') {
            Some(("", _)) => Err(invalid("the server part before '.' is empty")),
            Some((_, "")) => Err(invalid("the tool part after '.' is empty")),
            Some((server, tool)) => Ok(Self {
                server: Some(server.to_owned()),
                tool: tool.to_owned(),
            }),
            None => Ok(Self {
                server: None,
                tool: text.to_owned(),
            }),
        }
    }

    /// The reference as a bare tool name, for when the whole text is the tool's own name.
    pub fn bare(text: &str) -> Self {
        Self {
            server: None,
            tool: text.to_owned(),
        }
    }
}

impl fmt::Display for ToolRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.server {
            Some(server) => write!(f, "{server}.{}", self.tool),
            None => f.write_str(&self.tool),
        }
    }
}

/// Checks that a server name is usable: not empty, no dot, no whitespace or control characters.
///
/// # Errors
/// Says what is wrong with the name.
pub fn validate_server_name(name: &str) -> Result<(), InvalidName> {
    let invalid = |reason| InvalidName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("a server name cannot be empty"));
    }
    if name.contains('.') {
        return Err(invalid(
            "a server name cannot contain '.', which separates server and tool",
        ));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            "a server name cannot contain spaces or control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_qualified_and_bare_names() {
        let r = ToolRef::parse("fs.read_file").expect("valid");
        assert_eq!(r.server.as_deref(), Some("fs"));
        assert_eq!(r.tool, "read_file");
        assert_eq!(r.to_string(), "fs.read_file");
        let r = ToolRef::parse("echo").expect("valid");
        assert_eq!(r.server, None);
        let r = ToolRef::parse("a.b.c").expect("valid");
        assert_eq!(r.tool, "b.c");
    }

    #[test]
    fn rejects_empty_parts() {
        assert!(ToolRef::parse("").is_err());
        assert!(ToolRef::parse(".x").is_err());
        assert!(ToolRef::parse("x.").is_err());
    }

    #[test]
    fn server_names_exclude_dots() {
        assert!(validate_server_name("github").is_ok());
        assert!(validate_server_name("git.hub").is_err());
        assert!(validate_server_name("git hub").is_err());
        assert!(validate_server_name("").is_err());
    }
}
