//! The fixed resources, prompts and media the test server serves.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use rmcp::{
    ErrorData,
    model::{
        GetPromptResult, JsonObject, Prompt, PromptArgument, PromptMessage, ReadResourceResult,
        Resource, ResourceContents, ResourceTemplate, Role,
    },
};

/// URI of the static text resource.
pub const HELLO_URI: &str = "testkit://static/hello";
/// Text of the static text resource.
pub const HELLO_TEXT: &str = "hello from testkit";
/// URI of the static binary resource.
pub const BLOB_URI: &str = "testkit://static/blob";
/// Length in bytes of the static binary resource (its bytes are `0..16`).
pub const BLOB_LEN: usize = 16;
/// URI template of the item resources; reading `testkit://items/42` returns
/// the JSON text `{"id":"42"}`.
pub const ITEM_TEMPLATE: &str = "testkit://items/{id}";
/// Prefix of the URIs matched by [`ITEM_TEMPLATE`].
const ITEM_PREFIX: &str = "testkit://items/";

/// MIME type of the `image` tool's content.
pub const PNG_MIME: &str = "image/png";
/// MIME type of the `audio` tool's content.
pub const WAV_MIME: &str = "audio/wav";

/// A valid 1×1 RGBA PNG (one red pixel).
const PNG_1X1: [u8; 70] = [
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x56, 0xc7, 0x2f, 0x0d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// Number of 8-bit mono samples in the WAV clip.
const WAV_SAMPLES: u32 = 8;
/// Sample rate of the WAV clip, in hertz.
const WAV_SAMPLE_RATE: u32 = 8_000;

/// The PNG image, base64-encoded.
pub fn png_base64() -> String {
    STANDARD.encode(PNG_1X1)
}

/// A valid WAV file (8 kHz, mono, 8-bit PCM, eight samples of silence),
/// base64-encoded.
pub fn wav_base64() -> String {
    let mut wav = Vec::with_capacity(44 + WAV_SAMPLES as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + WAV_SAMPLES).to_le_bytes());
    wav.extend_from_slice(b"WAVE");
    wav.extend_from_slice(b"fmt ");
    wav.extend_from_slice(&16_u32.to_le_bytes()); // fmt chunk size
    wav.extend_from_slice(&1_u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1_u16.to_le_bytes()); // mono
    wav.extend_from_slice(&WAV_SAMPLE_RATE.to_le_bytes());
    wav.extend_from_slice(&WAV_SAMPLE_RATE.to_le_bytes()); // byte rate
    wav.extend_from_slice(&1_u16.to_le_bytes()); // block align
    wav.extend_from_slice(&8_u16.to_le_bytes()); // bits per sample
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&WAV_SAMPLES.to_le_bytes());
    wav.extend(std::iter::repeat_n(0x80_u8, WAV_SAMPLES as usize)); // 8-bit silence
    STANDARD.encode(wav)
}

/// The bytes of the static binary resource.
fn blob_bytes() -> Vec<u8> {
    (0..BLOB_LEN).filter_map(|i| u8::try_from(i).ok()).collect()
}

/// The resource link the `resource_link` and `mixed` tools return.
pub(crate) fn hello_resource() -> Resource {
    Resource::new(HELLO_URI, "hello")
        .with_description("A short greeting")
        .with_mime_type("text/plain")
        .with_size(HELLO_TEXT.len() as u64)
}

/// Every static resource, for `resources/list`.
pub(crate) fn resources() -> Vec<Resource> {
    vec![
        hello_resource(),
        Resource::new(BLOB_URI, "blob")
            .with_description("Sixteen bytes, 0x00 to 0x0f")
            .with_mime_type("application/octet-stream")
            .with_size(BLOB_LEN as u64),
    ]
}

/// Every resource template, for `resources/templates/list`.
pub(crate) fn resource_templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(ITEM_TEMPLATE, "item")
            .with_description("An item by id; its content is the JSON object {\"id\": id}")
            .with_mime_type("application/json"),
    ]
}

/// Answers `resources/read`.
pub(crate) fn read_resource(uri: &str) -> Result<ReadResourceResult, ErrorData> {
    let contents = if uri == HELLO_URI {
        ResourceContents::text(HELLO_TEXT, uri)
    } else if uri == BLOB_URI {
        ResourceContents::blob(STANDARD.encode(blob_bytes()), uri)
            .with_mime_type("application/octet-stream")
    } else if let Some(id) = uri.strip_prefix(ITEM_PREFIX).filter(|id| is_item_id(id)) {
        ResourceContents::text(serde_json::json!({ "id": id }).to_string(), uri)
            .with_mime_type("application/json")
    } else {
        return Err(ErrorData::resource_not_found(
            format!("resource not found: {uri}"),
            Some(serde_json::json!({ "uri": uri })),
        ));
    };
    Ok(ReadResourceResult::new(vec![contents]))
}

/// Whether `id` is a usable item id: non-empty, without path or query parts.
fn is_item_id(id: &str) -> bool {
    !id.is_empty() && !id.contains(['/', '?', '#'])
}

/// Every prompt, for `prompts/list`.
pub(crate) fn prompts() -> Vec<Prompt> {
    vec![
        Prompt::new(
            "greet",
            Some("Ask the model to greet someone"),
            Some(vec![
                PromptArgument::new("name")
                    .with_description("Who to greet")
                    .with_required(true),
            ]),
        ),
        Prompt::new(
            "summarize",
            Some("Ask the model to summarize a text"),
            Some(vec![
                PromptArgument::new("text")
                    .with_description("The text to summarize")
                    .with_required(true),
                PromptArgument::new("style")
                    .with_description("Style of the summary, e.g. \"terse\"")
                    .with_required(false),
            ]),
        ),
    ]
}

/// Answers `prompts/get`.
pub(crate) fn get_prompt(
    name: &str,
    arguments: Option<&JsonObject>,
) -> Result<GetPromptResult, ErrorData> {
    match name {
        "greet" => {
            let who = required_argument(arguments, "greet", "name")?;
            Ok(GetPromptResult::new(vec![PromptMessage::new_text(
                Role::User,
                format!("Say hello to {who}"),
            )])
            .with_description("Greet someone"))
        }
        "summarize" => {
            let text = required_argument(arguments, "summarize", "text")?;
            let style = optional_argument(arguments, "style")
                .map(|style| format!(" in a {style} style"))
                .unwrap_or_default();
            Ok(GetPromptResult::new(vec![PromptMessage::new_text(
                Role::User,
                format!("Summarize the following text{style}:\n\n{text}"),
            )])
            .with_description("Summarize a text"))
        }
        other => Err(ErrorData::invalid_params(
            format!("unknown prompt: {other}"),
            None,
        )),
    }
}

/// A prompt argument that must be present and a string.
fn required_argument<'a>(
    arguments: Option<&'a JsonObject>,
    prompt: &str,
    argument: &str,
) -> Result<&'a str, ErrorData> {
    optional_argument(arguments, argument).ok_or_else(|| {
        ErrorData::invalid_params(
            format!("prompt {prompt} needs the string argument {argument}"),
            None,
        )
    })
}

/// A prompt argument that may be absent; non-strings count as absent.
fn optional_argument<'a>(arguments: Option<&'a JsonObject>, argument: &str) -> Option<&'a str> {
    arguments?.get(argument)?.as_str()
}
