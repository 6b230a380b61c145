//! Durations written as a whole number with a unit: `"250ms"`, `"30s"`, `"5m"`, `"1h"`.

use std::time::Duration;

/// What a duration must look like, for error messages.
pub(super) const EXPECTED: &str =
    r#"write a whole number with a unit: "250ms", "30s", "5m" or "1h""#;

/// Parses `"250ms"`, `"30s"`, `"5m"` or `"1h"`; `None` for anything else.
pub(super) fn parse(text: &str) -> Option<Duration> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    if digits.is_empty() {
        return None;
    }
    let value: u64 = digits.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(value)),
        "s" => Some(Duration::from_secs(value)),
        "m" => Some(Duration::from_secs(value.checked_mul(60)?)),
        "h" => Some(Duration::from_secs(value.checked_mul(3600)?)),
        _ => None,
    }
}

/// Reads the `timeout` number of other hosts: values up to 3600 are seconds (Cline), larger
/// values are milliseconds (Gemini CLI).
pub(super) fn from_foreign_number(value: u64) -> Duration {
    if value <= 3600 {
        Duration::from_secs(value)
    } else {
        Duration::from_millis(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("0s"), Some(Duration::ZERO));
    }

    #[test]
    fn rejects_everything_else() {
        for text in [
            "", "30", "s", "1.5s", "30 s", " 30s", "30sec", "-1s", "5d", "1m30s",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
        assert_eq!(parse("99999999999999999999s"), None);
        assert_eq!(parse(&format!("{}h", u64::MAX)), None);
    }

    #[test]
    fn foreign_numbers_are_seconds_up_to_an_hour() {
        assert_eq!(from_foreign_number(60), Duration::from_secs(60));
        assert_eq!(from_foreign_number(3600), Duration::from_secs(3600));
        assert_eq!(from_foreign_number(600_000), Duration::from_secs(600));
    }
}
