//! One routing choice: `Router::pick` for each strategy over 3 and 16 replicas, and a whole
//! routed call's bookkeeping (pick, start, finish).
//!
//! Run: `cargo bench -p switchboard-registry --bench routing`.

use std::{hint::black_box, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use switchboard_registry::routing::{ReplicaInfo, RouteRequest, Router, Strategy};

fn replicas(n: usize) -> Vec<ReplicaInfo> {
    (0..n)
        .map(|i| ReplicaInfo {
            region: Some(if i % 2 == 0 { "eu" } else { "us" }.to_owned()),
            zone: Some(format!("z{}", i % 4)),
            weight: 1 + (i as u32 % 3),
            priority: i as u32,
            ..ReplicaInfo::new(format!("r{i}"))
        })
        .collect()
}

fn bench_routing(c: &mut Criterion) {
    let request = RouteRequest {
        region: Some("eu"),
        zone: Some("z2"),
        ..RouteRequest::default()
    };
    for n in [3, 16] {
        for (name, strategy) in [
            ("p2c", Strategy::P2c),
            ("round_robin", Strategy::RoundRobin),
            ("weighted", Strategy::Weighted),
            ("priority", Strategy::Priority),
            ("locality", Strategy::Locality),
        ] {
            let router = Router::new(strategy, replicas(n), 0.5);
            for r in 0..n {
                // Different latencies, so that P2C and locality compare something.
                router
                    .start(r)
                    .finish(Some(Duration::from_micros(100 + 50 * r as u64)));
            }
            c.bench_function(&format!("pick {name}, {n} replicas"), |b| {
                b.iter(|| black_box(router.pick(black_box(&request))));
            });
        }
    }
    let router = Router::new(Strategy::P2c, replicas(3), 0.5);
    c.bench_function("p2c pick + start + finish, 3 replicas", |b| {
        b.iter(|| {
            let pick = router.pick(&request).expect("a replica");
            router.start(pick.replica).finish(None);
        });
    });
}

criterion_group!(benches, bench_routing);
criterion_main!(benches);
