//! A parsed file as an ordered tree, the same for JSON and TOML, and dotted key paths into it.
//!
//! We parse into our own tree rather than `serde_json::Value` so that tables keep the order of
//! the file without turning on `serde_json/preserve_order` for the whole workspace, and so that
//! a JSON object with the same key twice is an error instead of a silent overwrite.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// One value of a configuration file.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    /// JSON `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i128),
    /// A number with a fraction or exponent.
    Float(f64),
    /// A string.
    Str(String),
    /// An array.
    Array(Vec<Node>),
    /// An object (JSON) or table (TOML), in file order.
    Table(Vec<(String, Node)>),
}

impl Node {
    /// What kind of value this is, for messages such as "expected a string, found a number".
    pub(super) fn kind(&self, json: bool) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "a boolean",
            Self::Int(_) | Self::Float(_) => "a number",
            Self::Str(_) => "a string",
            Self::Array(_) => "an array",
            Self::Table(_) if json => "an object",
            Self::Table(_) => "a table",
        }
    }

    /// The value of `key` when this is a table that has it.
    pub(super) fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Self::Table(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

/// Builds a [`Node`] from whatever the format's deserializer reports.
struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a configuration value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Int(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        Node::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries: Vec<(String, Node)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Node::Table(entries))
    }
}

/// Parses JSON, also accepting the comments and trailing commas of VS Code's JSONC.
///
/// The error message gives the line and column.
pub(super) fn parse_json(text: &str) -> Result<Node, String> {
    let clean = strip_jsonc(text);
    serde_json::from_str::<Node>(&clean).map_err(|error| {
        let (line, column) = (error.line(), error.column());
        let full = error.to_string();
        let suffix = format!(" at line {line} column {column}");
        let what = full.strip_suffix(&suffix).unwrap_or(&full);
        format!("invalid JSON at line {line}, column {column}: {what}")
    })
}

/// Parses TOML; the error message gives the line and column.
pub(super) fn parse_toml(text: &str) -> Result<Node, String> {
    toml::from_str::<Node>(text).map_err(|error| {
        let what = error.message().trim_end();
        match error.span() {
            Some(span) => {
                let (line, column) = line_column(text, span.start);
                format!("invalid TOML at line {line}, column {column}: {what}")
            }
            None => format!("invalid TOML: {what}"),
        }
    })
}

/// The 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// Blanks out `//` and `/* */` comments and trailing commas, keeping every line and column
/// where it was so that parse errors point at the right place.
fn strip_jsonc(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = bytes.to_vec();
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match (b, bytes.get(i + 1)) {
            (b'"', _) => in_string = true,
            (b'/', Some(b'/')) => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    out[i] = b' ';
                    i += 1;
                }
                continue;
            }
            (b'/', Some(b'*')) => {
                // An unclosed comment is left as it is, for the parser to report.
                if let Some(at) = text.get(i + 2..).and_then(|rest| rest.find("*/")) {
                    let end = i + 2 + at + 2;
                    for byte in &mut out[i..end] {
                        if *byte != b'\n' {
                            *byte = b' ';
                        }
                    }
                    i = end;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    blank_trailing_commas(&mut out);
    String::from_utf8(out).unwrap_or_else(|_| text.to_owned())
}

/// Replaces each comma that is followed (after white space) by `}` or `]` with a space.
fn blank_trailing_commas(bytes: &mut [u8]) {
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_string => i += 1,
            b'"' => in_string = !in_string,
            b',' if !in_string => {
                let next = bytes[i + 1..].iter().find(|b| !b.is_ascii_whitespace());
                if matches!(next, Some(b'}' | b']')) {
                    bytes[i] = b' ';
                }
            }
            _ => {}
        }
        i += 1;
    }
}

/// The path of `key` inside the table at `parent`: `parent.key`, with the key quoted when it is
/// not a plain identifier (`mcpServers."git hub"`).
pub(super) fn child(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let segment = if plain {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if parent.is_empty() {
        segment
    } else {
        format!("{parent}.{segment}")
    }
}

/// The path of item `index` of the array at `parent`: `parent[index]`.
pub(super) fn item(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_file_order_and_rejects_duplicates() {
        let node = parse_json(r#"{"b": 1, "a": [true, null, 1.5, "x"]}"#).expect("valid");
        let Node::Table(entries) = &node else {
            panic!("not a table: {node:?}");
        };
        let keys: Vec<_> = entries.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "a"]);
        assert_eq!(
            node.get("a"),
            Some(&Node::Array(vec![
                Node::Bool(true),
                Node::Null,
                Node::Float(1.5),
                Node::Str("x".into())
            ]))
        );
        let error = parse_json("{\n  \"a\": 1,\n  \"a\": 2\n}").expect_err("duplicate");
        assert_eq!(
            error,
            "invalid JSON at line 3, column 5: duplicate key \"a\""
        );
    }

    #[test]
    fn json_errors_give_line_and_column() {
        let error = parse_json("{\n  \"a\": 1\n  \"b\": 2\n}").expect_err("invalid");
        assert_eq!(
            error,
            "invalid JSON at line 3, column 3: expected `,` or `}`"
        );
    }

    #[test]
    fn jsonc_comments_and_trailing_commas_are_accepted() {
        let text = concat!(
            "{\n",
            "  // a comment with \"quotes\"\n",
            "  \"a\": \"http://x/*y*/\", /* block\n",
            " comment */\n",
            "  \"b\": [1, 2,],\n",
            "}",
        );
        let node = parse_json(text).expect("valid");
        assert_eq!(node.get("a"), Some(&Node::Str("http://x/*y*/".into())));
        assert_eq!(
            node.get("b"),
            Some(&Node::Array(vec![Node::Int(1), Node::Int(2)]))
        );
        let error = parse_json("{\n  /* c */ \"a\": x\n}").expect_err("invalid");
        assert_eq!(error, "invalid JSON at line 2, column 16: expected value");
    }

    #[test]
    fn toml_keeps_file_order_and_reports_line_and_column() {
        let node = parse_toml("[servers.zeta]\nx = 1\n[servers.alpha]\ny = 2\n").expect("valid");
        let Some(Node::Table(servers)) = node.get("servers") else {
            panic!("no servers: {node:?}");
        };
        let keys: Vec<_> = servers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["zeta", "alpha"]);
        let error = parse_toml("a = 1\nb = \n").expect_err("invalid");
        assert!(
            error.starts_with("invalid TOML at line 2, column "),
            "{error}"
        );
    }

    #[test]
    fn key_paths_quote_odd_names() {
        assert_eq!(child("", "mcpServers"), "mcpServers");
        assert_eq!(child("mcpServers", "calc"), "mcpServers.calc");
        assert_eq!(child("mcpServers", "git hub"), "mcpServers.\"git hub\"");
        assert_eq!(item("mcpServers.calc.args", 1), "mcpServers.calc.args[1]");
    }
}
