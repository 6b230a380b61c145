//! The hash chain: canonical lines, hashing and verification.
//!
//! A record's line is its canonical JSON (object keys sorted, no whitespace) without `hash`,
//! with `,"hash":"<hex>"` inserted before the final `}`; `hash` is the SHA-256 of that
//! canonical JSON, which includes `seq` and `prev` (the previous record's `hash`, or
//! [`GENESIS`] for the first). Verification hashes the bytes of each line as written, so it
//! never depends on how a JSON parser rounds numbers.

use std::{
    fmt,
    fs::File,
    io::{self, BufRead, BufReader, Read},
    path::{Path, PathBuf},
};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The `prev` of the first record: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const HASH_PREFIX: &str = ",\"hash\":\"";
/// `,"hash":"` + 64 hex digits + `"}`.
const HASH_SUFFIX_LEN: usize = HASH_PREFIX.len() + 64 + 2;

/// The state of a chain after its last record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySummary {
    /// How many records the log holds.
    pub records: u64,
    /// The `seq` of the last record (0 for an empty log).
    pub last_seq: u64,
    /// The `hash` of the last record ([`GENESIS`] for an empty log). Keep it somewhere else
    /// too: the chain alone cannot tell that records were cut off the end.
    pub last_hash: String,
}

impl VerifySummary {
    pub(crate) fn empty() -> Self {
        Self {
            records: 0,
            last_seq: 0,
            last_hash: GENESIS.to_owned(),
        }
    }
}

/// What is wrong with the first bad record of an audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The line is not a record (not UTF-8, not JSON, no `hash` at the end, no `seq`, …),
    /// or is cut short (no final newline: an interrupted write).
    Unparsable(String),
    /// The record's content does not match its `hash`: the line was edited.
    HashMismatch {
        /// The hash of the line as it is.
        computed: String,
        /// The hash the line claims.
        recorded: String,
    },
    /// `seq` is not the previous record's plus one: records were deleted, reordered or
    /// inserted.
    SequenceGap {
        /// The `seq` that should come next.
        expected: u64,
        /// The `seq` found.
        found: u64,
    },
    /// `prev` is not the previous record's `hash`: a record before this one was replaced.
    BrokenLink {
        /// The previous record's hash.
        expected: String,
        /// The `prev` found.
        found: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unparsable(why) => write!(f, "unparsable record: {why}"),
            Self::HashMismatch { computed, recorded } => write!(
                f,
                "hash mismatch: the record hashes to {computed} but says {recorded} (edited)"
            ),
            Self::SequenceGap { expected, found } => write!(
                f,
                "sequence gap: expected seq {expected}, found {found} (records deleted, reordered or inserted)"
            ),
            Self::BrokenLink { expected, found } => write!(
                f,
                "broken link: prev is {found} but the previous record's hash is {expected}"
            ),
        }
    }
}

/// Why an audit log does not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The file could not be read.
    #[error("cannot read audit log {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A record is bad; every record before it is good.
    #[error("audit log {}, line {line}{}: {problem}", path.display(), SeqSuffix(*seq))]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The line of the first bad record, from 1.
        line: u64,
        /// Its `seq`, when it could be read.
        seq: Option<u64>,
        /// What is wrong.
        problem: Problem,
    },
}

struct SeqSuffix(Option<u64>);

impl fmt::Display for SeqSuffix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(seq) => write!(f, " (seq {seq})"),
            None => Ok(()),
        }
    }
}

impl VerifyError {
    /// The line of the first bad record, if a record is bad.
    pub fn line(&self) -> Option<u64> {
        match self {
            Self::Corrupt { line, .. } => Some(*line),
            Self::Io { .. } => None,
        }
    }

    /// The `seq` of the first bad record, if it could be read.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Self::Corrupt { seq, .. } => *seq,
            Self::Io { .. } => None,
        }
    }

    /// What is wrong with the first bad record.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Self::Corrupt { problem, .. } => Some(problem),
            Self::Io { .. } => None,
        }
    }
}

/// Checks every record of the audit log at `path`: each line's hash, its `seq` (one more than
/// the line before) and its `prev` (the hash of the line before). Returns the chain's end, or
/// the first bad record with its line number, `seq` and what is wrong.
pub fn verify(path: impl AsRef<Path>) -> Result<VerifySummary, VerifyError> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|source| VerifyError::Io {
        path: path.to_owned(),
        source,
    })?;
    scan(path, file)
}

/// Verifies records read from `reader` (named `path` in errors).
pub(crate) fn scan(path: &Path, reader: impl Read) -> Result<VerifySummary, VerifyError> {
    let mut reader = BufReader::new(reader);
    let mut summary = VerifySummary::empty();
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let read = reader
            .read_until(b'\n', &mut buf)
            .map_err(|source| VerifyError::Io {
                path: path.to_owned(),
                source,
            })?;
        if read == 0 {
            return Ok(summary);
        }
        line_no += 1;
        let corrupt = |seq, problem| VerifyError::Corrupt {
            path: path.to_owned(),
            line: line_no,
            seq,
            problem,
        };
        let Some(line) = buf.strip_suffix(b"\n") else {
            let why = "the last line has no newline (an interrupted write?)".to_owned();
            return Err(corrupt(None, Problem::Unparsable(why)));
        };
        let record = check_line(line, &summary).map_err(|(seq, problem)| corrupt(seq, problem))?;
        summary.records += 1;
        summary.last_seq = record.seq;
        summary.last_hash = record.hash;
    }
}

struct Checked {
    seq: u64,
    hash: String,
}

fn check_line(line: &[u8], before: &VerifySummary) -> Result<Checked, (Option<u64>, Problem)> {
    let unparsable = |why: &str| (None, Problem::Unparsable(why.to_owned()));
    let line = std::str::from_utf8(line).map_err(|_| unparsable("not UTF-8"))?;
    if line.is_empty() {
        return Err(unparsable("empty line"));
    }
    // Split off `,"hash":"<64 hex>"}`.
    let split = line
        .len()
        .checked_sub(HASH_SUFFIX_LEN)
        .filter(|&at| line.is_char_boundary(at));
    let Some(split) = split else {
        return Err(unparsable("no hash at the end of the line"));
    };
    let (body, suffix) = line.split_at(split);
    let recorded = suffix
        .strip_prefix(HASH_PREFIX)
        .and_then(|rest| rest.strip_suffix("\"}"))
        .filter(|hex| {
            hex.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        .ok_or_else(|| unparsable("no hash at the end of the line"))?;

    // The fields, to name the record in errors.
    let canonical = format!("{body}}}");
    let fields: Map<String, Value> =
        serde_json::from_str(&canonical).map_err(|e| unparsable(&format!("invalid JSON: {e}")))?;
    let seq = fields.get("seq").and_then(Value::as_u64);
    let Some(seq) = seq else {
        return Err(unparsable("no numeric `seq`"));
    };
    let Some(prev) = fields.get("prev").and_then(Value::as_str) else {
        return Err((Some(seq), Problem::Unparsable("no `prev`".to_owned())));
    };

    let computed = sha256_hex(canonical.as_bytes());
    if computed != recorded {
        let recorded = recorded.to_owned();
        return Err((Some(seq), Problem::HashMismatch { computed, recorded }));
    }
    let expected = before.last_seq + 1;
    if seq != expected {
        return Err((
            Some(seq),
            Problem::SequenceGap {
                expected,
                found: seq,
            },
        ));
    }
    if prev != before.last_hash {
        let expected = before.last_hash.clone();
        return Err((
            Some(seq),
            Problem::BrokenLink {
                expected,
                found: prev.to_owned(),
            },
        ));
    }
    Ok(Checked {
        seq,
        hash: computed,
    })
}

/// Builds the line (without the newline) for `fields` (which must hold `seq` and `prev`),
/// returning it with its hash.
pub(crate) fn seal(fields: &Map<String, Value>) -> (String, String) {
    let mut line = String::with_capacity(256);
    write_canonical_object(fields, &mut line);
    let hash = sha256_hex(line.as_bytes());
    line.pop(); // the closing `}`
    line.push_str(HASH_PREFIX);
    line.push_str(&hash);
    line.push_str("\"}");
    (line, hash)
}

fn write_canonical_object(map: &Map<String, Value>, out: &mut String) {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::String(key.clone()).to_string());
        out.push(':');
        write_canonical(value, out);
    }
    out.push('}');
}

/// Compact JSON with object keys sorted at every depth, whatever the order of `serde_json`'s
/// maps in this build (the `preserve_order` feature may be on elsewhere in the tree).
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => write_canonical_object(map, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for byte in digest.iter() {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}
