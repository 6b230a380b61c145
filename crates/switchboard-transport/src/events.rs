//! Notifications from servers and connection changes, delivered to subscribers.

#![expect(
    deprecated,
    reason = "logging, sampling and roots are deprecated by SEP-2577, but servers on revisions up to 2025-11-25 still use them"
)]

use rmcp::{
    ClientHandler, ErrorData,
    model::{
        ClientConfig, CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams,
        ElicitResult, Implementation, ListRootsResult, LoggingMessageNotificationParam,
        ProgressNotificationParam, ResourceUpdatedNotificationParam,
    },
    service::{NotificationContext, RequestContext, RoleClient},
};
use switchboard_core::ServerName;
use tokio::sync::broadcast;

use crate::handlers::{self, SharedHandlers};

/// Something that happened on one server's connection.
#[derive(Debug, Clone)]
pub struct ServerEvent {
    /// The server.
    pub server: ServerName,
    /// What happened.
    pub kind: ServerEventKind,
}

/// The kinds of [`ServerEvent`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ServerEventKind {
    /// A session is established (first connection or reconnection; `generation` counts them).
    Connected {
        /// 1 for the first connection, then one more per reconnection.
        generation: u64,
    },
    /// The session was lost; the supervisor reconnects unless the crash budget is spent.
    Disconnected {
        /// Why.
        reason: String,
    },
    /// The crash budget is spent; the server is left alone until asked to reconnect.
    Failed {
        /// The last error.
        reason: String,
    },
    /// `notifications/tools/list_changed`.
    ToolListChanged,
    /// `notifications/prompts/list_changed`.
    PromptListChanged,
    /// `notifications/resources/list_changed`.
    ResourceListChanged,
    /// `notifications/resources/updated`.
    ResourceUpdated {
        /// The resource.
        uri: String,
    },
    /// `notifications/progress`.
    Progress(ProgressNotificationParam),
    /// `notifications/message` (server logging).
    Log(LoggingMessageNotificationParam),
}

/// The rmcp client handler of every connection: answers with Switchboard's client info, turns
/// notifications into [`ServerEvent`]s, and passes server-to-client requests to the
/// application's [`ClientHandlers`](crate::ClientHandlers) (declining them without).
#[derive(Debug, Clone)]
pub(crate) struct EventHandler {
    pub(crate) server: ServerName,
    pub(crate) events: broadcast::Sender<ServerEvent>,
    pub(crate) handlers: Option<SharedHandlers>,
}

impl EventHandler {
    fn emit(&self, kind: ServerEventKind) {
        // No subscriber is fine: events are advisory.
        let _ = self.events.send(ServerEvent {
            server: self.server.clone(),
            kind,
        });
    }
}

impl ClientHandler for EventHandler {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            handlers::capabilities(self.handlers.as_ref()),
            Implementation::new("switchboard", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        match &self.handlers {
            Some(handlers) => handlers.create_message(&self.server, params).await,
            None => Err(ErrorData::method_not_found::<
                rmcp::model::CreateMessageRequestMethod,
            >()),
        }
    }

    async fn create_elicitation(
        &self,
        params: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        match &self.handlers {
            Some(handlers) => handlers.create_elicitation(&self.server, params).await,
            None => Ok(ElicitResult::new(rmcp::model::ElicitationAction::Decline)),
        }
    }

    async fn list_roots(
        &self,
        _context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, ErrorData> {
        match &self.handlers {
            Some(handlers) => handlers.list_roots(&self.server).await,
            None => Ok(ListRootsResult::default()),
        }
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.emit(ServerEventKind::Progress(params));
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        tracing::debug!(server = %self.server, level = ?params.level, data = %params.data, "server log message");
        self.emit(ServerEventKind::Log(params));
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.emit(ServerEventKind::ResourceUpdated { uri: params.uri });
    }

    async fn on_resource_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.emit(ServerEventKind::ResourceListChanged);
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.emit(ServerEventKind::ToolListChanged);
    }

    async fn on_prompt_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.emit(ServerEventKind::PromptListChanged);
    }
}
