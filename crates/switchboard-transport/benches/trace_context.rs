//! What carrying a W3C trace context in `params._meta` costs on the wire, in rmcp itself:
//! a `tools/call` request made and serialized the way the client sends it, and the same
//! message parsed the way a server reads it, each without `_meta` and with a `traceparent`.
//!
//! Telemetry writes one `traceparent` per attempt (`docs/telemetry.md`); this is the part of its
//! cost that no change on our side of rmcp can remove, since the 2026-07-28 revision puts trace
//! context in `_meta` and rmcp serializes and parses it. The figures bound from below what
//! telemetry on can cost against off in `cargo xtask loadtest steady --targets telemetry`
//! (`docs/benchmarks.md`).
//!
//! The `…_extra` cases measure the difference directly: the two variants alternate in small
//! chunks within each sample, so that the machine's load, which moves the absolute figures by
//! tens of percent on a shared 2-core machine, falls on both alike.
//!
//! Run: `cargo bench -p switchboard-transport --bench trace_context`.

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use criterion::{Criterion, criterion_group, criterion_main};
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, ClientJsonRpcMessage, ClientRequest, JsonObject,
    RequestId, RequestMetaObject,
};
use serde_json::{Value, json};

/// A `traceparent` as telemetry writes it: version, trace id, span id, sampled.
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The loadtest's call: `echo` with one short string argument.
fn arguments() -> JsonObject {
    let mut arguments = JsonObject::new();
    arguments.insert("message".to_owned(), Value::from("hello"));
    arguments
}

/// The request bytes of one attempt: params made as the facade makes them (name, a copy of the
/// arguments, the `_meta` when given), then serialized as rmcp's stdio codec writes a message.
fn request_bytes(arguments: &JsonObject, meta: Option<JsonObject>) -> Vec<u8> {
    let mut params = CallToolRequestParams::new("echo");
    params.arguments = Some(arguments.clone());
    params.meta = meta.map(RequestMetaObject::from);
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
    let message = ClientJsonRpcMessage::request(request, RequestId::Number(17));
    serde_json::to_vec(&message).expect("a request serializes")
}

/// Runs `base` and `variant` `iters` times each, alternating in chunks, and returns how much
/// longer the `variant` runs took in all (zero if they were not slower).
fn paired<A, B>(
    iters: u64,
    mut base: impl FnMut() -> A,
    mut variant: impl FnMut() -> B,
) -> Duration {
    const CHUNK: u64 = 32;
    let (mut base_time, mut variant_time) = (Duration::ZERO, Duration::ZERO);
    let mut left = iters;
    while left > 0 {
        let n = left.min(CHUNK);
        let start = Instant::now();
        for _ in 0..n {
            black_box(base());
        }
        base_time += start.elapsed();
        let start = Instant::now();
        for _ in 0..n {
            black_box(variant());
        }
        variant_time += start.elapsed();
        left -= n;
    }
    variant_time.saturating_sub(base_time)
}

fn bench_trace_context(c: &mut Criterion) {
    let arguments = arguments();
    let mut meta = JsonObject::new();
    meta.insert("traceparent".to_owned(), Value::from(TRACEPARENT));

    let mut group = c.benchmark_group("tools_call");
    group.bench_function("client/serialize", |b| {
        b.iter(|| request_bytes(black_box(&arguments), None));
    });
    group.bench_function("client/serialize/traceparent", |b| {
        b.iter(|| request_bytes(black_box(&arguments), Some(black_box(&meta).clone())));
    });

    let plain = request_bytes(&arguments, None);
    let traced = request_bytes(&arguments, Some(meta.clone()));
    let parsed: Value = serde_json::from_slice(&traced).expect("json");
    assert_eq!(
        parsed["params"]["_meta"],
        json!({ "traceparent": TRACEPARENT })
    );
    for bytes in [&plain, &traced] {
        serde_json::from_slice::<ClientJsonRpcMessage>(bytes).expect("the request parses");
    }
    group.bench_function("server/parse", |b| {
        b.iter(|| serde_json::from_slice::<ClientJsonRpcMessage>(black_box(&plain)));
    });
    group.bench_function("server/parse/traceparent", |b| {
        b.iter(|| serde_json::from_slice::<ClientJsonRpcMessage>(black_box(&traced)));
    });

    // The differences themselves, measured side by side: both variants run in alternating
    // chunks within each sample, so the machine's load drifts over both alike, and the sample's
    // time is what the variant with the `traceparent` took more.
    group.bench_function("client/serialize/traceparent_extra", |b| {
        b.iter_custom(|iters| {
            // Both copy the `_meta` map (writing it is telemetry's cost, not rmcp's); only the
            // second sends it.
            paired(
                iters,
                || {
                    black_box(black_box(&meta).clone());
                    request_bytes(black_box(&arguments), None)
                },
                || request_bytes(black_box(&arguments), Some(black_box(&meta).clone())),
            )
        });
    });
    group.bench_function("server/parse/traceparent_extra", |b| {
        b.iter_custom(|iters| {
            paired(
                iters,
                || serde_json::from_slice::<ClientJsonRpcMessage>(black_box(&plain)),
                || serde_json::from_slice::<ClientJsonRpcMessage>(black_box(&traced)),
            )
        });
    });
    group.finish();
}

criterion_group!(benches, bench_trace_context);
criterion_main!(benches);
