//! How names and text become terms.

use switchboard_registry::discovery::tokenize::Tokenizer;

#[track_caller]
fn check(stem: bool, text: &str, expected: &[&str]) {
    assert_eq!(
        Tokenizer::new(stem).terms(text),
        expected,
        "terms of {text:?}"
    );
}

#[test]
fn splits_snake_kebab_dots_and_slashes() {
    check(false, "get_user_token", &["get", "user", "token"]);
    check(false, "get-user.token", &["get", "user", "token"]);
    check(false, "chat.postMessage", &["chat", "post", "message"]);
    check(
        false,
        "YituTech/conv-bert-base",
        &["yitu", "tech", "conv", "bert", "base"],
    );
}

#[test]
fn splits_camel_case_and_acronyms() {
    check(false, "getUserToken", &["get", "user", "token"]);
    check(false, "GetUserToken", &["get", "user", "token"]);
    check(false, "HTTPServer", &["http", "server"]);
    check(false, "parseJSONResponse", &["parse", "json", "response"]);
}

#[test]
fn splits_digits_and_drops_single_characters() {
    check(false, "base64Encode", &["base", "64", "encode"]);
    check(false, "sha256sum", &["sha", "256", "sum"]);
    check(false, "v2 x y", &[]);
    check(false, "April 21st", &["april", "21", "st"]);
}

#[test]
fn drops_stop_words_and_lowercases() {
    check(
        false,
        "Can you tell me what is the Weather in Paris?",
        &["tell", "weather", "paris"],
    );
    check(false, "CRÈME brûlée", &["crème", "brûlée"]);
}

#[test]
fn stems_english() {
    check(
        true,
        "forecasts forecasting forecast",
        &["forecast", "forecast", "forecast"],
    );
    check(true, "listDirectories", &["list", "directori"]);
    check(true, "running runs", &["run", "run"]);
}
