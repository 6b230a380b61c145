//! A cache hit for a key built from a ~1 KiB JSON argument object, with the
//! canonicalisation inside the measured loop, on a current-thread runtime.
//!
//! Run: `cargo bench -p switchboard-cache --bench hit`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use switchboard_cache::json::{JsonKey, canonical_json};
use switchboard_cache::{Cache, CacheConfig, Loaded};

/// A tool-call argument object of about 1 KiB, nested a little.
fn arguments() -> Value {
    let mut filters = serde_json::Map::new();
    for index in 0..12 {
        filters.insert(
            format!("filter_{index:02}"),
            json!({"op": "eq", "value": index * 7}),
        );
    }
    json!({
        "query": "repo:switchboard is:open label:bug sort:updated-desc",
        "page": 3,
        "per_page": 50.0,
        "include_archived": false,
        "fields": ["title", "body", "labels", "assignees", "milestone", "created_at"],
        "owner": {"login": "switchboard-developers", "type": "Organization", "id": 123456789},
        "filters": filters,
        "description": "x".repeat(300),
    })
}

fn bench_hit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let args = arguments();
    let size = canonical_json(&args).len();
    assert!(
        (900..=1300).contains(&size),
        "argument object is {size} bytes"
    );

    let config = CacheConfig {
        default_ttl: Duration::from_secs(3600),
        ..CacheConfig::default()
    };
    let cache: Cache<JsonKey, Arc<Value>> = Cache::new(config);
    let value = Arc::new(json!({"content": [{"type": "text", "text": "result"}]}));
    runtime.block_on(async {
        let key = JsonKey::scoped(&["github", "tools/call", "search_issues"], &args);
        let loaded = Loaded::new(Arc::clone(&value));
        cache.insert(key, &["github"], loaded).await;
    });

    c.bench_function("hit/1KiB-json-key", |b| {
        b.iter_custom(|iterations| {
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iterations {
                    let key = JsonKey::scoped(
                        &["github", "tools/call", "search_issues"],
                        black_box(&args),
                    );
                    let lookup = cache
                        .get_or_load(key, &["github"], || async {
                            Err::<Loaded<Arc<Value>>, _>(std::io::Error::other("miss"))
                        })
                        .await;
                    black_box(lookup.expect("hit"));
                }
                start.elapsed()
            })
        });
    });

    c.bench_function("canonical_json/1KiB", |b| {
        b.iter(|| canonical_json(black_box(&args)))
    });
    // Reference: serde_json's own (unsorted, unnormalised) serialisation.
    c.bench_function("reference/serde_json_to_string/1KiB", |b| {
        b.iter(|| serde_json::to_string(black_box(&args)))
    });

    let key = JsonKey::scoped(&["github", "tools/call", "search_issues"], &args);
    c.bench_function("hit/prebuilt-key", |b| {
        b.iter_custom(|iterations| {
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iterations {
                    let lookup = cache.peek(black_box(&key)).await;
                    black_box(lookup);
                }
                start.elapsed()
            })
        });
    });
}

criterion_group!(benches, bench_hit);
criterion_main!(benches);
