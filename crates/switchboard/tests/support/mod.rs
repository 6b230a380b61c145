//! What the heap-counting tests (`leak.rs`, `telemetry_allocs.rs`) share: the testkit server and
//! the calls they make through the full stack.

use std::path::PathBuf;

use switchboard::{
    CallOptions, Switchboard,
    rmcp::model::JsonObject,
    transport::{ServerSpec, StdioSpec, TransportSpec},
};

/// The runtime these tests drive the stack on: two worker threads, as on the loadtest machine.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The testkit server binary, debug build first.
pub(crate) fn testkit() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target");
    ["debug", "release"]
        .iter()
        .map(|p| root.join(p).join("switchboard-testkit"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("build the testkit server first: cargo build -p switchboard-testkit")
        })
}

/// The testkit server over stdio, named `testkit`.
pub(crate) fn testkit_spec() -> ServerSpec {
    ServerSpec::new(
        "testkit",
        TransportSpec::Stdio(StdioSpec::new(
            testkit().display().to_string(),
            vec!["stdio".to_owned()],
        )),
    )
}

/// `n` successful calls of `testkit.echo`, cache off, `workers` at a time.
pub(crate) async fn echo_calls(sb: &Switchboard, n: usize, workers: usize) {
    let options = CallOptions {
        no_cache: true,
        ..CallOptions::default()
    };
    let mut arguments = JsonObject::new();
    arguments.insert("message".to_owned(), "hello".into());
    let workers = (0..workers).map(|_| {
        let (sb, arguments, options) = (sb.clone(), arguments.clone(), options.clone());
        async move {
            for _ in 0..n / workers {
                let output = sb
                    .call_with("testkit.echo", Some(arguments.clone()), options.clone())
                    .await
                    .expect("call");
                assert!(!output.is_tool_error());
            }
        }
    });
    futures::future::join_all(workers).await;
}
