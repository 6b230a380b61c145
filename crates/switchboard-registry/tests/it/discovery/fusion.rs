//! Reciprocal rank fusion and cosine similarity.

use switchboard_registry::discovery::{cosine, reciprocal_rank_fusion};

#[track_caller]
fn close(a: f32, b: f32) {
    assert!((a - b).abs() < 1e-6, "{a} != {b}");
}

#[test]
fn rrf_adds_one_over_k_plus_rank() {
    let lexical = ["a", "b", "c"];
    let semantic = ["c", "a"];
    let fused = reciprocal_rank_fusion(&[&lexical, &semantic], 60.0);
    let keys: Vec<&str> = fused.iter().map(|(key, _)| *key).collect();
    assert_eq!(keys, ["a", "c", "b"]);
    close(fused[0].1, 1.0 / 61.0 + 1.0 / 62.0);
    close(fused[1].1, 1.0 / 63.0 + 1.0 / 61.0);
    close(fused[2].1, 1.0 / 62.0);
}

#[test]
fn rrf_breaks_ties_by_key_and_handles_empty_rankings() {
    let fused = reciprocal_rank_fusion(&[&["y", "x"], &["x", "y"]], 1.0);
    assert_eq!(
        fused.iter().map(|(key, _)| *key).collect::<Vec<_>>(),
        ["x", "y"]
    );
    close(fused[0].1, 0.5 + 1.0 / 3.0);
    assert!(reciprocal_rank_fusion(&[&[], &[]], 60.0).is_empty());
    let single = reciprocal_rank_fusion(&[&["only"]], 0.0);
    assert_eq!(single, [("only", 1.0)]);
}

#[test]
fn cosine_similarity() {
    close(cosine(&[1.0, 0.0], &[0.0, 1.0]), 0.0);
    close(cosine(&[1.0, 2.0], &[2.0, 4.0]), 1.0);
    close(cosine(&[1.0, 0.0], &[-1.0, 0.0]), -1.0);
    close(cosine(&[1.0, 1.0], &[1.0, 0.0]), 1.0 / 2f32.sqrt());
    close(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    close(cosine(&[1.0], &[1.0, 0.0]), 0.0);
}
