//! One discovery query over 10,000 tools, and one incremental update.
//!
//! The tools are synthetic but shaped like real MCP tools: snake_case or
//! camelCase names of two or three words, descriptions of 10 to 40 words and
//! one to four parameters with short descriptions, drawn with a skewed (Zipf-like)
//! distribution from a vocabulary of common API words plus 3,000 rarer ones.
//!
//! Run: `cargo bench -p switchboard-registry --bench discovery`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value, json};
use switchboard_registry::discovery::{LexicalConfig, LexicalIndex, Query, ToolDoc};

const TOOLS: usize = 10_000;

/// Frequent words of tool documentation, most frequent first.
const COMMON: &[&str] = &[
    "get",
    "list",
    "the",
    "a",
    "of",
    "for",
    "to",
    "and",
    "create",
    "update",
    "delete",
    "search",
    "file",
    "user",
    "id",
    "name",
    "data",
    "query",
    "returns",
    "string",
    "number",
    "optional",
    "message",
    "channel",
    "issue",
    "repository",
    "project",
    "page",
    "results",
    "limit",
    "time",
    "date",
    "city",
    "weather",
    "forecast",
    "location",
    "image",
    "text",
    "document",
    "email",
    "send",
    "read",
    "write",
    "directory",
    "path",
    "content",
    "account",
    "order",
    "product",
    "price",
    "stock",
    "symbol",
    "market",
    "calendar",
    "event",
    "meeting",
    "task",
    "status",
    "token",
    "key",
    "value",
    "table",
    "row",
    "column",
    "database",
    "record",
    "url",
    "link",
    "video",
    "audio",
    "language",
    "translate",
    "summary",
    "report",
    "invoice",
    "payment",
    "customer",
    "ticket",
    "comment",
    "label",
    "branch",
    "commit",
    "pull",
    "request",
    "review",
    "team",
    "member",
    "role",
    "permission",
    "group",
    "folder",
    "upload",
    "download",
    "share",
    "note",
    "contact",
    "address",
    "phone",
    "country",
    "currency",
    "exchange",
    "rate",
    "flight",
    "hotel",
    "booking",
    "recipe",
    "movie",
    "song",
    "artist",
    "album",
    "playlist",
    "news",
    "article",
    "sports",
    "score",
    "game",
    "player",
    "match",
    "league",
    "season",
    "statistics",
];

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A uniform number in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Draws words: the common list often, a long tail of rarer words less often.
struct Vocabulary {
    rare: Vec<String>,
}

impl Vocabulary {
    fn new(rng: &mut Rng) -> Self {
        const SYLLABLES: &[&str] = &[
            "ka", "lo", "mi", "ter", "on", "sa", "vi", "dex", "ra", "pol", "un", "gen", "tor",
        ];
        let rare = (0..3_000)
            .map(|_| {
                (0..2 + rng.below(2))
                    .map(|_| SYLLABLES[rng.below(SYLLABLES.len())])
                    .collect()
            })
            .collect();
        Vocabulary { rare }
    }

    fn word<'a>(&'a self, rng: &mut Rng) -> &'a str {
        // Squaring a uniform number skews the pick towards the front of each list.
        let skewed = rng.unit() * rng.unit();
        if rng.below(3) < 2 {
            COMMON[(skewed * COMMON.len() as f64) as usize]
        } else {
            &self.rare[(skewed * self.rare.len() as f64) as usize]
        }
    }

    /// `fewest` to `fewest + spread - 1` words.
    fn words(&self, rng: &mut Rng, fewest: usize, spread: usize, separator: &str) -> String {
        let count = fewest + rng.below(spread);
        (0..count)
            .map(|_| self.word(rng))
            .collect::<Vec<_>>()
            .join(separator)
    }
}

fn tool(i: usize, vocabulary: &Vocabulary, rng: &mut Rng) -> ToolDoc {
    let words = 2 + rng.below(2);
    let name = if i.is_multiple_of(3) {
        let mut name = vocabulary.word(rng).to_owned();
        for _ in 1..words {
            let word = vocabulary.word(rng);
            name.push_str(&word[..1].to_uppercase());
            name.push_str(&word[1..]);
        }
        name
    } else {
        vocabulary.words(rng, words, 1, "_")
    };
    let mut doc = ToolDoc::new(&format!("server{}", i % 40), &format!("{name}_{i}"));
    doc.description = Some(vocabulary.words(rng, 10, 31, " "));
    let mut properties = Map::new();
    for _ in 0..1 + rng.below(4) {
        properties.insert(
            vocabulary.words(rng, 1, 2, "_"),
            json!({"type": "string", "description": vocabulary.words(rng, 4, 8, " ")}),
        );
    }
    doc.input_schema = json!({"type": "object", "properties": Value::Object(properties)});
    doc
}

fn index() -> (LexicalIndex, Vec<ToolDoc>) {
    let mut rng = Rng(0x5eed_1234_abcd_9876);
    let vocabulary = Vocabulary::new(&mut rng);
    let tools: Vec<ToolDoc> = (0..TOOLS).map(|i| tool(i, &vocabulary, &mut rng)).collect();
    let mut index = LexicalIndex::new(LexicalConfig::default());
    for doc in &tools {
        index.upsert(doc);
    }
    (index, tools)
}

fn bench_discovery(c: &mut Criterion) {
    let (mut index, tools) = index();
    let short = "get the weather forecast for a city and send it to the team channel";
    let long = "We are building a travel assistant: given the customer's booking, find the \
                flight status, the hotel address and the weather forecast at the destination \
                city, convert the price to the local currency and email a summary report";

    c.bench_function("discover 10k tools, 13-word task, k=10", |b| {
        b.iter(|| black_box(index.search(&Query::new(black_box(short), 10))))
    });
    c.bench_function("discover 10k tools, 40-word task, k=10", |b| {
        b.iter(|| black_box(index.search(&Query::new(black_box(long), 10))))
    });

    let mut replaced = tools[TOOLS / 2].clone();
    replaced.description =
        Some("Fetch the weather forecast and air quality for a city.".to_owned());
    let original = tools[TOOLS / 2].clone();
    let mut flip = false;
    c.bench_function("upsert (replace) one tool in 10k", |b| {
        b.iter(|| {
            flip = !flip;
            black_box(index.upsert(if flip { &replaced } else { &original }))
        })
    });
}

criterion_group!(benches, bench_discovery);
criterion_main!(benches);
