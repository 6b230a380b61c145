//! Canonical JSON and JSON cache keys (feature `json`, on by default).
//!
//! [`canonical_json`] writes a [`serde_json::Value`] so that equal values give
//! equal text:
//!
//! - object keys sorted by their UTF-8 bytes, whatever the map's order;
//! - numbers normalised: an integral number that fits in 64 bits is written
//!   as an integer (`1`, `1.0` and `1e0` are all `1`; `-0.0` is `0`), any
//!   other number in Rust's shortest round-trip exponent form (`1.5e0`,
//!   `1e20`);
//! - strings escaped minimally (`\"`, `\\`, and control characters, with the
//!   short forms `\n`, `\r`, `\t`, `\b`, `\f` where they exist);
//! - no whitespace.
//!
//! It is in the spirit of RFC 8785 (JCS) but not byte-compatible with it: JCS
//! sorts by UTF-16 code units and formats numbers as ECMAScript does.
//!
//! [`JsonKey`] holds the canonical text and a 64-bit hash of it, so hashing
//! a key in the cache costs one `u64` while equality still compares the full
//! text (a hash collision cannot return another key's value).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde_json::{Map, Number, Value};

use crate::error::BoxError;
use crate::second_level::Codec;
use crate::weigh::Weigh;

/// The canonical text of `value` (see the [module docs](self)).
///
/// ```
/// use serde_json::json;
/// use switchboard_cache::json::canonical_json;
///
/// let text = canonical_json(&json!({"b": 2, "a": [1.0, "x"]}));
/// assert_eq!(text, r#"{"a":[1,"x"],"b":2}"#);
/// ```
pub fn canonical_json(value: &Value) -> String {
    with_scratch(|out| canonical_json_into(value, out))
}

/// Writes into a reused per-thread buffer, then copies the text out into a
/// string of exactly its length: one allocation instead of a series of
/// growths, and no spare capacity kept in cache keys.
fn with_scratch(write: impl FnOnce(&mut String)) -> String {
    /// Buffers that grew past this are not kept.
    const KEEP_AT_MOST: usize = 64 * 1024;
    thread_local! {
        static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) };
    }
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut buffer) => {
            buffer.clear();
            write(&mut buffer);
            let text = String::from(buffer.as_str());
            if buffer.capacity() > KEEP_AT_MOST {
                *buffer = String::new();
            }
            text
        }
        // Only if `write` itself re-entered; never the case here.
        Err(_) => {
            let mut text = String::new();
            write(&mut text);
            text
        }
    })
}

/// Appends the canonical text of `value` to `out`.
pub fn canonical_json_into(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => write_number(number, out),
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                canonical_json_into(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(map, out),
    }
}

fn write_object(map: &Map<String, Value>, out: &mut String) {
    out.push('{');
    // serde_json's default map is already sorted; with `preserve_order` it
    // keeps insertion order and needs a sort.
    if map.keys().is_sorted() {
        write_members(map.iter(), out);
    } else {
        let mut members: Vec<(&String, &Value)> = map.iter().collect();
        members.sort_unstable_by(|a, b| a.0.cmp(b.0));
        write_members(members.into_iter(), out);
    }
    out.push('}');
}

fn write_members<'a>(members: impl Iterator<Item = (&'a String, &'a Value)>, out: &mut String) {
    for (index, (key, value)) in members.enumerate() {
        if index > 0 {
            out.push(',');
        }
        write_string(key, out);
        out.push(':');
        canonical_json_into(value, out);
    }
}

fn write_number(number: &Number, out: &mut String) {
    if let Some(n) = number.as_u64() {
        write_u64(n, out);
    } else if let Some(n) = number.as_i64() {
        // Negative: `as_u64` took every non-negative integer.
        out.push('-');
        write_u64(n.unsigned_abs(), out);
    } else if let Some(n) = number.as_f64() {
        write_f64(n, out);
    } else {
        // Only with serde_json's `arbitrary_precision`, for numbers f64
        // cannot hold.
        out.push_str(&number.to_string());
    }
}

fn write_f64(n: f64, out: &mut String) {
    const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
    if n.fract() == 0.0 && n.abs() < TWO_POW_64 {
        // Integral and in range, so the casts are exact. `-0.0` takes the
        // first branch and prints as `0`.
        if n >= 0.0 {
            write_u64(n as u64, out);
        } else {
            out.push('-');
            write_u64((-n) as u64, out);
        }
    } else {
        // Writing to a String cannot fail.
        let _unused = write!(out, "{n:e}");
    }
}

fn write_u64(mut n: u64, out: &mut String) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &digit in &digits[start..] {
        out.push(char::from(digit));
    }
}

/// Bytes that must be escaped in a JSON string.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

fn write_string(text: &str, out: &mut String) {
    out.push('"');
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut index = 0;
    while index < bytes.len() {
        // Skip eight bytes at a time while none needs escaping.
        if let Some(word) = bytes.get(index..index + 8)
            && !word_needs_escape(read_u64(word))
        {
            index += 8;
            continue;
        }
        let byte = bytes[index];
        if NEEDS_ESCAPE[usize::from(byte)] {
            // `index` is at an ASCII byte, so both slices are on char
            // boundaries.
            out.push_str(&text[start..index]);
            write_escape(byte, out);
            start = index + 1;
        }
        index += 1;
    }
    out.push_str(&text[start..]);
    out.push('"');
}

fn write_escape(byte: u8, out: &mut String) {
    match byte {
        b'"' => out.push_str("\\\""),
        b'\\' => out.push_str("\\\\"),
        b'\n' => out.push_str("\\n"),
        b'\r' => out.push_str("\\r"),
        b'\t' => out.push_str("\\t"),
        0x08 => out.push_str("\\b"),
        0x0c => out.push_str("\\f"),
        _ => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
}

/// True if any byte of the word is below 0x20, `"` or `\\`. Uses the
/// "has a zero byte" bit trick, which is exact as a yes/no answer.
fn word_needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero_byte = |v: u64| (v.wrapping_sub(ONES) & !v & HIGHS) != 0;
    // Bytes below 0x20: the same trick with 0x20 in place of 1.
    let below_space = (word.wrapping_sub(ONES * 0x20) & !word & HIGHS) != 0;
    below_space
        || has_zero_byte(word ^ (ONES * u64::from(b'"')))
        || has_zero_byte(word ^ (ONES * u64::from(b'\\')))
}

/// A cache key made of canonical JSON text and its 64-bit hash.
///
/// Two keys are equal when their canonical texts are, so `{"a":1,"b":2}` and
/// `{"b":2,"a":1.0}` give equal keys. Hashing writes only the precomputed
/// hash; equality compares the whole text.
///
/// ```
/// use serde_json::json;
/// use switchboard_cache::json::JsonKey;
///
/// let a = JsonKey::scoped(&["github", "tools/call"], &json!({"a": 1, "b": 2}));
/// let b = JsonKey::scoped(&["github", "tools/call"], &json!({"b": 2, "a": 1.0}));
/// assert_eq!(a, b);
/// assert_eq!(a.as_str(), r#"["github","tools/call",{"a":1,"b":2}]"#);
/// ```
#[derive(Debug, Clone)]
pub struct JsonKey {
    hash: u64,
    text: String,
}

impl JsonKey {
    /// The key of `value`.
    pub fn new(value: &Value) -> Self {
        JsonKey::from_canonical(canonical_json(value))
    }

    /// The key of `value` under a scope, for example a server name and a
    /// method. The text is the canonical JSON of the array
    /// `[scope..., value]`, so no two (scope, value) pairs collide.
    pub fn scoped(scope: &[&str], value: &Value) -> Self {
        let text = with_scratch(|text| {
            text.push('[');
            for part in scope {
                write_string(part, text);
                text.push(',');
            }
            canonical_json_into(value, text);
            text.push(']');
        });
        JsonKey::from_canonical(text)
    }

    /// Like [`JsonKey::scoped`] for a JSON object held as a map (no `Value` to build); the
    /// same key as `scoped(scope, &Value::Object(object.clone()))`.
    pub fn scoped_object(scope: &[&str], object: &Map<String, Value>) -> Self {
        let text = with_scratch(|text| {
            text.push('[');
            for part in scope {
                write_string(part, text);
                text.push(',');
            }
            write_object(object, text);
            text.push(']');
        });
        JsonKey::from_canonical(text)
    }

    /// A key from text that is already canonical (for example one received
    /// from another instance). The text is taken as it is.
    pub fn from_canonical(text: String) -> Self {
        JsonKey {
            hash: hash_bytes(text.as_bytes()),
            text,
        }
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The 64-bit hash of the canonical text. Stable across processes and
    /// platforms, but not a cryptographic hash.
    pub fn fingerprint(&self) -> u64 {
        self.hash
    }
}

impl PartialEq for JsonKey {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.text == other.text
    }
}

impl Eq for JsonKey {}

impl Hash for JsonKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl std::fmt::Display for JsonKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Weigh for JsonKey {
    fn weigh(&self) -> usize {
        size_of::<JsonKey>() + self.text.len()
    }
}

impl Weigh for Value {
    fn weigh(&self) -> usize {
        let children = match self {
            Value::String(text) => text.len(),
            Value::Array(items) => items.iter().map(Weigh::weigh).sum(),
            Value::Object(map) => map
                .iter()
                .map(|(key, value)| key.weigh() + value.weigh())
                .sum(),
            Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        };
        size_of::<Value>() + children
    }
}

/// A second-level [`Codec`] for [`JsonKey`] keys and JSON values (plain or
/// behind an [`Arc`]): keys as their canonical text, values as JSON text.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonCodec;

impl Codec<JsonKey, Value> for JsonCodec {
    fn encode_key(&self, key: &JsonKey) -> Vec<u8> {
        key.as_str().as_bytes().to_vec()
    }

    fn decode_key(&self, bytes: &[u8]) -> Option<JsonKey> {
        let text = std::str::from_utf8(bytes).ok()?;
        Some(JsonKey::from_canonical(text.to_owned()))
    }

    fn encode_value(&self, value: &Value) -> Result<Vec<u8>, BoxError> {
        Ok(serde_json::to_vec(value)?)
    }

    fn decode_value(&self, bytes: &[u8]) -> Result<Value, BoxError> {
        Ok(serde_json::from_slice(bytes)?)
    }
}

impl Codec<JsonKey, Arc<Value>> for JsonCodec {
    fn encode_key(&self, key: &JsonKey) -> Vec<u8> {
        <Self as Codec<JsonKey, Value>>::encode_key(self, key)
    }

    fn decode_key(&self, bytes: &[u8]) -> Option<JsonKey> {
        <Self as Codec<JsonKey, Value>>::decode_key(self, bytes)
    }

    fn encode_value(&self, value: &Arc<Value>) -> Result<Vec<u8>, BoxError> {
        Ok(serde_json::to_vec(value.as_ref())?)
    }

    fn decode_value(&self, bytes: &[u8]) -> Result<Arc<Value>, BoxError> {
        Ok(Arc::new(serde_json::from_slice(bytes)?))
    }
}

/// A fast 64-bit hash (folded multiply, in the style of wyhash) of the
/// canonical text. Fixed constants, so keys hash alike in every process.
fn hash_bytes(bytes: &[u8]) -> u64 {
    const P0: u64 = 0xa076_1d64_78bd_642f;
    const P1: u64 = 0xe703_7ed1_a0b4_28db;
    const P2: u64 = 0x8ebc_6af0_9c88_c6e3;
    const P3: u64 = 0x5899_65cc_7537_4cc3;
    let len = bytes.len() as u64;
    let mut state = P0 ^ len;
    let mut chunks = bytes.chunks_exact(16);
    for chunk in &mut chunks {
        let (low, high) = chunk.split_at(8);
        state = folded_multiply(read_u64(low) ^ P1, read_u64(high) ^ state);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let (low, high) = rest.split_at(rest.len().min(8));
        state = folded_multiply(read_u64(low) ^ P2, read_u64(high) ^ state);
    }
    folded_multiply(state ^ P3, len ^ P1)
}

fn folded_multiply(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

/// Little-endian read of up to 8 bytes, zero-padded.
fn read_u64(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    let len = bytes.len().min(8);
    buf[..len].copy_from_slice(&bytes[..len]);
    u64::from_le_bytes(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_control_characters() {
        let text = canonical_json(&Value::String("a\"\\\n\u{1}é".to_owned()));
        assert_eq!(text, "\"a\\\"\\\\\\n\\u0001é\"");
        let parsed: Value = serde_json::from_str(&text).expect("valid json");
        assert_eq!(parsed, Value::String("a\"\\\n\u{1}é".to_owned()));
    }

    #[test]
    fn hash_depends_on_every_byte() {
        let base = hash_bytes(b"0123456789abcdefXYZ");
        assert_ne!(base, hash_bytes(b"0123456789abcdefXYz"));
        assert_ne!(base, hash_bytes(b"1123456789abcdefXYZ"));
        assert_ne!(hash_bytes(b""), hash_bytes(b"\0"));
    }
}
