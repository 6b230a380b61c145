//! Audit chain tests: a clean log verifies, every kind of tampering is named at its first bad
//! record, redaction is recursive, the chain resumes after reopening.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    thread,
    time::Duration,
};

use serde_json::{Map, Value, json};

use super::*;

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.jsonl");
    Fixture { _dir: dir, path }
}

fn call(n: u32) -> AuditRecord {
    AuditRecord::tool_call("files", "read_file", CallOutcome::Ok)
        .with_principal("alice")
        .with_arguments(json!({ "path": format!("/tmp/{n}") }))
        .with_latency(Duration::from_micros(1500))
        .with_attempts(1)
        .with_cache("miss")
        .with_route("files-a")
        .with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
}

/// A log of `n` records; returns their receipts.
fn write_log(path: &Path, n: u32) -> Vec<AuditReceipt> {
    let log = AuditLog::open(path).expect("open");
    (1..=n)
        .map(|i| log.append(call(i)).expect("append"))
        .collect()
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .expect("read")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    fs::write(
        path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .expect("write");
}

fn parse(line: &str) -> Map<String, Value> {
    serde_json::from_str(line).expect("json line")
}

/// Asserts that verification fails at `line` / `seq` with a problem matching `problem`.
#[track_caller]
fn check_bad(path: &Path, line: u64, seq: Option<u64>, problem: fn(&Problem) -> bool) {
    let error = verify(path).expect_err("tampered log must not verify");
    assert_eq!(error.line(), Some(line), "{error}");
    assert_eq!(error.seq(), seq, "{error}");
    assert!(error.problem().is_some_and(problem), "{error}");
}

#[test]
fn clean_log_verifies() {
    let f = fixture();
    let receipts = write_log(&f.path, 5);
    let summary = verify(&f.path).expect("clean log");
    assert_eq!(summary.records, 5);
    assert_eq!(summary.last_seq, 5);
    assert_eq!(summary.last_hash, receipts[4].hash);

    let lines = lines(&f.path);
    let first = parse(&lines[0]);
    assert_eq!(first["seq"], json!(1));
    assert_eq!(first["prev"], json!(GENESIS));
    assert_eq!(first["hash"], json!(receipts[0].hash));
    assert_eq!(parse(&lines[1])["prev"], json!(receipts[0].hash));
    for key in [
        "ts",
        "kind",
        "principal",
        "server",
        "tool",
        "arguments",
        "outcome",
        "latency_us",
    ] {
        assert!(first.contains_key(key), "{key} in {}", lines[0]);
    }
    assert_eq!(first["latency_us"], json!(1500));
    assert!(lines[0].ends_with(&format!(",\"hash\":\"{}\"}}", receipts[0].hash)));
}

#[test]
fn empty_log_verifies() {
    let f = fixture();
    fs::write(&f.path, "").expect("write");
    assert_eq!(verify(&f.path).expect("empty log"), VerifySummary::empty());
}

#[test]
fn edited_line_is_named() {
    let f = fixture();
    write_log(&f.path, 5);
    let mut lines = lines(&f.path);
    lines[2] = lines[2].replace("alice", "mallory");
    write_lines(&f.path, &lines);
    check_bad(&f.path, 3, Some(3), |p| {
        matches!(p, Problem::HashMismatch { .. })
    });
}

#[test]
fn edited_line_with_recomputed_hash_breaks_the_next_link() {
    let f = fixture();
    write_log(&f.path, 5);
    let mut lines = lines(&f.path);
    let mut forged = parse(&lines[2]);
    forged.remove("hash");
    forged.insert("principal".into(), json!("mallory"));
    lines[2] = chain::seal(&forged).0;
    write_lines(&f.path, &lines);
    check_bad(&f.path, 4, Some(4), |p| {
        matches!(p, Problem::BrokenLink { .. })
    });
}

#[test]
fn deleted_line_is_named() {
    let f = fixture();
    write_log(&f.path, 5);
    let mut lines = lines(&f.path);
    lines.remove(2);
    write_lines(&f.path, &lines);
    check_bad(&f.path, 3, Some(4), |p| {
        *p == Problem::SequenceGap {
            expected: 3,
            found: 4,
        }
    });
}

#[test]
fn reordered_lines_are_named() {
    let f = fixture();
    write_log(&f.path, 5);
    let mut lines = lines(&f.path);
    lines.swap(1, 2);
    write_lines(&f.path, &lines);
    check_bad(&f.path, 2, Some(3), |p| {
        *p == Problem::SequenceGap {
            expected: 2,
            found: 3,
        }
    });
}

#[test]
fn unparsable_and_truncated_lines_are_named() {
    let f = fixture();
    write_log(&f.path, 3);
    let mut lines = lines(&f.path);
    lines.insert(1, "not json".to_owned());
    write_lines(&f.path, &lines);
    check_bad(&f.path, 2, None, |p| matches!(p, Problem::Unparsable(_)));

    let f = fixture();
    write_log(&f.path, 3);
    let text = fs::read_to_string(&f.path).expect("read");
    fs::write(&f.path, &text[..text.len() - 10]).expect("truncate");
    check_bad(
        &f.path,
        3,
        None,
        |p| matches!(p, Problem::Unparsable(why) if why.contains("newline")),
    );
}

#[test]
fn error_names_line_seq_and_problem() {
    let f = fixture();
    write_log(&f.path, 3);
    let mut lines = lines(&f.path);
    lines.remove(0);
    write_lines(&f.path, &lines);
    let error = verify(&f.path).expect_err("first record deleted");
    let text = error.to_string();
    assert!(
        text.contains("line 1 (seq 2): sequence gap: expected seq 1, found 2"),
        "{text}"
    );
}

#[test]
fn open_refuses_a_corrupted_log() {
    let f = fixture();
    write_log(&f.path, 3);
    let mut lines = lines(&f.path);
    lines[1] = lines[1].replace("files-a", "files-z");
    write_lines(&f.path, &lines);
    let error = AuditLog::open(&f.path).expect_err("corrupted");
    let AuditError::Corrupt(cause) = &error else {
        panic!("unexpected error: {error}")
    };
    assert_eq!((cause.line(), cause.seq()), (Some(2), Some(2)));
    assert!(
        error
            .to_string()
            .starts_with("refusing to append to a corrupted audit log")
    );
}

#[test]
fn reopening_resumes_the_chain() {
    let f = fixture();
    let first = write_log(&f.path, 2);
    let log = AuditLog::open(&f.path).expect("reopen");
    assert_eq!(log.head(), first[1]);
    let third = log.append(call(3)).expect("append");
    assert_eq!(third.seq, 3);
    assert_eq!(parse(&lines(&f.path)[2])["prev"], json!(first[1].hash));
    drop(log);
    let summary = verify(&f.path).expect("resumed chain verifies");
    assert_eq!((summary.records, summary.last_hash), (3, third.hash));
}

#[test]
fn arguments_are_redacted_recursively() {
    let f = fixture();
    let log = AuditLog::open(&f.path).expect("open");
    let arguments = json!({
        "path": "/srv/data",
        "Password": "hunter2",
        "options": {
            "headers": { "Authorization": "Bearer abc", "Accept": "text/plain" },
            "accounts": [ { "user": "bob", "api_key": "k-123" }, { "user": "eve", "apiKey": "k-456" } ],
            "client_secret": { "nested": "whole value goes" }
        }
    });
    log.append(AuditRecord::tool_call("http", "fetch", CallOutcome::Ok).with_arguments(arguments))
        .expect("append");
    let line = &lines(&f.path)[0];
    for secret in [
        "hunter2",
        "Bearer abc",
        "k-123",
        "k-456",
        "whole value goes",
    ] {
        assert!(!line.contains(secret), "{secret} leaked: {line}");
    }
    let record = parse(line);
    assert_eq!(
        record["arguments"],
        json!({
            "path": "/srv/data",
            "Password": REDACTED,
            "options": {
                "headers": { "Authorization": REDACTED, "Accept": "text/plain" },
                "accounts": [ { "user": "bob", "api_key": REDACTED }, { "user": "eve", "apiKey": REDACTED } ],
                "client_secret": REDACTED
            }
        })
    );
    verify(&f.path).expect("verifies");
}

#[test]
fn custom_redact_keys() {
    let f = fixture();
    let config = AuditConfig {
        file: Some(f.path.clone()),
        redact_keys: vec!["ssn".to_owned()],
        ..AuditConfig::default()
    };
    let log = AuditLog::open_with(config).expect("open");
    let arguments = json!({ "ssn": "123-45-6789", "token": "kept: not in the custom list" });
    log.append(AuditRecord::tool_call("hr", "lookup", CallOutcome::Ok).with_arguments(arguments))
        .expect("append");
    let record = parse(&lines(&f.path)[0]);
    assert_eq!(
        record["arguments"],
        json!({ "ssn": REDACTED, "token": "kept: not in the custom list" })
    );
}

#[test]
fn policy_decisions_are_records_too() {
    let f = fixture();
    let log = AuditLog::open(&f.path).expect("open");
    log.append(
        AuditRecord::policy_decision("files", "delete_file", Decision::Deny)
            .with_principal("bob")
            .with_rule("readonly-users"),
    )
    .expect("append");
    log.append(
        AuditRecord::tool_call("files", "read_file", CallOutcome::Error)
            .with_error_class("timeout"),
    )
    .expect("append");
    let lines = lines(&f.path);
    let decision = parse(&lines[0]);
    assert_eq!(
        (&decision["kind"], &decision["outcome"], &decision["rule"]),
        (
            &json!("policy_decision"),
            &json!("deny"),
            &json!("readonly-users")
        )
    );
    let failed = parse(&lines[1]);
    assert_eq!(
        (&failed["outcome"], &failed["error_class"]),
        (&json!("error"), &json!("timeout"))
    );
    assert_eq!(verify(&f.path).expect("verifies").records, 2);
}

#[test]
fn concurrent_appends_form_one_chain() {
    let f = fixture();
    let log = AuditLog::open(&f.path).expect("open");
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = log.clone();
            thread::spawn(move || {
                for i in 0..50 {
                    log.append(call(t * 100 + i)).expect("append");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("thread");
    }
    let summary = verify(&f.path).expect("verifies");
    assert_eq!((summary.records, summary.last_seq), (400, 400));
}

#[tokio::test]
async fn async_appends() {
    let f = fixture();
    let log = AuditLog::open(&f.path).expect("open");
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move { log.append_async(call(i)).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("append");
    }
    assert_eq!(verify(&f.path).expect("verifies").records, 20);
}

#[test]
fn keys_are_canonically_sorted_at_every_depth() {
    let mut fields = Map::new();
    fields.insert("seq".into(), json!(1));
    fields.insert("prev".into(), json!(GENESIS));
    fields.insert(
        "arguments".into(),
        json!({ "z": 1, "a": { "y": [ { "b": 2, "a": 1 } ], "x": 0.1 } }),
    );
    let (line, _) = chain::seal(&fields);
    assert!(
        line.starts_with(r#"{"arguments":{"a":{"x":0.1,"y":[{"a":1,"b":2}]},"z":1},"prev":"#),
        "{line}"
    );
}

/// Collects the `record` field of `switchboard::audit` events.
#[derive(Default, Clone)]
struct Capture(Arc<Mutex<Vec<String>>>);

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Visitor<'a>(&'a mut Option<String>);
        impl tracing::field::Visit for Visitor<'_> {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "record" {
                    *self.0 = Some(value.to_owned());
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        if event.metadata().target() == TRACING_TARGET {
            let mut record = None;
            event.record(&mut Visitor(&mut record));
            self.0.lock().expect("lock").extend(record);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn tracing_sink_emits_each_record() {
    let capture = Capture::default();
    let config = AuditConfig {
        tracing: true,
        ..AuditConfig::default()
    };
    let log = AuditLog::open_with(config).expect("tracing-only log");
    tracing::subscriber::with_default(capture.clone(), || {
        log.append(call(1).with_arguments(json!({ "token": "t" })))
            .expect("append");
        log.append(call(2)).expect("append");
    });
    let records = capture.0.lock().expect("lock").clone();
    assert_eq!(records.len(), 2);
    let first = parse(&records[0]);
    assert_eq!(
        (&first["seq"], &first["arguments"]["token"]),
        (&json!(1), &json!(REDACTED))
    );
    assert_eq!(parse(&records[1])["prev"], first["hash"]);
}

#[test]
fn a_log_needs_a_sink() {
    let error = AuditLog::open_with(AuditConfig::default()).expect_err("no sink");
    assert_eq!(
        error.to_string(),
        "the audit log has no sink: set `file` or `tracing`"
    );
}
