//! Client-side batching: many calls at once, grouped by server.
//!
//! JSON-RPC batching is gone from the MCP specification, so a batch is run by the client: calls
//! are grouped by the server that answers them and run with bounded concurrency per server;
//! identical calls (same tool, same arguments in canonical JSON) in one batch are made once;
//! results come back in input order, each with its own result or error, so one failure does
//! not fail the batch.

use std::{collections::HashMap, sync::Arc};

use futures::future::join_all;
use rmcp::model::JsonObject;
use serde::Deserialize;
use tokio::sync::Semaphore;

use crate::{CallOptions, CallOutput, Error, Switchboard};

/// One call of a batch.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct BatchCall {
    /// The tool (`server.tool` or a unique bare name).
    pub tool: String,
    /// Its arguments.
    #[serde(default)]
    pub arguments: Option<JsonObject>,
}

/// How a batch runs.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Calls in flight at once per server. Default 8.
    pub max_concurrency_per_server: usize,
    /// Options of each call.
    pub call: CallOptions,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self {
            max_concurrency_per_server: 8,
            call: CallOptions::default(),
        }
    }
}

impl Switchboard {
    /// Runs a batch of calls; the results are in input order.
    pub async fn call_many(
        &self,
        calls: Vec<BatchCall>,
        options: BatchOptions,
    ) -> Vec<Result<CallOutput, Error>> {
        let permits = options.max_concurrency_per_server.max(1);
        let mut semaphores: HashMap<String, Arc<Semaphore>> = HashMap::new();
        // Identical calls share one run: `first[i]` is the index of the first identical call.
        let mut seen: HashMap<(String, String), usize> = HashMap::new();
        let mut first = Vec::with_capacity(calls.len());
        let mut unique = Vec::new();
        for (i, call) in calls.iter().enumerate() {
            let server = self
                .tool(&call.tool)
                .map(|entry| entry.server.to_string())
                .unwrap_or_default();
            let args = call
                .arguments
                .clone()
                .map(serde_json::Value::Object)
                .unwrap_or(serde_json::Value::Null);
            let key = (
                format!("{server}\u{0}{}", call.tool),
                switchboard_cache::json::canonical_json(&args),
            );
            match seen.get(&key) {
                Some(&j) => first.push(j),
                None => {
                    seen.insert(key, i);
                    first.push(i);
                    let semaphore = Arc::clone(
                        semaphores
                            .entry(server)
                            .or_insert_with(|| Arc::new(Semaphore::new(permits))),
                    );
                    unique.push((i, semaphore));
                }
            }
        }
        let runs = unique.into_iter().map(|(i, semaphore)| {
            let call = &calls[i];
            let options = options.call.clone();
            async move {
                let _permit = semaphore.acquire().await;
                (
                    i,
                    self.call_with(&call.tool, call.arguments.clone(), options)
                        .await,
                )
            }
        });
        let results: HashMap<usize, Result<CallOutput, Error>> =
            join_all(runs).await.into_iter().collect();
        let mut out = Vec::with_capacity(calls.len());
        for (i, &j) in first.iter().enumerate() {
            out.push(results.get(&j).cloned().unwrap_or_else(|| {
                Err(Error::InvalidArguments {
                    tool: calls[i].tool.clone(),
                    message: "the batch lost this call".to_owned(),
                })
            }));
        }
        out
    }
}
