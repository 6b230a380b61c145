//! Reading typed values out of a parsed file, with errors that name the file and the key.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use switchboard_transport::ProtocolMode;

use super::{
    ConfigError, Format, duration,
    expand::{self, Lookup},
    node::{self, Node},
};

/// The file being read and what reading it needs.
pub(super) struct Ctx<'a> {
    /// The file, for messages.
    pub(super) file: &'a Path,
    /// Its directory, against which relative paths are resolved.
    pub(super) dir: PathBuf,
    /// Its directory, or the project directory for a file in `.vscode/`: `${workspaceFolder}`.
    pub(super) workspace: PathBuf,
    /// Its format.
    pub(super) format: Format,
    /// Where variables are looked up.
    pub(super) env: Lookup<'a>,
}

impl<'a> Ctx<'a> {
    /// A context for `file`.
    pub(super) fn new(file: &'a Path, format: Format, env: Lookup<'a>) -> Self {
        let dir = match file.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let workspace = match dir.parent() {
            Some(parent) if dir.file_name().is_some_and(|n| n == ".vscode") => {
                if parent.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    parent.to_path_buf()
                }
            }
            _ => dir.clone(),
        };
        Self {
            file,
            dir,
            workspace,
            format,
            env,
        }
    }

    /// An error about `key`.
    pub(super) fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::invalid(self.file, key, message)
    }

    /// "expected X, found Y".
    pub(super) fn expected(&self, key: &str, what: &str, found: &Node) -> ConfigError {
        let found = found.kind(self.format == Format::Json);
        self.error(key, format!("expected {what}, found {found}"))
    }

    /// The name of a table for messages: "an object" in JSON, "a table" in TOML.
    fn table_word(&self) -> &'static str {
        match self.format {
            Format::Json => "an object",
            Format::Toml => "a table",
        }
    }

    /// The entries of a table.
    pub(super) fn table<'n>(
        &self,
        key: &str,
        node: &'n Node,
    ) -> Result<&'n [(String, Node)], ConfigError> {
        match node {
            Node::Table(entries) => Ok(entries),
            other => Err(self.expected(key, self.table_word(), other)),
        }
    }

    /// A string, as written.
    pub(super) fn string<'n>(&self, key: &str, node: &'n Node) -> Result<&'n str, ConfigError> {
        match node {
            Node::Str(text) => Ok(text),
            other => Err(self.expected(key, "a string", other)),
        }
    }

    /// A boolean.
    pub(super) fn boolean(&self, key: &str, node: &Node) -> Result<bool, ConfigError> {
        match node {
            Node::Bool(value) => Ok(*value),
            other => Err(self.expected(key, "true or false", other)),
        }
    }

    /// A whole number of at least `min`.
    pub(super) fn count(&self, key: &str, node: &Node, min: u32) -> Result<u32, ConfigError> {
        self.whole(key, node, min.into())
    }

    /// A whole number of at least `min`, for quantities that may exceed `u32` (bytes).
    pub(super) fn size(&self, key: &str, node: &Node, min: u64) -> Result<u64, ConfigError> {
        self.whole(key, node, min.into())
    }

    /// A whole number of at least `min` that fits `T`.
    fn whole<T: TryFrom<i128>>(&self, key: &str, node: &Node, min: i128) -> Result<T, ConfigError> {
        match node {
            Node::Int(value) if *value >= min => {
                T::try_from(*value).map_err(|_| self.error(key, format!("{value} is too large")))
            }
            Node::Int(value) => Err(self.error(
                key,
                format!("expected a whole number of at least {min}, found {value}"),
            )),
            other => Err(self.expected(key, "a whole number", other)),
        }
    }

    /// A number from 0 to 1 (a share or a rate); with `zero_allowed` false, 0 is refused too.
    /// Whole numbers (`1`) are accepted.
    pub(super) fn fraction(
        &self,
        key: &str,
        node: &Node,
        zero_allowed: bool,
    ) -> Result<f64, ConfigError> {
        let range = if zero_allowed {
            "a number from 0 to 1"
        } else {
            "a number greater than 0 and at most 1"
        };
        let (value, shown) = match node {
            Node::Float(value) => (*value, value.to_string()),
            // Precision loss is harmless: only 0 and 1 are in range.
            Node::Int(value) => (*value as f64, value.to_string()),
            other => return Err(self.expected(key, range, other)),
        };
        let low_ok = if zero_allowed {
            value >= 0.0
        } else {
            value > 0.0
        };
        if low_ok && value <= 1.0 {
            Ok(value)
        } else {
            Err(self.error(key, format!("expected {range}, found {shown}")))
        }
    }

    /// A string with its `${...}` references expanded.
    pub(super) fn expanded(&self, key: &str, node: &Node) -> Result<String, ConfigError> {
        let text = self.string(key, node)?;
        expand::expand(text, self.env, &self.workspace).map_err(|message| self.error(key, message))
    }

    /// An array of strings, each expanded.
    pub(super) fn expanded_list(&self, key: &str, node: &Node) -> Result<Vec<String>, ConfigError> {
        let Node::Array(items) = node else {
            return Err(self.expected(key, "an array of strings", node));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| self.expanded(&node::item(key, i), item))
            .collect()
    }

    /// A table of strings (`env`, `headers`), each value expanded.
    pub(super) fn expanded_map(
        &self,
        key: &str,
        node: &Node,
    ) -> Result<BTreeMap<String, String>, ConfigError> {
        let mut map = BTreeMap::new();
        for (name, value) in self.table(key, node)? {
            let path = node::child(key, name);
            if name.is_empty() {
                return Err(self.error(&path, "a name cannot be empty"));
            }
            map.insert(name.clone(), self.expanded(&path, value)?);
        }
        Ok(map)
    }

    /// An array of tool-name patterns (`include_tools`, `excludeTools`).
    pub(super) fn patterns(&self, key: &str, node: &Node) -> Result<Vec<String>, ConfigError> {
        let Node::Array(items) = node else {
            return Err(self.expected(key, "an array of tool names", node));
        };
        let mut patterns = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let path = node::item(key, i);
            let pattern = self.string(&path, item)?;
            if pattern.is_empty() {
                return Err(self.error(&path, "a tool name pattern cannot be empty"));
            }
            patterns.push(pattern.to_owned());
        }
        Ok(patterns)
    }

    /// A duration string of Switchboard's own keys; numbers are refused because their unit
    /// would be a guess.
    pub(super) fn duration(&self, key: &str, node: &Node) -> Result<Duration, ConfigError> {
        match node {
            Node::Str(text) => duration::parse(text).ok_or_else(|| {
                self.error(
                    key,
                    format!("invalid duration {text:?}; {}", duration::EXPECTED),
                )
            }),
            Node::Int(value) => Err(self.error(
                key,
                format!(
                    "expected a duration string such as \"30s\", found the number {value}; {}",
                    duration::EXPECTED
                ),
            )),
            other => Err(self.expected(key, "a duration string such as \"30s\"", other)),
        }
    }

    /// A duration that must be longer than zero, such as a timeout.
    pub(super) fn positive_duration(
        &self,
        key: &str,
        node: &Node,
    ) -> Result<Duration, ConfigError> {
        let value = self.duration(key, node)?;
        if value.is_zero() {
            return Err(self.error(key, "must be longer than zero"));
        }
        Ok(value)
    }

    /// The `timeout` of other hosts: a number (seconds up to 3600, milliseconds above) or a
    /// duration string.
    pub(super) fn foreign_timeout(&self, key: &str, node: &Node) -> Result<Duration, ConfigError> {
        let value = match node {
            Node::Str(_) => self.duration(key, node)?,
            Node::Int(value) => u64::try_from(*value)
                .map(duration::from_foreign_number)
                .map_err(|_| self.error(key, "a timeout cannot be negative"))?,
            other => {
                return Err(self.expected(
                    key,
                    "a number of seconds (up to 3600) or milliseconds, or a duration string \
                     such as \"30s\"",
                    other,
                ));
            }
        };
        if value.is_zero() {
            return Err(self.error(key, "a timeout must be longer than zero"));
        }
        Ok(value)
    }

    /// `"auto"`, `"legacy"` or `"modern"`.
    pub(super) fn protocol(&self, key: &str, node: &Node) -> Result<ProtocolMode, ConfigError> {
        match self.string(key, node)? {
            "auto" => Ok(ProtocolMode::Auto),
            "legacy" => Ok(ProtocolMode::Legacy),
            "modern" => Ok(ProtocolMode::Modern),
            other => Err(self.error(
                key,
                format!("unknown protocol {other:?}; expected \"auto\", \"legacy\" or \"modern\""),
            )),
        }
    }

    /// The error for a key of Switchboard's own settings that does not exist, with a suggestion
    /// when it looks like a typo of one of `known`.
    pub(super) fn unknown_key(&self, table: &str, key: &str, known: &[&str]) -> ConfigError {
        let path = node::child(table, key);
        let mut message = format!("unknown key {key:?}");
        match suggest(key, known.iter().copied()) {
            Some(near) => message.push_str(&format!("; did you mean {near:?}?")),
            None => message.push_str(&format!("; expected one of: {}", known.join(", "))),
        }
        self.error(&path, message)
    }

    /// Notes a key of another host's format that Switchboard does not know. Other hosts invent
    /// keys, so this is a warning, not an error.
    pub(super) fn warn_unknown(&self, key: &str) {
        tracing::warn!(
            file = %self.file.display(),
            key,
            "ignoring unknown key in the server entry"
        );
    }
}

/// The known name that `word` most likely misspells, if any.
pub(super) fn suggest<'k>(word: &str, known: impl IntoIterator<Item = &'k str>) -> Option<&'k str> {
    let normalize = |s: &str| s.to_ascii_lowercase().replace(['_', '-'], "");
    let word_normal = normalize(word);
    let mut best: Option<(f64, &'k str)> = None;
    for candidate in known {
        let score = if normalize(candidate) == word_normal {
            1.0
        } else {
            strsim::jaro_winkler(word, candidate)
        };
        if score >= 0.8 && best.is_none_or(|(top, _)| score > top) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let known = ["call_timeout", "connect_timeout", "include_tools"];
        assert_eq!(suggest("call_timout", known), Some("call_timeout"));
        assert_eq!(suggest("callTimeout", known), Some("call_timeout"));
        assert_eq!(suggest("includeTools", known), Some("include_tools"));
        assert_eq!(suggest("color", known), None);
    }

    #[test]
    fn workspace_of_a_vscode_file_is_the_project() {
        let env = |_: &str| None;
        let ctx = Ctx::new(Path::new("/p/.vscode/mcp.json"), Format::Json, &env);
        assert_eq!(ctx.dir, Path::new("/p/.vscode"));
        assert_eq!(ctx.workspace, Path::new("/p"));
        let ctx = Ctx::new(Path::new("mcp.json"), Format::Json, &env);
        assert_eq!(ctx.dir, Path::new("."));
        assert_eq!(ctx.workspace, Path::new("."));
    }
}
