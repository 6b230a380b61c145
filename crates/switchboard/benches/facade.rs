//! The facade's hot paths, side by side in one run, against the testkit server over stdio:
//!
//! - `cache_hit`: a cached tool call with a ~1 KiB argument object (key canonicalisation
//!   included);
//! - `uncached_stdio`: the same call through the whole call path to the server (`no_cache`);
//! - `raw_rmcp_stdio`: the same call on the bare rmcp peer of the same session.
//!
//! Needs the testkit binary: `cargo build --release -p switchboard-testkit` (or debug); the
//! bench says so when it is missing. Run: `cargo bench -p switchboard --bench facade`.

use std::{path::PathBuf, time::Duration};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use switchboard::{
    CallOptions, Switchboard,
    rmcp::model::{CallToolRequestParams, JsonObject},
    transport::{ServerSpec, StdioSpec, TransportSpec},
};

fn testkit() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target");
    ["release", "debug"]
        .iter()
        .map(|p| root.join(p).join("switchboard-testkit"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("build the testkit server first: cargo build --release -p switchboard-testkit")
        })
}

/// An argument object of about 1 KiB.
fn arguments() -> JsonObject {
    let value = json!({
        "message": "m".repeat(600),
        "tags": ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"],
        "options": {"depth": 3, "ratio": 0.25, "strict": true, "labels": {"a": 1, "b": 2, "c": 3}},
        "filters": [{"field": "name", "op": "eq", "value": "x"}, {"field": "size", "op": "gt", "value": 10}],
        "cursor": "eyJvZmZzZXQiOjEwMCwibGltaXQiOjUwfQ==",
    });
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

fn benches(c: &mut Criterion) {
    // One thread, like the cache crate's own hit benchmark: the figure is the cost of the call
    // path, not of waking another worker.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("runtime: {e}"),
    };
    let spec = ServerSpec::new(
        "kit",
        TransportSpec::Stdio(StdioSpec::new(testkit().display().to_string(), ["stdio"])),
    );
    let sb = runtime
        .block_on(Switchboard::builder().server(spec).build())
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let args = arguments();
    let size = serde_json::to_string(&args).map(|s| s.len()).unwrap_or(0);
    eprintln!("argument object: {size} bytes");
    runtime
        .block_on(sb.call("kit.echo", Some(args.clone())))
        .unwrap_or_else(|e| panic!("first call: {e}"));

    let mut group = c.benchmark_group("facade");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("cache_hit", |b| {
        b.to_async(&runtime).iter_batched(
            || Some(args.clone()),
            |args| async { sb.call("kit.echo", args).await },
            BatchSize::SmallInput,
        );
    });
    let uncached = CallOptions {
        no_cache: true,
        ..CallOptions::default()
    };
    group.bench_function("uncached_stdio", |b| {
        b.to_async(&runtime).iter_batched(
            || Some(args.clone()),
            |args| sb.call_with("kit.echo", args, uncached.clone()),
            BatchSize::SmallInput,
        );
    });
    let peer = sb
        .connection("kit")
        .and_then(|c| c.peer().map_err(Into::into))
        .unwrap_or_else(|e| panic!("peer: {e}"));
    group.bench_function("raw_rmcp_stdio", |b| {
        b.to_async(&runtime).iter_batched(
            || {
                let mut params = CallToolRequestParams::new("echo");
                params.arguments = Some(args.clone());
                params
            },
            |params| peer.call_tool(params),
            BatchSize::SmallInput,
        );
    });
    group.finish();
    runtime.block_on(sb.shutdown());
}

criterion_group!(facade, benches);
criterion_main!(facade);
