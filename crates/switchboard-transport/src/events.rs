//! Notifications from servers and connection changes, delivered to subscribers.

#![expect(
    deprecated,
    reason = "logging notifications are deprecated by SEP-2577, but servers on revisions up to 2025-11-25 still send them"
)]

use rmcp::{
    ClientHandler,
    model::{
        ClientCapabilities, ClientConfig, Implementation, LoggingMessageNotificationParam,
        ProgressNotificationParam, ResourceUpdatedNotificationParam,
    },
    service::{NotificationContext, RoleClient},
};
use switchboard_core::ServerName;
use tokio::sync::broadcast;

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

/// The rmcp client handler of every connection: answers with Switchboard's client info and
/// turns notifications into [`ServerEvent`]s.
#[derive(Debug, Clone)]
pub(crate) struct EventHandler {
    pub(crate) server: ServerName,
    pub(crate) events: broadcast::Sender<ServerEvent>,
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
            ClientCapabilities::default(),
            Implementation::new("switchboard", env!("CARGO_PKG_VERSION")),
        )
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
