//! Second-level tests against a real `redis-server`.
//!
//! Each test starts its own `redis-server` on a free loopback port, without
//! persistence, and kills it when done (even on panic). `redis-server` must
//! be on `PATH`; on Debian: `apt-get install -y redis-server`. Without it the
//! tests fail; they never pass silently.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_cache::json::{JsonCodec, JsonKey};
use switchboard_cache::redis::{RedisConfig, RedisSecondLevel};
use switchboard_cache::{Cache, CacheConfig, Loaded, SecondLevel, Served};

/// A `redis-server` child process, killed on drop.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start() -> RedisServer {
        let port = free_port();
        let spawned = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(error) => panic!(
                "cannot start `redis-server` ({error}); these tests need it on PATH. \
                 Install it with `apt-get install -y redis-server` (Debian/Ubuntu) \
                 or `brew install redis` (macOS)"
            ),
        };
        let server = RedisServer { child, port };
        server.wait_for_ping();
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn wait_for_ping(&self) {
        let start = Instant::now();
        loop {
            if ping(self.port) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "redis-server did not answer PING"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _unused = self.child.kill();
        let _unused = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _unused = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

async fn second_level(server: &RedisServer, max_value_bytes: usize) -> Arc<RedisSecondLevel> {
    let config = RedisConfig {
        url: server.url(),
        max_value_bytes,
        ..RedisConfig::default()
    };
    Arc::new(
        RedisSecondLevel::connect(config)
            .await
            .expect("connect to redis"),
    )
}

async fn instance(server: &RedisServer) -> Cache<JsonKey, Value> {
    Cache::builder(CacheConfig::default())
        .second_level(second_level(server, 64 * 1024).await, Arc::new(JsonCodec))
        .build()
        .expect("build cache")
}

fn key(name: &str) -> JsonKey {
    JsonKey::scoped(&["github", "resources/read"], &json!({"uri": name}))
}

/// Looks `key` up; the loader counts its runs and returns `value`.
async fn load(
    cache: &Cache<JsonKey, Value>,
    key: &JsonKey,
    value: Value,
    runs: &Arc<AtomicUsize>,
) -> Served {
    let runs = Arc::clone(runs);
    let lookup = cache
        .get_or_load(key.clone(), &["github"], move || async move {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>(Loaded::with_ttl(value, Duration::from_secs(60)))
        })
        .await
        .expect("lookup");
    lookup.served
}

/// Polls until `key` is gone from `cache`, for at most 5 s.
async fn wait_until_gone(cache: &Cache<JsonKey, Value>, key: &JsonKey) {
    let start = Instant::now();
    while cache.peek(key).await.is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "invalidation did not arrive in 5 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_an_entry() {
    let server = RedisServer::start();
    let (a, b) = (instance(&server).await, instance(&server).await);
    let runs = Arc::new(AtomicUsize::new(0));
    let key = key("file:///README.md");

    assert_eq!(load(&a, &key, json!("from a"), &runs).await, Served::Fresh);
    assert_eq!(
        load(&b, &key, json!("from b"), &runs).await,
        Served::SecondLevel
    );
    assert_eq!(load(&b, &key, json!("from b"), &runs).await, Served::Hit);
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the loader ran once across both"
    );
    assert_eq!(b.peek(&key).await.expect("entry").value, json!("from a"));
    assert_eq!(b.stats().second_level_hits, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidation_on_one_instance_reaches_the_other() {
    let server = RedisServer::start();
    let (a, b) = (instance(&server).await, instance(&server).await);
    let runs = Arc::new(AtomicUsize::new(0));
    let by_key = key("file:///by-key");
    let by_tag = key("file:///by-tag");
    for key in [&by_key, &by_tag] {
        load(&a, key, json!("v1"), &runs).await;
        assert_eq!(load(&b, key, json!("v1"), &runs).await, Served::SecondLevel);
    }

    a.invalidate(&by_key).await.expect("invalidate key");
    // A reloads at once, before its own broadcast could come back to it.
    assert_eq!(load(&a, &by_key, json!("v2"), &runs).await, Served::Fresh);
    wait_until_gone(&b, &by_key).await;
    assert!(
        b.peek(&by_tag).await.is_some(),
        "only the key was invalidated"
    );
    // A ignores its own broadcast: its new entry survives it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(a.peek(&by_key).await.expect("kept").value, json!("v2"));

    a.invalidate_tag("github").await.expect("invalidate tag");
    wait_until_gone(&b, &by_tag).await;

    // The second level dropped the tagged entries too: B loads afresh.
    let before = runs.load(Ordering::SeqCst);
    assert_eq!(load(&b, &by_tag, json!("v3"), &runs).await, Served::Fresh);
    assert_eq!(runs.load(Ordering::SeqCst), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_value_is_not_stored() {
    let server = RedisServer::start();
    let store = second_level(&server, 1024).await;

    let error = store
        .set(b"big", &vec![b'x'; 2048], Duration::from_secs(60), &[])
        .await
        .expect_err("over the limit");
    assert!(error.is_too_large(), "{error}");
    assert!(store.get(b"big").await.expect("get").is_none());

    store
        .set(b"small", b"ok", Duration::from_secs(60), &[])
        .await
        .expect("set");
    let found = store.get(b"small").await.expect("get").expect("stored");
    assert_eq!(found.value, b"ok");
    assert!(found.ttl.is_some_and(|ttl| ttl <= Duration::from_secs(60)));

    // Through two caches: the value is not shared, so both load it.
    let instance = async || {
        Cache::builder(CacheConfig::default())
            .second_level(second_level(&server, 1024).await, Arc::new(JsonCodec))
            .build()
            .expect("build cache")
    };
    let (a, b) = (instance().await, instance().await);
    let runs = Arc::new(AtomicUsize::new(0));
    let key = key("file:///big");
    let big = json!("y".repeat(4096));
    assert_eq!(load(&a, &key, big.clone(), &runs).await, Served::Fresh);
    assert_eq!(load(&b, &key, big, &runs).await, Served::Fresh);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(a.stats().second_level_errors, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_degrades_to_a_local_cache() {
    let server = RedisServer::start();
    let cache = instance(&server).await;
    drop(server);

    let runs = Arc::new(AtomicUsize::new(0));
    let key = key("file:///offline");
    assert_eq!(load(&cache, &key, json!("v"), &runs).await, Served::Fresh);
    assert_eq!(load(&cache, &key, json!("v"), &runs).await, Served::Hit);
    assert!(cache.stats().second_level_errors >= 1);
    assert!(
        cache
            .invalidate(&key)
            .await
            .expect_err("redis is gone")
            .is_second_level()
    );
    assert!(
        cache.peek(&key).await.is_none(),
        "the local entry is dropped anyway"
    );
}
