//! Output for people (tables, readable content) and for scripts (`--json`).

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use base64::Engine;
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;
use switchboard::{
    CacheState, CacheStats, CallOutput, Discovered, Outcome, PromptEntry, ResourceEntry,
    ServerStatus, TemplateEntry, ToolEntry,
    rmcp::model::{ContentBlock, GetPromptResult, ReadResourceResult, ResourceContents},
};

pub(crate) struct Printer {
    pub(crate) json: bool,
}

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    table
}

fn print_json(value: &impl Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("mcpctl: cannot encode the output as JSON: {e}"),
    }
}

fn one_line(text: Option<&str>, max: usize) -> String {
    let text = text
        .unwrap_or("")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if text.chars().count() > max {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        text
    }
}

impl Printer {
    pub(crate) fn servers(&self, servers: &[ServerStatus]) {
        if self.json {
            return print_json(&servers);
        }
        let mut t = table(&[
            "server",
            "transport",
            "state",
            "protocol",
            "tools",
            "breaker",
            "last error",
        ]);
        for s in servers {
            let c = s.connection.as_ref();
            let error = c
                .and_then(|c| c.last_error.clone())
                .or_else(|| s.catalog_error.clone());
            t.add_row(vec![
                s.name.to_string(),
                s.transport.to_owned(),
                s.state().to_owned(),
                c.and_then(|c| c.protocol_version.clone())
                    .unwrap_or_default(),
                s.tools.to_string(),
                breaker_text(s),
                one_line(error.as_deref(), 80),
            ]);
        }
        println!("{t}");
    }

    pub(crate) fn health(&self, servers: &[ServerStatus]) {
        if self.json {
            return print_json(&servers);
        }
        let mut t = table(&[
            "server",
            "state",
            "health",
            "p50 ms",
            "p99 ms",
            "calls",
            "failures",
            "retries",
            "breaker",
            "last error",
        ]);
        for s in servers {
            let breaker = breaker_text(s);
            let mut health = s.health.state.as_str().to_owned();
            if let Some(left) = s.health.ejected_for {
                health.push_str(&format!(" ({:.0}s)", left.as_secs_f64().ceil()));
            }
            let latency = |v: f64| {
                if s.latency.count == 0 {
                    "-".to_owned()
                } else {
                    format!("{v:.1}")
                }
            };
            let error = s
                .connection
                .as_ref()
                .and_then(|c| c.last_error.clone())
                .or_else(|| s.catalog_error.clone());
            t.add_row(vec![
                s.name.to_string(),
                s.state().to_owned(),
                health,
                latency(s.latency.p50_ms),
                latency(s.latency.p99_ms),
                s.stats.calls.to_string(),
                s.stats.failures.to_string(),
                s.stats.retries.to_string(),
                breaker,
                one_line(error.as_deref(), 60),
            ]);
        }
        println!("{t}");
    }

    pub(crate) fn discovered(&self, tools: &[Discovered]) {
        if self.json {
            return print_json(&tools);
        }
        if tools.is_empty() {
            println!("no tool matches");
            return;
        }
        let mut t = table(&["tool", "score", "why"]);
        for d in tools {
            t.add_row(vec![
                d.name.clone(),
                format!("{:.2}", d.score),
                d.reason.join("; "),
            ]);
        }
        println!("{t}");
    }

    pub(crate) fn metrics(&self, servers: &[ServerStatus], cache: Option<CacheStats>) {
        if self.json {
            let cache = cache.map(|s| {
                serde_json::json!({
                    "hits": s.hits, "misses": s.misses, "stale_served": s.stale_served,
                    "coalesced": s.coalesced, "loads": s.loads, "load_errors": s.load_errors,
                    "evictions": s.evictions,
                })
            });
            let servers: Vec<_> = servers
                .iter()
                .map(|s| serde_json::json!({"server": s.name, "stats": s.stats, "latency": s.latency}))
                .collect();
            return print_json(&serde_json::json!({"servers": servers, "cache": cache}));
        }
        let mut t = table(&[
            "server",
            "calls",
            "failures",
            "retries",
            "budget out",
            "breaker opens",
            "rejected",
            "timeouts",
            "fallbacks",
            "routed",
            "p50 ms",
            "p99 ms",
        ]);
        for s in servers {
            let st = &s.stats;
            t.add_row(vec![
                s.name.to_string(),
                st.calls.to_string(),
                st.failures.to_string(),
                st.retries.to_string(),
                st.budget_exhausted.to_string(),
                st.breaker_opens.to_string(),
                (st.breaker_rejections + st.rate_limited + st.bulkhead_rejections).to_string(),
                st.timeouts.to_string(),
                st.fallbacks.to_string(),
                st.routed.to_string(),
                format!("{:.1}", s.latency.p50_ms),
                format!("{:.1}", s.latency.p99_ms),
            ]);
        }
        println!("{t}");
        self.cache_stats(cache);
    }

    pub(crate) fn cache_stats(&self, stats: Option<CacheStats>) {
        if self.json {
            return print_json(&stats.map(|s| {
                serde_json::json!({
                    "hits": s.hits, "misses": s.misses, "stale_served": s.stale_served,
                    "coalesced": s.coalesced, "loads": s.loads, "load_errors": s.load_errors,
                    "evictions": s.evictions, "hit_ratio": s.hit_ratio(),
                })
            }));
        }
        let Some(s) = stats else {
            println!("caching is off");
            return;
        };
        let mut t = table(&[
            "hits",
            "misses",
            "stale served",
            "coalesced",
            "loads",
            "load errors",
            "evictions",
        ]);
        t.add_row(vec![
            s.hits.to_string(),
            s.misses.to_string(),
            s.stale_served.to_string(),
            s.coalesced.to_string(),
            s.loads.to_string(),
            s.load_errors.to_string(),
            s.evictions.to_string(),
        ]);
        println!("{t}");
    }

    pub(crate) fn tools(&self, tools: &[ToolEntry]) {
        if self.json {
            return print_json(&tools);
        }
        let mut t = table(&["tool", "hints", "description"]);
        for entry in tools {
            let mut hints = Vec::new();
            if entry.is_read_only() {
                hints.push("read-only");
            }
            if entry.is_idempotent() {
                hints.push("idempotent");
            }
            if entry
                .tool
                .annotations
                .as_ref()
                .and_then(|a| a.destructive_hint)
                .unwrap_or(false)
            {
                hints.push("destructive");
            }
            t.add_row(vec![
                entry.name.clone(),
                hints.join(", "),
                one_line(entry.tool.description.as_deref(), 90),
            ]);
        }
        println!("{t}");
    }

    pub(crate) fn call(&self, output: &CallOutput, save_dir: Option<&Path>) {
        if self.json {
            return print_json(output);
        }
        let mut saver = Saver::new(save_dir);
        for block in &output.result.content {
            print_content(block, &mut saver);
        }
        if let Some(structured) = &output.result.structured_content {
            println!(
                "{}",
                serde_json::to_string_pretty(structured).unwrap_or_default()
            );
        }
        let status = if output.is_tool_error() {
            "tool error"
        } else {
            "ok"
        };
        let cache = match output.cache {
            CacheState::Bypass | CacheState::Miss => String::new(),
            CacheState::Stale { age } => {
                format!(", stale cached answer ({:.1}s old)", age.as_secs_f64())
            }
            other => format!(", cache {}", other.as_str()),
        };
        let attempts = if output.provenance.attempts > 1 {
            format!(", {} attempts", output.provenance.attempts)
        } else {
            String::new()
        };
        eprintln!(
            "— {status} from {} in {:.1} ms{attempts}{cache}",
            output.provenance.server,
            output.provenance.latency.as_secs_f64() * 1000.0
        );
        if let Some(reason) = &output.degraded {
            eprintln!("— degraded: {reason}");
        }
    }

    pub(crate) fn resources(&self, resources: &[ResourceEntry], templates: &[TemplateEntry]) {
        if self.json {
            #[derive(Serialize)]
            struct Both<'a> {
                resources: &'a [ResourceEntry],
                templates: &'a [TemplateEntry],
            }
            return print_json(&Both {
                resources,
                templates,
            });
        }
        let mut t = table(&["server", "uri", "name", "mime type"]);
        for r in resources {
            t.add_row(vec![
                r.server.to_string(),
                r.resource.uri.clone(),
                r.resource.name.clone(),
                r.resource.mime_type.clone().unwrap_or_default(),
            ]);
        }
        for r in templates {
            t.add_row(vec![
                r.server.to_string(),
                r.template.uri_template.clone(),
                format!("{} (template)", r.template.name),
                r.template.mime_type.clone().unwrap_or_default(),
            ]);
        }
        println!("{t}");
    }

    pub(crate) fn resource(&self, result: &Outcome<ReadResourceResult>, save_dir: Option<&Path>) {
        if self.json {
            return print_json(result);
        }
        let mut saver = Saver::new(save_dir);
        for contents in &result.value.contents {
            print_resource_contents(contents, &mut saver);
        }
        eprintln!(
            "— from {} in {:.1} ms",
            result.provenance.server,
            result.provenance.latency.as_secs_f64() * 1000.0
        );
    }

    pub(crate) fn prompts(&self, prompts: &[PromptEntry]) {
        if self.json {
            return print_json(&prompts);
        }
        let mut t = table(&["prompt", "arguments", "description"]);
        for p in prompts {
            let args = p
                .prompt
                .arguments
                .iter()
                .flatten()
                .map(|a| {
                    if a.required.unwrap_or(false) {
                        a.name.clone()
                    } else {
                        format!("[{}]", a.name)
                    }
                })
                .collect::<Vec<_>>()
                .join(" ");
            t.add_row(vec![
                p.name.clone(),
                args,
                one_line(p.prompt.description.as_deref(), 80),
            ]);
        }
        println!("{t}");
    }

    pub(crate) fn prompt(&self, result: &GetPromptResult) {
        if self.json {
            return print_json(result);
        }
        if let Some(description) = &result.description {
            println!("# {description}");
        }
        for message in &result.messages {
            print!("{:?}: ", message.role);
            match &message.content {
                ContentBlock::Text(text) => println!("{}", text.text),
                other => println!("{}", serde_json::to_string(other).unwrap_or_default()),
            }
        }
    }
}

/// A breaker as a few words: state, failure rate, time until the next probe.
fn breaker_text(server: &ServerStatus) -> String {
    match &server.breaker {
        None => "off".to_owned(),
        Some(b) => {
            let mut text = b.state.to_owned();
            if let Some(rate) = b.failure_rate {
                text.push_str(&format!(" {:.0}% fail", rate * 100.0));
            }
            if let Some(open) = b.open_for.filter(|d| !d.is_zero()) {
                text.push_str(&format!(", retry in {:.0}s", open.as_secs_f64().ceil()));
            }
            text
        }
    }
}

/// Writes binary content to files, or summarises it.
struct Saver {
    dir: Option<PathBuf>,
    count: usize,
}

impl Saver {
    fn new(dir: Option<&Path>) -> Self {
        Self {
            dir: dir.map(Path::to_owned),
            count: 0,
        }
    }

    /// Saves base64 data or describes it; returns the description.
    fn binary(&mut self, kind: &str, mime: &str, data: &str) -> String {
        let bytes = base64::engine::general_purpose::STANDARD.decode(data.trim());
        let Ok(bytes) = bytes else {
            return format!("[{kind} {mime}: invalid base64]");
        };
        let Some(dir) = &self.dir else {
            return format!(
                "[{kind} {mime}, {} bytes; pass --save-dir DIR to save it]",
                bytes.len()
            );
        };
        self.count += 1;
        let extension = mime.rsplit('/').next().unwrap_or("bin");
        let path = dir.join(format!("{kind}-{}.{extension}", self.count));
        let written = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, &bytes));
        match written {
            Ok(()) => format!(
                "[{kind} {mime}, {} bytes saved to {}]",
                bytes.len(),
                path.display()
            ),
            Err(e) => format!("[{kind} {mime}: cannot save to {}: {e}]", path.display()),
        }
    }
}

fn print_content(block: &ContentBlock, saver: &mut Saver) {
    let mut stdout = std::io::stdout().lock();
    let _ = match block {
        ContentBlock::Text(text) => writeln!(stdout, "{}", text.text),
        ContentBlock::Image(image) => {
            writeln!(
                stdout,
                "{}",
                saver.binary("image", &image.mime_type, &image.data)
            )
        }
        ContentBlock::Audio(audio) => {
            writeln!(
                stdout,
                "{}",
                saver.binary("audio", &audio.mime_type, &audio.data)
            )
        }
        ContentBlock::Resource(embedded) => {
            drop(stdout);
            print_resource_contents(&embedded.resource, saver);
            Ok(())
        }
        ContentBlock::ResourceLink(link) => {
            writeln!(stdout, "[resource link: {} ({})]", link.uri, link.name)
        }
        other => writeln!(
            stdout,
            "{}",
            serde_json::to_string(other).unwrap_or_default()
        ),
    };
}

fn print_resource_contents(contents: &ResourceContents, saver: &mut Saver) {
    match contents {
        ResourceContents::TextResourceContents { uri, text, .. } => {
            eprintln!("[resource {uri}]");
            println!("{text}");
        }
        ResourceContents::BlobResourceContents {
            uri,
            blob,
            mime_type,
            ..
        } => {
            let mime = mime_type.as_deref().unwrap_or("application/octet-stream");
            println!("[resource {uri}] {}", saver.binary("blob", mime, blob));
        }
        other => println!("{}", serde_json::to_string(other).unwrap_or_default()),
    }
}
