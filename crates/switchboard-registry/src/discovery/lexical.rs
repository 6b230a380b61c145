//! The BM25F index: term postings over five tool fields, updated in place.
//!
//! Layout, chosen for one query over ten thousand tools in well under a
//! millisecond:
//!
//! - a term dictionary maps each distinct term to a dense `u32` id;
//! - each term id has a postings list, sorted by document slot, holding the
//!   term frequency in each field;
//! - each document slot keeps its field lengths in one dense array; the
//!   per-field sums give the average lengths, so adding or removing a tool
//!   keeps the statistics exact without touching other tools;
//! - a query adds up scores in a dense array, then keeps the best `k` in a
//!   small heap.
//!
//! Scoring is BM25F (Robertson and Zaragoza, "The Probabilistic Relevance
//! Framework: BM25 and Beyond", §3.5): a term's frequency in each field is
//! length-normalized with that field's average, weighted, and summed into one
//! pseudo-frequency, which then saturates once with `k1`:
//!
//! ```text
//! tf~(t, d) = Σ_f  w_f · tf(t, d, f) / (1 − b + b · len(d, f) / avglen(f))
//! score(q, d) = Σ_{t ∈ q}  idf(t) · tf~ / (k1 + tf~)
//! idf(t) = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5))
//! ```

use std::{
    cmp::{Ordering, Reverse},
    collections::{BinaryHeap, HashMap},
    fmt,
};

use serde_json::Value;

use super::{
    Field, FieldMatch, Hit, LexicalConfig, Query, Rank, Reason, ServerFilter, ToolDoc,
    tokenize::Tokenizer,
};

/// Number of indexed fields (see [`Field`]).
const FIELDS: usize = Field::ALL.len();

/// One document's occurrences of one term, per field.
#[derive(Clone, Copy, Debug)]
struct Posting {
    slot: u32,
    tf: [u16; FIELDS],
}

/// What the index remembers about one live tool.
#[derive(Clone, Debug)]
struct Slot {
    key: String,
    server: u32,
    name: String,
    /// The distinct term ids of this tool, to find its postings on removal.
    terms: Vec<u32>,
    /// Terms per field, to take them off the length sums on removal.
    lengths: [u32; FIELDS],
}

/// A query term: its id, how often the query says it, and the word it came from.
#[derive(Debug)]
struct QueryTerm {
    id: u32,
    count: f32,
    surface: String,
}

/// A scored live tool, ordered best first: higher score, then smaller key.
#[derive(Clone, Copy, Debug)]
struct Candidate<'a> {
    score: f32,
    slot: u32,
    entry: &'a Slot,
}

impl Ord for Candidate<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.entry.key.cmp(&self.entry.key))
    }
}

impl PartialOrd for Candidate<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Candidate<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate<'_> {}

/// A lexical BM25F index over tool documentation, updated one tool at a time.
///
/// Needs no model and no network. [`upsert`](Self::upsert) and
/// [`remove`](Self::remove) touch only the changed tool's postings; the
/// scores afterwards are exactly those of an index built from scratch with
/// the same tools.
///
/// ```
/// use serde_json::json;
/// use switchboard_registry::discovery::{LexicalConfig, LexicalIndex, Query, ToolDoc};
///
/// let mut index = LexicalIndex::new(LexicalConfig::default());
/// let mut weather = ToolDoc::new("weather", "get_forecast");
/// weather.description = Some("Weather forecast for a city.".to_owned());
/// weather.input_schema = json!({"properties": {"city": {"type": "string"}}});
/// index.upsert(&weather);
/// index.upsert(&ToolDoc::new("github", "create_issue"));
///
/// let hits = index.search(&Query::new("what is the weather forecast in Paris?", 5));
/// assert_eq!(hits[0].key, "weather.get_forecast");
/// ```
pub struct LexicalIndex {
    config: LexicalConfig,
    tokenizer: Tokenizer,
    term_ids: HashMap<String, u32>,
    /// Postings by term id, each sorted by slot.
    postings: Vec<Vec<Posting>>,
    /// Tools by slot; `None` marks a free slot.
    slots: Vec<Option<Slot>>,
    /// Field lengths by slot (zero for free slots), kept apart for locality.
    lengths: Vec<[f32; FIELDS]>,
    /// Server id by slot.
    slot_server: Vec<u32>,
    free: Vec<u32>,
    by_key: HashMap<String, u32>,
    server_ids: HashMap<String, u32>,
    server_names: Vec<String>,
    /// Sum of field lengths over live tools (integers, so removal is exact).
    length_sums: [u64; FIELDS],
    live: usize,
}

impl fmt::Debug for LexicalIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LexicalIndex")
            .field("tools", &self.live)
            .field("terms", &self.term_ids.len())
            .field("servers", &self.server_names)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl LexicalIndex {
    /// An empty index.
    pub fn new(config: LexicalConfig) -> Self {
        LexicalIndex {
            tokenizer: Tokenizer::new(config.stem),
            config,
            term_ids: HashMap::new(),
            postings: Vec::new(),
            slots: Vec::new(),
            lengths: Vec::new(),
            slot_server: Vec::new(),
            free: Vec::new(),
            by_key: HashMap::new(),
            server_ids: HashMap::new(),
            server_names: Vec::new(),
            length_sums: [0; FIELDS],
            live: 0,
        }
    }

    /// The settings this index scores with.
    pub fn config(&self) -> &LexicalConfig {
        &self.config
    }

    /// How many tools are indexed.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no tool is indexed.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Whether a tool with this key is indexed.
    pub fn contains(&self, key: &str) -> bool {
        self.by_key.contains_key(key)
    }

    /// Adds a tool, or replaces the one with the same key; returns whether
    /// one was replaced.
    pub fn upsert(&mut self, doc: &ToolDoc) -> bool {
        let replaced = self.remove(&doc.key);
        let mut counts: HashMap<u32, [u16; FIELDS]> = HashMap::new();
        let mut lengths = [0u32; FIELDS];
        for (field, text) in field_texts(doc) {
            let f = field.index();
            let term_ids = &mut self.term_ids;
            let postings = &mut self.postings;
            self.tokenizer.each_term(&text, |term, _| {
                let next = postings.len() as u32;
                let id = *term_ids.entry(term).or_insert_with(|| {
                    postings.push(Vec::new());
                    next
                });
                let tf = &mut counts.entry(id).or_insert([0; FIELDS])[f];
                *tf = tf.saturating_add(1);
                lengths[f] += 1;
            });
        }

        let server = self.server_id(&doc.server);
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                self.lengths.push([0.0; FIELDS]);
                self.slot_server.push(0);
                (self.slots.len() - 1) as u32
            }
        };
        let at = slot as usize;
        let mut counts: Vec<(u32, [u16; FIELDS])> = counts.into_iter().collect();
        counts.sort_unstable_by_key(|&(id, _)| id);
        for &(id, tf) in &counts {
            let list = &mut self.postings[id as usize];
            let pos = list.partition_point(|p| p.slot < slot);
            list.insert(pos, Posting { slot, tf });
        }
        let terms = counts.into_iter().map(|(id, _)| id).collect();
        for (sum, &length) in self.length_sums.iter_mut().zip(&lengths) {
            *sum += u64::from(length);
        }
        self.lengths[at] = lengths.map(|length| length as f32);
        self.slot_server[at] = server;
        self.slots[at] = Some(Slot {
            key: doc.key.clone(),
            server,
            name: doc.name.clone(),
            terms,
            lengths,
        });
        self.by_key.insert(doc.key.clone(), slot);
        self.live += 1;
        replaced
    }

    /// Removes the tool with this key; returns whether it was indexed.
    pub fn remove(&mut self, key: &str) -> bool {
        let Some(slot) = self.by_key.remove(key) else {
            return false;
        };
        let at = slot as usize;
        let Some(entry) = self.slots[at].take() else {
            return false;
        };
        for id in entry.terms {
            let list = &mut self.postings[id as usize];
            if let Ok(pos) = list.binary_search_by_key(&slot, |p| p.slot) {
                list.remove(pos);
            }
        }
        for (sum, &length) in self.length_sums.iter_mut().zip(&entry.lengths) {
            *sum -= u64::from(length);
        }
        self.lengths[at] = [0.0; FIELDS];
        self.free.push(slot);
        self.live -= 1;
        true
    }

    /// The best `query.k` tools for the task, best first, after the
    /// query's server filter and threshold.
    pub fn search(&self, query: &Query<'_>) -> Vec<Hit> {
        let terms = self.query_terms(query.task);
        let ranked = self.ranked(&terms, &query.servers, query.k);
        let kept = query.threshold.keep(ranked.iter().map(|c| c.score));
        ranked
            .iter()
            .take(kept)
            .enumerate()
            .map(|(i, c)| {
                let mut hit = self.hit(c, &terms);
                hit.reason.lexical = Some(Rank {
                    rank: i + 1,
                    score: c.score,
                });
                hit
            })
            .collect()
    }

    /// The best `limit` tools as (key, score) pairs, best first, with no
    /// threshold; the lexical half of hybrid discovery.
    pub(crate) fn ranked_keys(
        &self,
        task: &str,
        servers: &ServerFilter,
        limit: usize,
    ) -> Vec<(String, f32)> {
        let terms = self.query_terms(task);
        self.ranked(&terms, servers, limit)
            .into_iter()
            .map(|c| (c.entry.key.clone(), c.score))
            .collect()
    }

    /// The server, name and matched fields of an indexed tool for a task.
    pub(crate) fn explain(
        &self,
        key: &str,
        task: &str,
    ) -> Option<(String, String, Vec<FieldMatch>)> {
        let slot = *self.by_key.get(key)?;
        let entry = self.slots[slot as usize].as_ref()?;
        let server = self.server_names[entry.server as usize].clone();
        let matches = self.matches(slot, &self.query_terms(task));
        Some((server, entry.name.clone(), matches))
    }

    fn server_id(&mut self, server: &str) -> u32 {
        if let Some(&id) = self.server_ids.get(server) {
            return id;
        }
        let id = self.server_names.len() as u32;
        self.server_ids.insert(server.to_owned(), id);
        self.server_names.push(server.to_owned());
        id
    }

    fn query_terms(&self, task: &str) -> Vec<QueryTerm> {
        let mut terms: Vec<QueryTerm> = Vec::new();
        self.tokenizer.each_term(task, |term, surface| {
            let Some(&id) = self.term_ids.get(&term) else {
                return;
            };
            match terms.iter_mut().find(|t| t.id == id) {
                Some(t) => t.count += 1.0,
                None => terms.push(QueryTerm {
                    id,
                    count: 1.0,
                    surface: surface.to_owned(),
                }),
            }
        });
        terms
    }

    /// Which servers' tools may be returned, by server id; `None` for all.
    fn allowed_servers(&self, filter: &ServerFilter) -> Option<Vec<bool>> {
        if filter.include.is_empty() && filter.exclude.is_empty() {
            return None;
        }
        Some(
            self.server_names
                .iter()
                .map(|name| filter.allows(name))
                .collect(),
        )
    }

    fn ranked(&self, terms: &[QueryTerm], servers: &ServerFilter, k: usize) -> Vec<Candidate<'_>> {
        if k == 0 || terms.is_empty() || self.live == 0 {
            return Vec::new();
        }
        let allowed = self.allowed_servers(servers);
        let n = self.live as f32;
        let k1 = self.config.k1;
        let b = self.config.b;
        let weights = self.config.weights.as_array();
        // norm(d, f) = (1 − b) + len(d, f) · b / avglen(f)
        let per_length = self
            .length_sums
            .map(|sum| if sum > 0 { b * n / sum as f32 } else { 0.0 });

        let mut scores = vec![0.0f32; self.slots.len()];
        for term in terms {
            let list = &self.postings[term.id as usize];
            if list.is_empty() {
                continue;
            }
            let df = list.len() as f32;
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln() * term.count;
            for posting in list {
                let at = posting.slot as usize;
                if let Some(allowed) = &allowed
                    && !allowed[self.slot_server[at] as usize]
                {
                    continue;
                }
                let lengths = &self.lengths[at];
                let mut tf = 0.0f32;
                for f in 0..FIELDS {
                    if posting.tf[f] > 0 {
                        let norm = (1.0 - b) + lengths[f] * per_length[f];
                        tf += weights[f] * f32::from(posting.tf[f]) / norm;
                    }
                }
                scores[at] += idf * tf / (k1 + tf);
            }
        }

        let mut heap: BinaryHeap<Reverse<Candidate<'_>>> = BinaryHeap::with_capacity(k + 1);
        for (at, &score) in scores.iter().enumerate() {
            if score <= 0.0 {
                continue;
            }
            if heap.len() == k
                && heap
                    .peek()
                    .is_some_and(|Reverse(worst)| score < worst.score)
            {
                continue;
            }
            let Some(entry) = &self.slots[at] else {
                continue;
            };
            heap.push(Reverse(Candidate {
                score,
                slot: at as u32,
                entry,
            }));
            if heap.len() > k {
                heap.pop();
            }
        }
        let mut best: Vec<Candidate<'_>> = heap.into_iter().map(|Reverse(c)| c).collect();
        best.sort_unstable_by(|a, b| b.cmp(a));
        best
    }

    fn hit(&self, candidate: &Candidate<'_>, terms: &[QueryTerm]) -> Hit {
        let entry = candidate.entry;
        Hit {
            key: entry.key.clone(),
            server: self.server_names[entry.server as usize].clone(),
            name: entry.name.clone(),
            score: candidate.score,
            reason: Reason {
                matches: self.matches(candidate.slot, terms),
                lexical: None,
                semantic: None,
            },
        }
    }

    /// The query terms found in each field of a tool, fields in [`Field`] order.
    fn matches(&self, slot: u32, terms: &[QueryTerm]) -> Vec<FieldMatch> {
        let mut matches: Vec<FieldMatch> = Vec::new();
        for field in Field::ALL {
            let f = field.index();
            let found: Vec<String> = terms
                .iter()
                .filter(|term| {
                    let list = &self.postings[term.id as usize];
                    list.binary_search_by_key(&slot, |p| p.slot)
                        .is_ok_and(|pos| list[pos].tf[f] > 0)
                })
                .map(|term| term.surface.clone())
                .collect();
            if !found.is_empty() {
                matches.push(FieldMatch {
                    field,
                    terms: found,
                });
            }
        }
        matches
    }
}

/// The text of each field of a tool. Parameters come from the input schema's
/// `properties`, and from one level of nested object properties (directly or
/// as array `items`).
pub(crate) fn field_texts(doc: &ToolDoc) -> Vec<(Field, String)> {
    let mut param_names = String::new();
    let mut param_descriptions = String::new();
    collect_params(
        &doc.input_schema,
        1,
        &mut param_names,
        &mut param_descriptions,
    );
    vec![
        (Field::Name, doc.name.clone()),
        (Field::Title, doc.title.clone().unwrap_or_default()),
        (
            Field::Description,
            doc.description.clone().unwrap_or_default(),
        ),
        (Field::ParamNames, param_names),
        (Field::ParamDescriptions, param_descriptions),
    ]
}

fn collect_params(schema: &Value, nesting: u32, names: &mut String, descriptions: &mut String) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, property) in properties {
        names.push_str(name);
        names.push(' ');
        for key in ["title", "description"] {
            if let Some(text) = property.get(key).and_then(Value::as_str) {
                descriptions.push_str(text);
                descriptions.push(' ');
            }
        }
        if nesting > 0 {
            collect_params(property, nesting - 1, names, descriptions);
            if let Some(items) = property.get("items") {
                collect_params(items, nesting - 1, names, descriptions);
            }
        }
    }
}
