//! Tool arguments from `key=value` pairs, typed by the tool's input schema.
//!
//! Command-line tools and chat front-ends receive arguments as text. [`from_pairs`] turns
//! `key=value` pairs into a JSON object using the types the tool's `inputSchema` declares for
//! each property: `count=3` becomes the number 3 when `count` is an integer, and the string
//! `"3"` when it is a string. `key:=JSON` gives a raw JSON value.

use rmcp::model::JsonObject;
use serde_json::Value;

use crate::Error;

/// Builds an argument object from `key=value` (typed by the schema) and `key:=json` pairs.
///
/// # Errors
/// A pair without `=`, a value that does not fit the declared type, or invalid raw JSON.
pub fn from_pairs(tool: &str, schema: &JsonObject, pairs: &[String]) -> Result<JsonObject, Error> {
    let invalid = |message: String| Error::InvalidArguments {
        tool: tool.to_owned(),
        message,
    };
    let properties = schema.get("properties").and_then(Value::as_object);
    let mut out = JsonObject::new();
    for pair in pairs {
        if let Some((key, raw)) = pair.split_once(":=") {
            let value = serde_json::from_str(raw)
                .map_err(|e| invalid(format!("{key}: {raw:?} is not valid JSON: {e}")))?;
            out.insert(key.to_owned(), value);
            continue;
        }
        let Some((key, text)) = pair.split_once('=') else {
            return Err(invalid(format!(
                "{pair:?} is not KEY=VALUE (or KEY:=JSON for a raw JSON value)"
            )));
        };
        if key.is_empty() {
            return Err(invalid(format!("{pair:?} has an empty key")));
        }
        let declared = properties
            .and_then(|p| p.get(key))
            .map(declared_types)
            .unwrap_or_default();
        let value = typed(text, &declared).ok_or_else(|| {
            invalid(format!(
                "{key}: {text:?} is not {}",
                declared_article(&declared)
            ))
        })?;
        out.insert(key.to_owned(), value);
    }
    Ok(out)
}

/// "an integer", "a string or a number", ….
fn declared_article(declared: &[String]) -> String {
    let first = declared.first().map(String::as_str).unwrap_or("value");
    let article = if first.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {}", declared.join(" or "))
}

/// The JSON types a property schema allows (`type` as a string or a list).
fn declared_types(property: &Value) -> Vec<String> {
    match property.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Converts text to the first declared type it fits; undeclared text is JSON when it parses as
/// a number, boolean, array or object, and a string otherwise.
fn typed(text: &str, declared: &[String]) -> Option<Value> {
    if declared.is_empty() {
        return Some(match serde_json::from_str::<Value>(text) {
            Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::Array(_) | Value::Object(_))) => v,
            _ => Value::String(text.to_owned()),
        });
    }
    declared.iter().find_map(|t| match t.as_str() {
        "string" => Some(Value::String(text.to_owned())),
        "integer" => text.trim().parse::<i64>().ok().map(Value::from),
        "number" => text
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .ok()
            .or_else(|| text.trim().parse::<f64>().ok().map(Value::from)),
        "boolean" => match text.trim() {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
        "null" => (text.trim() == "null").then_some(Value::Null),
        "array" => serde_json::from_str::<Value>(text)
            .ok()
            .filter(Value::is_array),
        "object" => serde_json::from_str::<Value>(text)
            .ok()
            .filter(Value::is_object),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> JsonObject {
        json!({
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "count": {"type": "integer"},
                "ratio": {"type": "number"},
                "flag": {"type": "boolean"},
                "tags": {"type": "array"},
                "maybe": {"type": ["integer", "string"]}
            }
        })
        .as_object()
        .cloned()
        .unwrap_or_default()
    }

    fn pairs(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn values_follow_the_schema() {
        let args = from_pairs(
            "t",
            &schema(),
            &pairs(&[
                "message=42",
                "count=3",
                "ratio=0.5",
                "flag=true",
                "tags=[1,2]",
                "maybe=x",
                "other=7",
                "raw:={\"a\":1}",
            ]),
        )
        .expect("valid");
        assert_eq!(
            Value::Object(args),
            json!({"message": "42", "count": 3, "ratio": 0.5, "flag": true, "tags": [1, 2],
                   "maybe": "x", "other": 7, "raw": {"a": 1}})
        );
    }

    #[test]
    fn mismatches_are_named() {
        let err = from_pairs("t", &schema(), &pairs(&["count=three"])).expect_err("bad");
        assert_eq!(
            err.to_string(),
            "invalid arguments for t: count: \"three\" is not an integer"
        );
        let err = from_pairs("t", &schema(), &pairs(&["count"])).expect_err("bad");
        assert!(err.to_string().contains("is not KEY=VALUE"));
    }
}
