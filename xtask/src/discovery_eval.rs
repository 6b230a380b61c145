//! `cargo xtask discovery-eval`: tool-discovery quality on the ToolRet tasks.
//!
//! Indexes each task's tools as an MCP client sees them (name, description,
//! input schema), runs every query through the lexical index, and prints
//! Recall@1/5/10 and nDCG@10 beside the reference BM25 figures from
//! `shared/toolret/README.md`. `--run FILE` writes the rankings in the format
//! of `eval_bm25.py --score-run`, to cross-check the metrics.

use std::{
    collections::HashMap,
    env, fs,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};
use switchboard_registry::discovery::{FieldWeights, LexicalConfig, LexicalIndex, Query, ToolDoc};

/// The tasks, in the README's order.
const TASKS: [&str; 4] = ["apibank", "apigen", "gorilla-huggingface", "toolink"];

/// Reference BM25 (query only, per-task corpus, ×100): R@1, R@5, R@10, nDCG@10.
const REFERENCE: [(&str, [f64; 4]); 4] = [
    ("apibank", [32.51, 57.92, 61.39, 51.67]),
    ("apigen", [57.91, 79.88, 85.79, 75.71]),
    ("gorilla-huggingface", [13.80, 27.40, 35.20, 23.79]),
    ("toolink", [18.62, 41.62, 44.23, 38.28]),
];

/// Rankings kept per query, as in ToolRet.
const TOP_K: usize = 100;

const USAGE: &str = "usage: cargo xtask discovery-eval [--data DIR] [--tasks a,b] [--run FILE] \
                     [--k1 X] [--b X] [--weights NAME,TITLE,DESC,PARAM_NAMES,PARAM_DESCS] [--no-stem]";

/// One query's relevant tools and their grades.
struct Judged {
    id: String,
    text: String,
    grades: HashMap<String, f64>,
}

/// Recall@1/5/10 and nDCG@10, averaged over queries (fractions, not ×100).
#[derive(Clone, Copy, Default)]
struct Metrics([f64; 4]);

pub(crate) fn run(args: &[String]) -> Result<()> {
    let mut data = None;
    let mut tasks: Vec<String> = TASKS.iter().map(|t| (*t).to_owned()).collect();
    let mut run_file = None;
    let mut config = LexicalConfig::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--data" => data = Some(PathBuf::from(value()?)),
            "--tasks" => tasks = value()?.split(',').map(str::to_owned).collect(),
            "--run" => run_file = Some(PathBuf::from(value()?)),
            "--k1" => config.k1 = value()?.parse().context("--k1")?,
            "--b" => config.b = value()?.parse().context("--b")?,
            "--weights" => config.weights = parse_weights(value()?)?,
            "--no-stem" => config.stem = false,
            _ => bail!("unknown argument {arg}\n{USAGE}"),
        }
    }
    let data = match data {
        Some(dir) => dir,
        None => data_dir()?,
    };

    println!(
        "lexical BM25F (k1={}, b={}, weights {:?}, stem={}) | data {}",
        config.k1,
        config.b,
        config.weights,
        config.stem,
        data.display()
    );
    println!("numbers x100; in brackets: ours minus the reference BM25 of the README");
    println!(
        "{:<22}{:>6}{:>7}{:>18}{:>18}{:>18}{:>18}{:>10}",
        "task", "#q", "#tools", "Recall@1", "Recall@5", "Recall@10", "nDCG@10", "ms/query"
    );

    let mut runs = Map::new();
    let mut weighted = Metrics::default();
    let mut weighted_reference = Metrics::default();
    let mut total_queries = 0usize;
    for task in &tasks {
        let dir = data.join(task);
        let tools = read_jsonl(&dir.join("tools.jsonl"))?;
        let queries = read_jsonl(&dir.join("queries.jsonl"))?;
        let mut index = LexicalIndex::new(config.clone());
        for tool in &tools {
            index.upsert(&tool_doc(task, tool)?);
        }

        let judged = queries.iter().map(judged).collect::<Result<Vec<_>>>()?;
        let mut sum = Metrics::default();
        let mut rankings = Map::new();
        let started = Instant::now();
        for query in &judged {
            let ranked: Vec<String> = index
                .search(&Query::new(&query.text, TOP_K))
                .into_iter()
                .map(|hit| hit.key)
                .collect();
            let m = metrics(&ranked, &query.grades);
            for i in 0..4 {
                sum.0[i] += m.0[i];
            }
            rankings.insert(query.id.clone(), json!(ranked));
        }
        let per_query_ms = started.elapsed().as_secs_f64() * 1e3 / judged.len().max(1) as f64;
        let n = judged.len().max(1) as f64;
        let mean = Metrics(sum.0.map(|s| s / n));
        let reference = REFERENCE
            .iter()
            .find(|(name, _)| name == task)
            .map(|(_, r)| *r);

        let mut line = format!("{task:<22}{:>6}{:>7}", judged.len(), tools.len());
        for i in 0..4 {
            line.push_str(&cell(mean.0[i] * 100.0, reference.map(|r| r[i])));
        }
        line.push_str(&format!("{per_query_ms:>10.3}"));
        println!("{line}");

        if let Some(reference) = reference {
            let n = judged.len() as f64;
            for (i, r) in reference.iter().enumerate() {
                weighted.0[i] += sum.0[i];
                weighted_reference.0[i] += r / 100.0 * n;
            }
            total_queries += judged.len();
        }
        runs.insert(task.clone(), Value::Object(rankings));
    }

    if total_queries > 0 && tasks.len() > 1 {
        let n = total_queries as f64;
        let mut line = format!("{:<22}{:>6}{:>7}", "all, query-weighted", total_queries, "");
        for i in 0..4 {
            line.push_str(&cell(
                weighted.0[i] / n * 100.0,
                Some(weighted_reference.0[i] / n * 100.0),
            ));
        }
        println!("{line}");
    }

    if let Some(path) = run_file {
        fs::write(&path, serde_json::to_vec(&Value::Object(runs))?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!(
            "rankings written to {}; cross-check with: python3 {}/eval_bm25.py --data {} --score-run {}",
            path.display(),
            data.display(),
            data.display(),
            path.display()
        );
    }
    Ok(())
}

/// `$SWITCHBOARD_TOOLRET`, or `shared/toolret` beside the workspace.
fn data_dir() -> Result<PathBuf> {
    let dir = match env::var_os("SWITCHBOARD_TOOLRET") {
        Some(dir) => PathBuf::from(dir),
        None => crate::workspace_root()?.join("../shared/toolret"),
    };
    let dir = fs::canonicalize(&dir).unwrap_or(dir);
    if !dir.join("apibank/tools.jsonl").is_file() {
        bail!(
            "no ToolRet data at {}: put the `shared/` folder beside the workspace, \
             or point SWITCHBOARD_TOOLRET (or --data) at the folder with apibank/, apigen/, …",
            dir.display()
        );
    }
    Ok(dir)
}

fn parse_weights(text: &str) -> Result<FieldWeights> {
    let w: Vec<f32> = text
        .split(',')
        .map(|x| x.trim().parse::<f32>())
        .collect::<Result<_, _>>()
        .context("--weights takes five numbers")?;
    let [name, title, description, param_names, param_descriptions] = w[..] else {
        bail!(
            "--weights takes five numbers: name, title, description, param names, param descriptions"
        );
    };
    Ok(FieldWeights {
        name,
        title,
        description,
        param_names,
        param_descriptions,
    })
}

fn read_jsonl(path: &Path) -> Result<Vec<Value>> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).with_context(|| format!("{}:{}", path.display(), i + 1))
        })
        .collect()
}

fn text_field(value: &Value, field: &str) -> Option<String> {
    value.get(field).and_then(Value::as_str).map(str::to_owned)
}

/// A ToolRet tool as an MCP `tools/list` entry shows it: its name,
/// description and input schema (`null` when the tool has none). The tool id
/// is the key; the task stands in for the server.
fn tool_doc(task: &str, tool: &Value) -> Result<ToolDoc> {
    let key = text_field(tool, "id").context("tool without an id")?;
    Ok(ToolDoc {
        key,
        server: task.to_owned(),
        name: text_field(tool, "name").unwrap_or_default(),
        title: None,
        description: text_field(tool, "description"),
        input_schema: tool.get("input_schema").cloned().unwrap_or(Value::Null),
    })
}

fn judged(query: &Value) -> Result<Judged> {
    let id = text_field(query, "id").context("query without an id")?;
    let text = text_field(query, "text").with_context(|| format!("query {id} without text"))?;
    let mut grades = HashMap::new();
    if let Some(relevant) = query.get("relevant").and_then(Value::as_array) {
        for tool in relevant.iter().filter_map(Value::as_str) {
            grades.insert(tool.to_owned(), 1.0);
        }
    }
    if let Some(relevance) = query.get("relevance").and_then(Value::as_object) {
        for (tool, grade) in relevance {
            grades.insert(tool.clone(), grade.as_f64().unwrap_or(1.0));
        }
    }
    grades.retain(|_, grade| *grade > 0.0);
    Ok(Judged { id, text, grades })
}

/// Recall@1/5/10 and nDCG@10 of one ranking (trec_eval conventions:
/// gain = grade, log2 discount, ideal ranking from all relevant tools).
fn metrics(ranked: &[String], grades: &HashMap<String, f64>) -> Metrics {
    if grades.is_empty() {
        return Metrics::default();
    }
    let recall = |k: usize| {
        let found = ranked
            .iter()
            .take(k)
            .filter(|id| grades.contains_key(*id))
            .count();
        found as f64 / grades.len() as f64
    };
    let discount = |i: usize| 1.0 / ((i + 2) as f64).log2();
    let dcg: f64 = ranked
        .iter()
        .take(10)
        .enumerate()
        .map(|(i, id)| grades.get(id).copied().unwrap_or(0.0) * discount(i))
        .sum();
    let mut ideal: Vec<f64> = grades.values().copied().collect();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(10)
        .enumerate()
        .map(|(i, g)| g * discount(i))
        .sum();
    Metrics([recall(1), recall(5), recall(10), dcg / idcg])
}

/// `ours (±delta)` in a fixed-width cell.
fn cell(ours: f64, reference: Option<f64>) -> String {
    match reference {
        Some(r) => format!("{:>18}", format!("{ours:.2} ({:+.2})", ours - r)),
        None => format!("{ours:>18.2}"),
    }
}
