//! Redaction of sensitive fields in tool arguments.

use serde_json::Value;

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// The key patterns redacted by default.
pub const DEFAULT_REDACT_KEYS: &[&str] = &[
    "password",
    "passwd",
    "token",
    "secret",
    "api_key",
    "authorization",
    "cookie",
    "private_key",
    "credential",
    "credentials",
];

/// Replaces the values of sensitive keys, at any depth, with [`REDACTED`].
///
/// Keys and patterns are compared word by word, case-insensitively: a key is split into
/// words at `_`, `-`, `.`, spaces and camelCase boundaries, and it matches a pattern when the
/// pattern's words appear in it consecutively (a trailing `s` on a word is ignored), or when
/// one of its words is the pattern's words joined. So `token` matches `access_token`,
/// `X-Auth-Token` and `refreshTokens` (and `max_tokens`: redacting too much is the safe side)
/// but not `tokenizer`; `api_key` matches `apiKey`, `X-API-Key` and `apikey`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redactor {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    words: Vec<String>,
    joined: String,
}

impl Default for Redactor {
    fn default() -> Self {
        Self::new(DEFAULT_REDACT_KEYS.iter().copied())
    }
}

impl Redactor {
    /// A redactor for the given key patterns.
    pub fn new<I, S>(patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let patterns = patterns
            .into_iter()
            .map(|p| words(p.as_ref()))
            .filter(|words| !words.is_empty())
            .map(|words| Pattern {
                joined: words.concat(),
                words,
            })
            .collect();
        Self { patterns }
    }

    /// Whether values under `key` are redacted.
    pub fn is_sensitive(&self, key: &str) -> bool {
        let key = words(key);
        self.patterns.iter().any(|pattern| {
            key.iter().any(|word| singular(word) == pattern.joined)
                || key.windows(pattern.words.len()).any(|window| {
                    window
                        .iter()
                        .zip(&pattern.words)
                        .all(|(w, p)| singular(w) == p)
                })
        })
    }

    /// Redacts `value` in place, recursing into objects and arrays.
    pub fn redact(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, value) in map.iter_mut() {
                    if self.is_sensitive(key) {
                        *value = Value::String(REDACTED.to_owned());
                    } else {
                        self.redact(value);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.redact(item)),
            _ => {}
        }
    }
}

fn singular(word: &str) -> &str {
    match word.strip_suffix('s') {
        Some(stem) if stem.len() >= 3 => stem,
        _ => word,
    }
}

/// Splits `key` into lowercase words at separators and camelCase boundaries
/// (`XApiKey` → `x`, `api`, `key`; `APIKey` → `api`, `key`).
fn words(key: &str) -> Vec<String> {
    let chars: Vec<char> = key.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            continue;
        }
        if c.is_uppercase() && !word.is_empty() {
            let prev = chars[i - 1];
            let next_is_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || prev.is_numeric() || (prev.is_uppercase() && next_is_lower) {
                words.push(std::mem::take(&mut word));
            }
        }
        word.extend(c.to_lowercase());
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_words() {
        assert_eq!(words("XApiKey"), ["x", "api", "key"]);
        assert_eq!(words("APIKey"), ["api", "key"]);
        assert_eq!(words("x-api-key"), ["x", "api", "key"]);
        assert_eq!(words("refresh_token2"), ["refresh", "token2"]);
        assert_eq!(words("max_tokens"), ["max", "tokens"]);
    }

    #[test]
    fn sensitive_keys() {
        let r = Redactor::default();
        for key in [
            "password",
            "PASSWORD",
            "db_password",
            "passwordHash",
            "access_token",
            "X-Auth-Token",
            "refreshTokens",
            "client_secret",
            "apiKey",
            "api_key",
            "X-API-Key",
            "apikey",
            "Authorization",
            "Cookie",
        ] {
            assert!(r.is_sensitive(key), "{key} should be sensitive");
        }
        for key in [
            "path",
            "query",
            "tokenizer",
            "keyword",
            "author",
            "max_len",
            "secretary",
        ] {
            assert!(!r.is_sensitive(key), "{key} should not be sensitive");
        }
    }
}
