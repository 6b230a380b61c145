//! Turning tool documentation and task text into index terms.
//!
//! The same [`Tokenizer`] runs on tool fields and on queries, so a query word
//! meets a tool word when both end up as the same term:
//!
//! 1. split on everything that is not a letter or a digit (`_`, `-`, `.`, `/`,
//!    spaces, punctuation);
//! 2. split each word at camelCase humps (`getUserToken` → `get user token`,
//!    `HTTPServer` → `http server`) and between letters and digits
//!    (`base64` → `base 64`);
//! 3. lowercase, drop one-character parts and the [`STOP_WORDS`];
//! 4. stem with the Snowball English (Porter2) stemmer, so `weather`,
//!    `forecasts` and `forecasting` meet `forecast`.

use std::fmt;

use rust_stemmers::{Algorithm, Stemmer};

/// Words dropped from tool text and queries: the Lucene English list that
/// BM25 baselines use, plus pronouns, auxiliaries and request phrasing that
/// carry no meaning about which tool fits ("can you please give me…").
pub const STOP_WORDS: &[&str] = &[
    // Lucene / Elasticsearch English
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with", // pronouns
    "i", "me", "my", "we", "our", "us", "you", "your", "he", "she", "his", "her", "its", "them",
    // auxiliaries and request phrasing
    "am", "been", "can", "could", "do", "does", "did", "would", "should", "please", "what", "which",
    "who", "how", "also",
];

/// Splits and normalizes text into terms (see the [module docs](self)).
pub struct Tokenizer {
    stemmer: Option<Stemmer>,
}

impl fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokenizer")
            .field("stem", &self.stemmer.is_some())
            .finish()
    }
}

impl Tokenizer {
    /// A tokenizer that stems terms when `stem` is true.
    pub fn new(stem: bool) -> Self {
        Tokenizer {
            stemmer: stem.then(|| Stemmer::create(Algorithm::English)),
        }
    }

    /// The terms of `text`, in order, repeated as often as they occur.
    pub fn terms(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.each_term(text, |term, _| out.push(term));
        out
    }

    /// Calls `emit(term, surface)` for every term of `text`, where `surface`
    /// is the lowercased word part the term came from (before stemming).
    pub(crate) fn each_term(&self, text: &str, mut emit: impl FnMut(String, &str)) {
        let mut lower = String::new();
        for word in text.split(|c: char| !c.is_alphanumeric()) {
            for part in split_word(word) {
                lower.clear();
                lower.extend(part.chars().flat_map(char::to_lowercase));
                if lower.chars().nth(1).is_none() || STOP_WORDS.contains(&lower.as_str()) {
                    continue;
                }
                let term = match &self.stemmer {
                    Some(stemmer) => stemmer.stem(&lower).into_owned(),
                    None => lower.clone(),
                };
                emit(term, &lower);
            }
        }
    }
}

/// Splits one alphanumeric word at camelCase humps and letter/digit changes.
fn split_word(word: &str) -> Vec<&str> {
    let chars: Vec<(usize, char)> = word.char_indices().collect();
    let mut cuts = vec![0];
    for i in 1..chars.len() {
        let (at, cur) = chars[i];
        let prev = chars[i - 1].1;
        let next = chars.get(i + 1).map(|&(_, c)| c);
        let hump = prev.is_lowercase() && cur.is_uppercase();
        let acronym_end =
            prev.is_uppercase() && cur.is_uppercase() && next.is_some_and(char::is_lowercase);
        let digit_change = prev.is_numeric() != cur.is_numeric();
        if hump || acronym_end || digit_change {
            cuts.push(at);
        }
    }
    cuts.push(word.len());
    cuts.windows(2)
        .map(|w| &word[w[0]..w[1]])
        .filter(|p| !p.is_empty())
        .collect()
}
