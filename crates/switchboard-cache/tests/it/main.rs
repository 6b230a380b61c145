//! Integration tests of `switchboard-cache` through its public API.
//!
//! Time-dependent tests run on paused Tokio time: `tokio::time::advance`
//! moves the clock the cache judges freshness by.

mod coalescing;
mod freshness;
mod invalidation;
#[cfg(feature = "json")]
mod json;
mod stats;
mod support;

#[test]
fn scoped_object_keys_equal_scoped_value_keys() {
    let value = serde_json::json!({"b": [1, 2.0, {"z": null, "a": true}], "a": "x"});
    let map = value.as_object().cloned().unwrap_or_default();
    let a = switchboard_cache::json::JsonKey::scoped(&["s", "t"], &value);
    let b = switchboard_cache::json::JsonKey::scoped_object(&["s", "t"], &map);
    assert_eq!(a.as_str(), b.as_str());
    assert_eq!(a.fingerprint(), b.fingerprint());
}
