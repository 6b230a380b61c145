//! Canonical JSON: equivalence cases, exact output, and a property test
//! that key order and number spelling do not change the key.

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{Value, json};
use switchboard_cache::json::{JsonKey, canonical_json};
use switchboard_cache::{Cache, CacheConfig, Loaded, Served};

fn key_of(text: &str) -> JsonKey {
    let value: Value = serde_json::from_str(text).expect("valid json");
    JsonKey::new(&value)
}

#[test]
fn equivalent_values_give_equal_keys() {
    let equal = [
        (r#"{"a":1,"b":2}"#, r#"{"b":2,"a":1.0}"#),
        ("1", "1e0"),
        ("1", "1.0"),
        ("1", "10e-1"),
        ("[1.5]", "[15e-1]"),
        ("-0.0", "0"),
        ("-3", "-3.0"),
        ("100000000000000000000", "1e20"),
        ("9007199254740992", "9007199254740992.0"),
        (
            r#"{"x":{"z":1,"y":[true,null]}}"#,
            r#"{ "x" : { "y" : [ true , null ] , "z" : 1.0 } }"#,
        ),
        (r#""\u00e9""#, r#""é""#),
        (r#""\/""#, r#""/""#),
    ];
    for (left, right) in equal {
        assert_eq!(key_of(left), key_of(right), "{left} vs {right}");
        assert_eq!(key_of(left).as_str(), key_of(right).as_str());
    }
}

#[test]
fn different_values_give_different_keys() {
    let different = [
        ("1", r#""1""#),
        ("[1,2]", "[2,1]"),
        (r#"{"a":1}"#, r#"{"a":2}"#),
        (r#"{"a":1}"#, r#"{"A":1}"#),
        ("1.5", "1"),
        ("null", "false"),
        ("{}", "[]"),
        (r#"{"a":{}}"#, r#"{"a":[]}"#),
    ];
    for (left, right) in different {
        assert_ne!(key_of(left), key_of(right), "{left} vs {right}");
    }
}

#[test]
fn canonical_text_is_exact() {
    let cases = [
        (
            json!({"b": 2, "a": [1.0, "x", null, true]}),
            r#"{"a":[1,"x",null,true],"b":2}"#,
        ),
        (json!(0.1), "1e-1"),
        (json!(-2.5), "-2.5e0"),
        (json!(1e300), "1e300"),
        (json!(i64::MIN), "-9223372036854775808"),
        (json!(u64::MAX), "18446744073709551615"),
        (
            json!("tab\there \"q\" \u{7f}"),
            "\"tab\\there \\\"q\\\" \u{7f}\"",
        ),
        (json!({"": {}, "é": [], "a": 1}), r#"{"":{},"a":1,"é":[]}"#),
    ];
    for (value, expected) in cases {
        assert_eq!(canonical_json(&value), expected);
    }
}

#[test]
fn scoped_key_is_the_canonical_array() {
    let args = json!({"b": [1, 2], "a": "x"});
    let key = JsonKey::scoped(&["github", "tools/call"], &args);
    assert_eq!(
        key.as_str(),
        canonical_json(&json!(["github", "tools/call", args]))
    );
    assert_ne!(key, JsonKey::scoped(&["gitlab", "tools/call"], &args));
    assert_ne!(key, JsonKey::new(&args));
}

#[tokio::test]
async fn reordered_arguments_hit_the_same_entry() {
    let cache: Cache<JsonKey, Arc<Value>> = Cache::new(CacheConfig::default());
    let first = JsonKey::scoped(&["github", "search"], &json!({"q": "rust", "limit": 10}));
    cache
        .get_or_load(first, &["github"], || async {
            Ok::<_, std::io::Error>(Loaded::new(Arc::new(json!({"hits": 3}))))
        })
        .await
        .expect("load");

    let second = JsonKey::scoped(&["github", "search"], &json!({"limit": 10.0, "q": "rust"}));
    let hit = cache
        .get_or_load(second, &["github"], || async {
            Err::<Loaded<Arc<Value>>, _>(std::io::Error::other("not called"))
        })
        .await
        .expect("hit");
    assert_eq!(hit.served, Served::Hit);
    assert_eq!(*hit.value, json!({"hits": 3}));
}

/// Writes an object with members in `order`, each integer spelled in
/// style 0 (`5`), 1 (`5.0`) or 2 (`5e0`).
fn render(members: &[(String, i32)], order: &[usize], styles: &[u8]) -> String {
    let parts: Vec<String> = order
        .iter()
        .map(|&index| {
            let (key, number) = &members[index];
            let key = serde_json::to_string(key).expect("string");
            match styles[index] {
                0 => format!("{key}:{number}"),
                1 => format!("{key}:{number}.0"),
                _ => format!("{key}:{number}e0"),
            }
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

fn object_with_permutation() -> impl Strategy<Value = (Vec<(String, i32)>, Vec<usize>, Vec<u8>)> {
    proptest::collection::btree_map("\\PC{0,8}", any::<i32>(), 0..16).prop_flat_map(|map| {
        let members: Vec<(String, i32)> = map.into_iter().collect();
        let len = members.len();
        let order = Just((0..len).collect::<Vec<_>>()).prop_shuffle();
        let styles = proptest::collection::vec(0u8..3, len);
        (Just(members), order, styles)
    })
}

proptest! {
    #[test]
    fn key_order_and_number_spelling_do_not_change_the_key(
        (members, order, styles) in object_with_permutation()
    ) {
        let plain_order: Vec<usize> = (0..members.len()).collect();
        let plain = render(&members, &plain_order, &vec![0; members.len()]);
        let permuted = render(&members, &order, &styles);
        prop_assert_eq!(key_of(&plain), key_of(&permuted));

        // Canonical text is itself canonical.
        let text = key_of(&permuted).as_str().to_owned();
        let again = key_of(&text);
        prop_assert_eq!(again.as_str(), text.as_str());
    }

    #[test]
    fn canonical_text_parses_back_to_an_equivalent_value(
        (members, order, styles) in object_with_permutation()
    ) {
        let text = render(&members, &order, &styles);
        let value: Value = serde_json::from_str(&text).expect("valid json");
        let reparsed: Value = serde_json::from_str(&canonical_json(&value)).expect("valid json");
        let object = reparsed.as_object().expect("object");
        prop_assert_eq!(object.len(), members.len());
        for (key, number) in &members {
            prop_assert_eq!(object.get(key).and_then(Value::as_i64), Some(i64::from(*number)));
        }
    }
}
