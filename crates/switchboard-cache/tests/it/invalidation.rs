//! Invalidation by key, by tag, and of loads in flight.

use std::sync::Arc;

use switchboard_cache::{Cache, Loaded, Served};
use tokio::sync::Semaphore;

use crate::support::{Counter, cache, load_ok, wait_until};

async fn load_tagged(cache: &Cache<String, String>, key: &str, tags: &[&str]) -> Served {
    let value = format!("{key}-value");
    let lookup = cache
        .get_or_load(key.to_owned(), tags, move || async move {
            Ok::<_, std::io::Error>(Loaded::new(value))
        })
        .await
        .expect("load");
    lookup.served
}

async fn present(cache: &Cache<String, String>, key: &str) -> bool {
    cache.peek(&key.to_owned()).await.is_some()
}

#[tokio::test]
async fn invalidate_drops_one_key() {
    let cache = cache();
    load_tagged(&cache, "a", &[]).await;
    load_tagged(&cache, "b", &[]).await;

    cache.invalidate(&"a".to_owned()).await.expect("invalidate");
    assert!(!present(&cache, "a").await);
    assert!(present(&cache, "b").await);
    assert_eq!(load_tagged(&cache, "a", &[]).await, Served::Fresh);
}

#[tokio::test]
async fn invalidate_tag_drops_every_entry_with_the_tag() {
    let cache = cache();
    load_tagged(&cache, "github/tools", &["github"]).await;
    load_tagged(&cache, "github/prompts", &["github", "prompts"]).await;
    load_tagged(&cache, "gitlab/tools", &["gitlab"]).await;
    load_tagged(&cache, "untagged", &[]).await;

    cache.invalidate_tag("github").await.expect("invalidate");
    let left = [
        present(&cache, "github/tools").await,
        present(&cache, "github/prompts").await,
        present(&cache, "gitlab/tools").await,
        present(&cache, "untagged").await,
    ];
    assert_eq!(left, [false, false, true, true]);

    // Entries stored after the invalidation are not affected by it.
    assert_eq!(
        load_tagged(&cache, "github/tools", &["github"]).await,
        Served::Fresh
    );
    assert!(present(&cache, "github/tools").await);
}

#[tokio::test]
async fn load_in_flight_during_invalidation_is_not_cached() {
    let cache = cache();
    let gate = Arc::new(Semaphore::new(0));
    let in_flight = tokio::spawn({
        let cache = cache.clone();
        let gate = Arc::clone(&gate);
        async move {
            cache
                .get_or_load("k".to_owned(), &["github"], move || async move {
                    let _permit = gate.acquire().await.expect("gate open");
                    Ok::<_, std::io::Error>(Loaded::new("old".to_owned()))
                })
                .await
        }
    });
    wait_until(|| cache.stats().loads == 1).await;

    cache.invalidate_tag("github").await.expect("invalidate");
    // A caller after the invalidation does not join the old load.
    let runs = Counter::default();
    let after = load_ok(&cache, "k", "new", &runs).await.expect("new load");
    assert_eq!((after.served, after.value.as_str()), (Served::Fresh, "new"));

    gate.add_permits(1);
    let old = in_flight.await.expect("task").expect("old load");
    assert_eq!((old.served, old.value.as_str()), (Served::Fresh, "old"));
    // The old load did not overwrite the new value.
    let now = cache.peek(&"k".to_owned()).await.expect("entry");
    assert_eq!(now.value, "new");
}

#[tokio::test]
async fn clear_local_drops_everything() {
    let cache = cache();
    load_tagged(&cache, "a", &["x"]).await;
    load_tagged(&cache, "b", &[]).await;
    cache.clear_local();
    assert!(!present(&cache, "a").await);
    assert!(!present(&cache, "b").await);
}
