//! The application's answers to server-to-client requests: sampling, elicitation and roots.
//!
//! Servers up to revision 2025-11-25 send these as requests on the session; 2026-07-28 servers
//! return an `input_required` result instead (multi-round tool resolution, SEP-2322), and
//! [`Connection`](crate::Connection) answers those rounds with the same handlers, then retries
//! the original request. Without handlers, or for a kind the handlers do not declare, sampling
//! is refused with "method not found", elicitation is declined and the root list is empty —
//! and the capability is not declared, so well-behaved servers do not ask.
//!
//! An accepted form elicitation is completed with the schema's defaults for every field the
//! handler left out ([`fill_elicitation_defaults`]).

#![expect(
    deprecated,
    reason = "sampling and roots are deprecated by SEP-2577, but servers up to 2025-11-25 still use them"
)]

use std::{fmt, future::Future, sync::Arc, time::Duration};

use futures::future::BoxFuture;
use rmcp::{
    ErrorData,
    model::{
        ClientCapabilities, CreateMessageRequestMethod, CreateMessageRequestParams,
        CreateMessageResult, ElicitRequestParams, ElicitResult, ElicitationAction,
        ElicitationCapability, ElicitationSchema, FormElicitationCapability, InputRequest,
        InputRequests, InputResponses, JsonObject, ListRootsResult, RootsCapabilities,
        SamplingCapability,
    },
};
use serde_json::Value;
use switchboard_core::ServerName;

/// Answers to server-to-client requests, implemented by the application.
///
/// Declare what you answer with [`ClientHandlers::sampling`], [`ClientHandlers::elicitation`]
/// and [`ClientHandlers::roots`]: they decide the capabilities sent to servers. Every method
/// has a default that declines cleanly.
///
/// ```
/// use switchboard_transport::{ClientHandlers, rmcp::{ErrorData, model::*}};
/// use switchboard_core::ServerName;
///
/// struct Roots;
///
/// impl ClientHandlers for Roots {
///     fn roots(&self) -> bool {
///         true
///     }
///
///     async fn list_roots(&self, _server: &ServerName) -> Result<ListRootsResult, ErrorData> {
///         Ok(ListRootsResult::new(vec![Root::new("file:///srv/project")]))
///     }
/// }
/// ```
pub trait ClientHandlers: Send + Sync + 'static {
    /// Whether [`ClientHandlers::create_message`] is implemented (declares `sampling`).
    fn sampling(&self) -> bool {
        false
    }

    /// Whether [`ClientHandlers::create_elicitation`] is implemented (declares form
    /// `elicitation`).
    fn elicitation(&self) -> bool {
        false
    }

    /// Whether [`ClientHandlers::list_roots`] is implemented (declares `roots`).
    fn roots(&self) -> bool {
        false
    }

    /// `sampling/createMessage`: ask the application's model for a completion.
    fn create_message(
        &self,
        server: &ServerName,
        params: CreateMessageRequestParams,
    ) -> impl Future<Output = Result<CreateMessageResult, ErrorData>> + Send {
        let _ = (server, params);
        std::future::ready(Err(
            ErrorData::method_not_found::<CreateMessageRequestMethod>(),
        ))
    }

    /// `elicitation/create`: ask the user for input. Fields of an accepted form that the
    /// answer leaves out are filled with the schema's defaults.
    fn create_elicitation(
        &self,
        server: &ServerName,
        params: ElicitRequestParams,
    ) -> impl Future<Output = Result<ElicitResult, ErrorData>> + Send {
        let _ = (server, params);
        std::future::ready(Ok(ElicitResult::new(ElicitationAction::Decline)))
    }

    /// `roots/list`: the directories or files the server may work on.
    fn list_roots(
        &self,
        server: &ServerName,
    ) -> impl Future<Output = Result<ListRootsResult, ErrorData>> + Send {
        let _ = server;
        std::future::ready(Ok(ListRootsResult::default()))
    }
}

/// The object-safe form of [`ClientHandlers`].
trait ErasedHandlers: Send + Sync {
    fn kinds(&self) -> (bool, bool, bool);
    fn create_message<'a>(
        &'a self,
        server: &'a ServerName,
        params: CreateMessageRequestParams,
    ) -> BoxFuture<'a, Result<CreateMessageResult, ErrorData>>;
    fn create_elicitation<'a>(
        &'a self,
        server: &'a ServerName,
        params: ElicitRequestParams,
    ) -> BoxFuture<'a, Result<ElicitResult, ErrorData>>;
    fn list_roots<'a>(
        &'a self,
        server: &'a ServerName,
    ) -> BoxFuture<'a, Result<ListRootsResult, ErrorData>>;
}

impl<T: ClientHandlers> ErasedHandlers for T {
    fn kinds(&self) -> (bool, bool, bool) {
        (self.sampling(), self.elicitation(), self.roots())
    }

    fn create_message<'a>(
        &'a self,
        server: &'a ServerName,
        params: CreateMessageRequestParams,
    ) -> BoxFuture<'a, Result<CreateMessageResult, ErrorData>> {
        Box::pin(ClientHandlers::create_message(self, server, params))
    }

    fn create_elicitation<'a>(
        &'a self,
        server: &'a ServerName,
        params: ElicitRequestParams,
    ) -> BoxFuture<'a, Result<ElicitResult, ErrorData>> {
        Box::pin(ClientHandlers::create_elicitation(self, server, params))
    }

    fn list_roots<'a>(
        &'a self,
        server: &'a ServerName,
    ) -> BoxFuture<'a, Result<ListRootsResult, ErrorData>> {
        Box::pin(ClientHandlers::list_roots(self, server))
    }
}

/// A shared, type-erased [`ClientHandlers`], as [`ServerSpec::handlers`](crate::ServerSpec)
/// holds it. Cheap to clone; two values are equal when they share the same handlers.
#[derive(Clone)]
pub struct SharedHandlers(Arc<dyn ErasedHandlers>);

impl SharedHandlers {
    /// Wraps the application's handlers.
    pub fn new(handlers: impl ClientHandlers) -> Self {
        Self(Arc::new(handlers))
    }

    /// The client capabilities these handlers declare.
    pub fn capabilities(&self) -> ClientCapabilities {
        capabilities(Some(self))
    }

    /// Answers `sampling/createMessage`; refused when sampling is not declared.
    pub async fn create_message(
        &self,
        server: &ServerName,
        params: CreateMessageRequestParams,
    ) -> Result<CreateMessageResult, ErrorData> {
        if !self.0.kinds().0 {
            return Err(ErrorData::method_not_found::<CreateMessageRequestMethod>());
        }
        self.0.create_message(server, params).await
    }

    /// Answers `elicitation/create`; declined when elicitation is not declared. An accepted
    /// form is completed with the schema's defaults.
    pub async fn create_elicitation(
        &self,
        server: &ServerName,
        params: ElicitRequestParams,
    ) -> Result<ElicitResult, ErrorData> {
        if !self.0.kinds().1 {
            return Ok(ElicitResult::new(ElicitationAction::Decline));
        }
        let schema = match &params {
            ElicitRequestParams::FormElicitationParams {
                requested_schema, ..
            } => Some(requested_schema.clone()),
            _ => None,
        };
        let mut result = self.0.create_elicitation(server, params).await?;
        if let Some(schema) = schema
            && result.action == ElicitationAction::Accept
        {
            let mut content = match result.content.take() {
                Some(Value::Object(content)) => content,
                Some(other) => {
                    result.content = Some(other);
                    return Ok(result);
                }
                None => JsonObject::new(),
            };
            fill_elicitation_defaults(&schema, &mut content);
            result.content = Some(Value::Object(content));
        }
        Ok(result)
    }

    /// Answers `roots/list`; an empty list when roots are not declared.
    pub async fn list_roots(&self, server: &ServerName) -> Result<ListRootsResult, ErrorData> {
        if !self.0.kinds().2 {
            return Ok(ListRootsResult::default());
        }
        self.0.list_roots(server).await
    }
}

impl fmt::Debug for SharedHandlers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (sampling, elicitation, roots) = self.0.kinds();
        f.debug_struct("SharedHandlers")
            .field("sampling", &sampling)
            .field("elicitation", &elicitation)
            .field("roots", &roots)
            .finish()
    }
}

impl PartialEq for SharedHandlers {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<T: ClientHandlers> From<T> for SharedHandlers {
    fn from(handlers: T) -> Self {
        Self::new(handlers)
    }
}

/// The capabilities Switchboard declares to a server, given the application's handlers.
pub(crate) fn capabilities(handlers: Option<&SharedHandlers>) -> ClientCapabilities {
    let mut capabilities = ClientCapabilities::default();
    let Some(handlers) = handlers else {
        return capabilities;
    };
    let (sampling, elicitation, roots) = handlers.0.kinds();
    if sampling {
        capabilities.sampling = Some(SamplingCapability::default());
    }
    if elicitation {
        capabilities.elicitation = Some(
            ElicitationCapability::new()
                .with_form(FormElicitationCapability::new().with_schema_validation(true)),
        );
    }
    if roots {
        capabilities.roots = Some(RootsCapabilities::default());
    }
    capabilities
}

/// The defaults a form elicitation's schema gives, by field name.
pub fn elicitation_defaults(schema: &ElicitationSchema) -> JsonObject {
    let mut defaults = JsonObject::new();
    fill_elicitation_defaults(schema, &mut defaults);
    defaults
}

/// Adds the schema's default to `content` for every field that has one and is missing.
pub fn fill_elicitation_defaults(schema: &ElicitationSchema, content: &mut JsonObject) {
    // Through JSON: every kind of field (string, number, integer, boolean, single and multiple
    // choice) writes its default under the same key.
    let Ok(Value::Object(schema)) = serde_json::to_value(schema) else {
        return;
    };
    let Some(Value::Object(properties)) = schema.get("properties") else {
        return;
    };
    for (name, property) in properties {
        if let Some(default) = property.get("default")
            && !content.contains_key(name)
        {
            content.insert(name.clone(), default.clone());
        }
    }
}

/// Most `input_required` rounds one request may take (rmcp's default).
pub(crate) const MAX_INPUT_ROUNDS: usize = rmcp::model::DEFAULT_MRTR_MAX_ROUNDS;

/// Answers the input requests of an `input_required` result with the application's handlers.
pub(crate) async fn fulfill_input_requests(
    handlers: Option<&SharedHandlers>,
    server: &ServerName,
    requests: InputRequests,
) -> Result<InputResponses, ErrorData> {
    let answers = requests.into_iter().map(|(key, request)| async move {
        let value = match request {
            InputRequest::CreateMessage(request) => {
                let result = match handlers {
                    Some(h) => h.create_message(server, request.params).await?,
                    None => {
                        return Err(ErrorData::method_not_found::<CreateMessageRequestMethod>());
                    }
                };
                to_value(&result)?
            }
            InputRequest::Elicitation(request) => {
                let result = match handlers {
                    Some(h) => h.create_elicitation(server, request.params).await?,
                    None => ElicitResult::new(ElicitationAction::Decline),
                };
                to_value(&result)?
            }
            InputRequest::ListRoots(_) => {
                let result = match handlers {
                    Some(h) => h.list_roots(server).await?,
                    None => ListRootsResult::default(),
                };
                to_value(&result)?
            }
            _ => {
                return Err(ErrorData::invalid_params(
                    format!("input request {key:?} is of a kind Switchboard does not know"),
                    None,
                ));
            }
        };
        Ok::<_, ErrorData>((key, value))
    });
    Ok(futures::future::try_join_all(answers)
        .await?
        .into_iter()
        .collect())
}

fn to_value(value: &impl serde::Serialize) -> Result<Value, ErrorData> {
    serde_json::to_value(value).map_err(|e| {
        ErrorData::internal_error(format!("cannot encode an input response: {e}"), None)
    })
}

/// The pause before re-sending a request whose `input_required` result asked for nothing but
/// a retry (the server is still working): 50 ms, doubling, at most 250 ms.
pub(crate) fn state_only_pause(rounds: usize) -> Duration {
    Duration::from_millis((50u64 << rounds.min(3)).min(250))
}

#[cfg(test)]
mod tests {
    use rmcp::model::{PrimitiveSchemaDefinition, StringSchema};
    use serde_json::json;

    use super::*;

    fn schema(value: Value) -> ElicitationSchema {
        serde_json::from_value(value).expect("a valid elicitation schema")
    }

    #[test]
    fn defaults_of_every_field_kind_are_collected() {
        let schema = schema(json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "default": "John Doe"},
                "age": {"type": "integer", "default": 30},
                "score": {"type": "number", "default": 95.5},
                "status": {"type": "string", "enum": ["active", "inactive"], "default": "active"},
                "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "default": ["a"]},
                "verified": {"type": "boolean", "default": true},
                "note": {"type": "string"}
            }
        }));
        let defaults = elicitation_defaults(&schema);
        assert_eq!(
            Value::Object(defaults),
            json!({"name": "John Doe", "age": 30, "score": 95.5, "status": "active", "tags": ["a"], "verified": true})
        );
    }

    #[test]
    fn answers_are_kept_and_only_missing_fields_defaulted() {
        let mut properties = std::collections::BTreeMap::new();
        properties.insert(
            "name".to_owned(),
            PrimitiveSchemaDefinition::String(StringSchema::new().with_default("anonymous")),
        );
        let schema = ElicitationSchema::new(properties);
        let mut content = JsonObject::new();
        content.insert("name".into(), json!("Ada"));
        fill_elicitation_defaults(&schema, &mut content);
        assert_eq!(content.get("name"), Some(&json!("Ada")));
    }

    struct Declines;
    impl ClientHandlers for Declines {}

    #[tokio::test]
    async fn undeclared_kinds_are_declined() {
        let handlers = SharedHandlers::new(Declines);
        assert_eq!(handlers.capabilities(), ClientCapabilities::default());
        let server = ServerName::from("s");
        let error = handlers
            .create_message(&server, CreateMessageRequestParams::new(vec![], 10))
            .await
            .expect_err("sampling is refused");
        assert_eq!(error.code, rmcp::model::ErrorCode::METHOD_NOT_FOUND);
        let roots = handlers.list_roots(&server).await.expect("roots");
        assert!(roots.roots.is_empty());
    }
}
