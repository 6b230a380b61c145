//! Embedders in process: the cache, fusion in hybrid discovery and degraded
//! mode on a bad answer.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use switchboard_registry::discovery::{CachedEmbedder, EmbedFuture, Embedder, Mode, Query};

use super::{bag_of_words, hybrid};

/// An in-process embedder that counts its calls, and can lose a vector.
#[derive(Debug, Default)]
struct Counting {
    calls: AtomicUsize,
    texts: AtomicUsize,
    drop_one: bool,
}

impl Embedder for Counting {
    fn embed<'a>(&'a self, texts: &'a [String]) -> EmbedFuture<'a> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.texts.fetch_add(texts.len(), Ordering::SeqCst);
            let skip = usize::from(self.drop_one);
            Ok(texts.iter().skip(skip).map(|t| bag_of_words(t)).collect())
        })
    }
}

#[tokio::test]
async fn cache_asks_once_per_distinct_text() {
    let inner = Arc::new(Counting::default());
    let cached = CachedEmbedder::new(inner.clone(), 100, 10);
    let vectors = cached.vectors(&["a b", "c", "a b"]).await.expect("vectors");
    assert_eq!(vectors.len(), 3);
    assert_eq!(*vectors[0], *bag_of_words("a b"));
    assert_eq!(vectors[0], vectors[2]);
    assert_eq!(
        (
            inner.calls.load(Ordering::SeqCst),
            inner.texts.load(Ordering::SeqCst)
        ),
        (1, 2)
    );

    let again = cached
        .embed(&["c".to_owned(), "a b".to_owned()])
        .await
        .expect("vectors");
    assert_eq!(again, [bag_of_words("c"), bag_of_words("a b")]);
    assert_eq!(
        inner.calls.load(Ordering::SeqCst),
        1,
        "served from the cache"
    );
}

#[tokio::test]
async fn a_short_answer_degrades_with_the_count() {
    let discovery = hybrid(Arc::new(Counting {
        drop_one: true,
        ..Counting::default()
    }));
    let found = discovery.discover(&Query::new("read a file", 3)).await;
    assert_eq!(found.mode, Mode::Lexical);
    assert_eq!(
        found.degraded.as_deref(),
        Some("embedder returned 3 vectors for 4 texts")
    );
}
