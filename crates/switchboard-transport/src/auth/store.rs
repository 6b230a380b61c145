//! The credential store: one JSON file, readable only by its owner, shared safely by
//! concurrent processes.
//!
//! Logins are keyed by the server's URL (the OAuth resource). Every change is made under an
//! exclusive `flock` on `<file>.lock`, written to a temporary file created with mode 0600 and
//! renamed over the store, so readers never see a partial file and concurrent writers never
//! lose each other's updates. Token refreshes of one server are serialized across processes by
//! a second lock per server (`<file>.<hash>.refresh.lock`), held from loading the refresh
//! token to saving its successor, so two processes never spend the same refresh token.
//!
//! Tokens never appear in logs or `Debug` output.

use std::{
    collections::BTreeMap,
    fmt,
    fs::{self, File, OpenOptions},
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use nix::fcntl::{Flock, FlockArg};
use rmcp::transport::auth::{
    AuthError, CredentialRefreshGuard, CredentialStore as RmcpCredentialStore, StoredCredentials,
};
use serde::{Deserialize, Serialize};

/// The environment variable that moves the default credential store.
pub const CREDENTIALS_ENV: &str = "SWITCHBOARD_CREDENTIALS";

/// A failure to read or write the credential store.
#[derive(Debug, Clone, thiserror::Error)]
#[error("credential store {}: {reason}", path.display())]
pub struct StoreError {
    /// The store file.
    pub path: PathBuf,
    /// What went wrong.
    pub reason: String,
}

/// A client registered with an authorization server (dynamic client registration), kept so that
/// tokens can be refreshed by the client they were issued to.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Registration {
    pub(crate) client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) client_secret: Option<String>,
    pub(crate) redirect_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) issuer: Option<String>,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("redirect_uri", &self.redirect_uri)
            .field("issuer", &self.issuer)
            .finish()
    }
}

/// One server's login.
#[derive(Clone, Default, Serialize, Deserialize)]
pub(crate) struct Login {
    /// The server's configured name when it logged in (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) server: Option<String>,
    /// Tokens, as rmcp keeps them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) credentials: Option<StoredCredentials>,
    /// The dynamically registered client, if registration was dynamic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) registration: Option<Registration>,
    /// The server's last `WWW-Authenticate` challenge: it seeds discovery on reconnection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) challenge: Option<String>,
    /// Seconds since the epoch of the last change.
    #[serde(default)]
    pub(crate) updated_at: u64,
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("server", &self.server)
            .field("credentials", &self.credentials)
            .field("registration", &self.registration)
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}

/// The file's content.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Document {
    version: u32,
    #[serde(default)]
    logins: BTreeMap<String, Login>,
}

/// What `mcpctl auth status` shows of a login: no token, only facts about it.
#[derive(Debug, Clone, Serialize)]
pub struct LoginStatus {
    /// The server URL (the OAuth resource).
    pub url: String,
    /// The server's name when it logged in.
    pub server: Option<String>,
    /// The OAuth client the tokens were issued to.
    pub client_id: Option<String>,
    /// The authorization server that issued them.
    pub issuer: Option<String>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Whether an access token is stored.
    pub has_token: bool,
    /// When the access token expires (seconds since the epoch), if the server said.
    pub expires_at: Option<u64>,
    /// Whether a refresh token is stored, so the access token can be renewed without the user.
    pub refreshable: bool,
}

impl LoginStatus {
    /// How long the access token stays valid; `None` when unknown, zero when expired.
    pub fn expires_in(&self) -> Option<Duration> {
        let at = self.expires_at?;
        Some(Duration::from_secs(at.saturating_sub(now_secs())))
    }
}

/// Seconds since the epoch.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

impl Login {
    pub(crate) fn status(&self, url: &str) -> LoginStatus {
        let token = self
            .credentials
            .as_ref()
            .and_then(|c| c.token_response.as_ref())
            .map(TokenFacts::of);
        let expires_at = match (
            token.as_ref().and_then(|t| t.expires_in),
            self.credentials.as_ref().and_then(|c| c.token_received_at),
        ) {
            (Some(expires_in), Some(received_at)) => Some(received_at + expires_in),
            _ => None,
        };
        LoginStatus {
            url: url.to_owned(),
            server: self.server.clone(),
            client_id: self.credentials.as_ref().map(|c| c.client_id.clone()),
            issuer: self.credentials.as_ref().and_then(|c| c.issuer.clone()),
            scopes: self
                .credentials
                .as_ref()
                .map(|c| c.granted_scopes.clone())
                .unwrap_or_default(),
            has_token: token.is_some(),
            expires_at,
            refreshable: token.is_some_and(|t| t.refreshable),
        }
    }
}

/// What matters of a token response, read without the `oauth2` crate's traits.
pub(crate) struct TokenFacts {
    /// Lifetime in seconds from issuance, when the server gave one.
    pub(crate) expires_in: Option<u64>,
    /// Whether it carries a refresh token.
    pub(crate) refreshable: bool,
}

impl TokenFacts {
    pub(crate) fn of(token: &rmcp::transport::auth::OAuthTokenResponse) -> Self {
        let value = serde_json::to_value(token).unwrap_or_default();
        Self {
            expires_in: value.get("expires_in").and_then(serde_json::Value::as_u64),
            refreshable: value
                .get("refresh_token")
                .is_some_and(serde_json::Value::is_string),
        }
    }
}

/// The credential store file. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TokenStore {
    path: Arc<PathBuf>,
}

/// Distinguishes the temporary files of concurrent writers in one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl TokenStore {
    /// The store at `path` (created on the first write).
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self {
            path: Arc::new(path.into()),
        }
    }

    /// The default location: `$SWITCHBOARD_CREDENTIALS` when set, else
    /// `switchboard/credentials.json` in the user's data directory
    /// (`~/.local/share` on Linux).
    pub fn default_path() -> Option<PathBuf> {
        if let Some(path) = std::env::var_os(CREDENTIALS_ENV).filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(path));
        }
        dirs::data_dir().map(|dir| dir.join("switchboard").join("credentials.json"))
    }

    /// The store at the default location.
    ///
    /// # Errors
    /// When the user's data directory is unknown and the environment does not name a store.
    pub fn open_default() -> Result<Self, StoreError> {
        Self::default_path()
            .map(Self::at)
            .ok_or_else(|| StoreError {
                path: PathBuf::from("credentials.json"),
                reason: format!("the user data directory is unknown; set {CREDENTIALS_ENV}"),
            })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, reason: impl fmt::Display) -> StoreError {
        StoreError {
            path: self.path.to_path_buf(),
            reason: reason.to_string(),
        }
    }

    fn read(&self) -> Result<Document, StoreError> {
        let text = match fs::read_to_string(&*self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Document::default()),
            Err(e) => return Err(self.error(e)),
        };
        serde_json::from_str(&text).map_err(|e| self.error(format!("not a credential store: {e}")))
    }

    /// Creates the store's folder, readable only by the user, when it does not exist.
    fn ensure_dir(&self) -> Result<(), StoreError> {
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir
            && !dir.exists()
        {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| self.error(format!("cannot create {}: {e}", dir.display())))?;
        }
        Ok(())
    }

    fn lock(&self, suffix: &str) -> Result<Flock<File>, StoreError> {
        self.ensure_dir()?;
        let mut name = self.path.as_os_str().to_owned();
        name.push(suffix);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(PathBuf::from(name))
            .map_err(|e| self.error(format!("cannot open the lock file: {e}")))?;
        Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| self.error(format!("cannot lock the store: {errno}")))
    }

    /// Changes the login of `url` under the store's lock. `change` sees `None` when there is
    /// none and may remove it by leaving `None`.
    pub(crate) fn update<T>(
        &self,
        url: &str,
        change: impl FnOnce(&mut Option<Login>) -> T,
    ) -> Result<T, StoreError> {
        let _lock = self.lock(".lock")?;
        let mut document = self.read()?;
        let mut login = document.logins.remove(url);
        let out = change(&mut login);
        if let Some(mut login) = login {
            login.updated_at = now_secs();
            document.logins.insert(url.to_owned(), login);
        }
        document.version = 1;
        self.write(&document)?;
        Ok(out)
    }

    fn write(&self, document: &Document) -> Result<(), StoreError> {
        let text = serde_json::to_vec_pretty(document).map_err(|e| self.error(e))?;
        let mut temp = self.path.as_os_str().to_owned();
        temp.push(format!(
            ".{}-{}.tmp",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let temp = PathBuf::from(temp);
        let written = (|| {
            let mut file = OpenOptions::new()
                .create_new(true)
                .write(true)
                .mode(0o600)
                .open(&temp)?;
            file.write_all(&text)?;
            file.sync_all()?;
            fs::rename(&temp, &*self.path)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(self.error(format!("cannot write: {e}")));
        }
        Ok(())
    }

    /// The login of `url`, if any.
    pub(crate) fn login(&self, url: &str) -> Result<Option<Login>, StoreError> {
        Ok(self.read()?.logins.remove(url))
    }

    /// The status of every login.
    ///
    /// # Errors
    /// An unreadable store.
    pub fn list(&self) -> Result<Vec<LoginStatus>, StoreError> {
        Ok(self
            .read()?
            .logins
            .iter()
            .map(|(url, login)| login.status(url))
            .collect())
    }

    /// The status of the login of `url`, if any.
    ///
    /// # Errors
    /// An unreadable store.
    pub fn status(&self, url: &str) -> Result<Option<LoginStatus>, StoreError> {
        Ok(self.login(url)?.map(|login| login.status(url)))
    }

    /// Forgets the login of `url` (tokens and registration); whether there was one.
    ///
    /// # Errors
    /// An unreadable or unwritable store.
    pub fn remove(&self, url: &str) -> Result<bool, StoreError> {
        self.update(url, |login| login.take().is_some())
    }

    /// Whether tokens are stored for `url`.
    pub(crate) fn has_token(&self, url: &str) -> bool {
        self.login(url)
            .ok()
            .flatten()
            .and_then(|l| l.credentials)
            .is_some_and(|c| c.token_response.is_some())
    }

    /// The rmcp view of one server's credentials.
    pub(crate) fn for_url(&self, url: &str) -> UrlCredentials {
        UrlCredentials {
            store: self.clone(),
            url: url.to_owned(),
        }
    }

    /// Makes sure the store file is readable only by its owner (it may predate this version
    /// or have been copied).
    pub(crate) fn tighten_permissions(&self) {
        if let Ok(meta) = fs::metadata(&*self.path)
            && meta.permissions().mode() & 0o077 != 0
        {
            let _ = fs::set_permissions(&*self.path, fs::Permissions::from_mode(0o600));
        }
    }
}

/// A small, stable hash (FNV-1a) naming one server's refresh lock.
fn url_hash(url: &str) -> u64 {
    url.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// One server's credentials in the [`TokenStore`], as rmcp's `CredentialStore`.
#[derive(Debug, Clone)]
pub(crate) struct UrlCredentials {
    store: TokenStore,
    url: String,
}

impl UrlCredentials {
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&TokenStore, &str) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, AuthError> {
        let store = self.store.clone();
        let url = self.url.clone();
        tokio::task::spawn_blocking(move || f(&store, &url))
            .await
            .map_err(|e| AuthError::CredentialStoreError(e.to_string()))?
            .map_err(|e| AuthError::CredentialStoreError(e.to_string()))
    }
}

#[async_trait::async_trait]
impl RmcpCredentialStore for UrlCredentials {
    async fn load(&self) -> Result<Option<StoredCredentials>, AuthError> {
        self.blocking(|store, url| Ok(store.login(url)?.and_then(|l| l.credentials)))
            .await
    }

    async fn save(&self, credentials: StoredCredentials) -> Result<(), AuthError> {
        self.blocking(move |store, url| {
            store.update(url, |login| {
                login.get_or_insert_with(Login::default).credentials = Some(credentials);
            })
        })
        .await
    }

    async fn clear(&self) -> Result<(), AuthError> {
        self.blocking(|store, url| {
            store.update(url, |login| {
                if let Some(login) = login {
                    login.credentials = None;
                }
            })
        })
        .await
    }

    async fn on_refresh_token_rejected(
        &self,
        rejected: &StoredCredentials,
    ) -> Result<(), AuthError> {
        // Forget the dead tokens, unless another process has replaced them meanwhile.
        let received_at = rejected.token_received_at;
        self.blocking(move |store, url| {
            store.update(url, |login| {
                if let Some(login) = login
                    && login
                        .credentials
                        .as_ref()
                        .is_some_and(|c| c.token_received_at == received_at)
                    && let Some(credentials) = &mut login.credentials
                {
                    credentials.token_response = None;
                }
            })
        })
        .await
    }

    async fn acquire_refresh_guard(&self) -> Result<Option<CredentialRefreshGuard>, AuthError> {
        let suffix = format!(".{:016x}.refresh.lock", url_hash(&self.url));
        let lock = self.blocking(move |store, _| store.lock(&suffix)).await?;
        Ok(Some(CredentialRefreshGuard::new(lock)))
    }
}

#[cfg(test)]
mod tests {
    use std::thread;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("exists").permissions().mode() & 0o777
    }

    fn credentials(client: &str, received_at: u64) -> StoredCredentials {
        serde_json::from_value(serde_json::json!({
            "client_id": client,
            "token_response": {
                "access_token": format!("access-{client}"),
                "token_type": "bearer",
                "expires_in": 3600,
                "refresh_token": format!("refresh-{client}"),
            },
            "granted_scopes": ["read"],
            "token_received_at": received_at,
        }))
        .expect("valid credentials")
    }

    #[test]
    fn the_store_and_its_folder_are_private_to_the_user() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = TokenStore::at(dir.path().join("nested/credentials.json"));
        store
            .update("https://a/mcp", |login| {
                *login = Some(Login {
                    credentials: Some(credentials("a", now_secs())),
                    ..Login::default()
                });
            })
            .expect("written");
        assert_eq!(mode(store.path()), 0o600);
        assert_eq!(mode(&dir.path().join("nested")), 0o700);
        assert_eq!(
            mode(&dir.path().join("nested/credentials.json.lock")),
            0o600
        );
        let status = store
            .status("https://a/mcp")
            .expect("readable")
            .expect("stored");
        assert!(status.has_token && status.refreshable);
        assert_eq!(status.scopes, ["read"]);
        assert!(
            status
                .expires_in()
                .is_some_and(|d| d > Duration::from_secs(3500))
        );
        // Nothing secret in Debug output.
        let login = store
            .login("https://a/mcp")
            .expect("readable")
            .expect("stored");
        let debug = format!("{login:?}");
        assert!(
            !debug.contains("access-a") && !debug.contains("refresh-a"),
            "{debug}"
        );
    }

    #[test]
    fn concurrent_writers_lose_no_update() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("credentials.json");
        let writers: Vec<_> = (0..8)
            .map(|writer| {
                // Each writer opens the store on its own, as separate processes would.
                let store = TokenStore::at(&path);
                thread::spawn(move || {
                    for round in 0..25 {
                        let url = format!("https://server-{writer}/mcp");
                        store
                            .update(&url, |login| {
                                let login = login.get_or_insert_with(Login::default);
                                let rounds = login
                                    .server
                                    .as_deref()
                                    .map_or(0, |s| s.parse::<u32>().expect("a count"));
                                login.server = Some((rounds + 1).to_string());
                                login.credentials = Some(credentials(&url, round));
                            })
                            .expect("written");
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().expect("no panic");
        }
        let store = TokenStore::at(&path);
        let logins = store.list().expect("readable");
        assert_eq!(logins.len(), 8);
        for login in logins {
            assert_eq!(login.server.as_deref(), Some("25"), "{}", login.url);
        }
        assert_eq!(mode(&path), 0o600);
        // No temporary file is left behind.
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .expect("listable")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[tokio::test]
    async fn a_rejected_refresh_token_is_forgotten_unless_replaced_meanwhile() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = TokenStore::at(dir.path().join("credentials.json"));
        let url = "https://a/mcp";
        let old = credentials("a", 100);
        store
            .update(url, |login| {
                *login = Some(Login {
                    credentials: Some(old.clone()),
                    ..Login::default()
                });
            })
            .expect("written");
        let rmcp_view = store.for_url(url);
        // Another process logged in again meanwhile: its tokens stay.
        rmcp_view.save(credentials("a", 200)).await.expect("saved");
        rmcp_view
            .on_refresh_token_rejected(&old)
            .await
            .expect("handled");
        assert!(store.has_token(url));
        // The rejected tokens themselves are dropped.
        let current = rmcp_view.load().await.expect("loaded").expect("stored");
        rmcp_view
            .on_refresh_token_rejected(&current)
            .await
            .expect("handled");
        assert!(!store.has_token(url));
    }

    #[tokio::test]
    async fn refreshes_of_one_server_are_serialized() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = TokenStore::at(dir.path().join("credentials.json"));
        let first = store
            .for_url("https://a/mcp")
            .acquire_refresh_guard()
            .await
            .expect("locked");
        let b = store.for_url("https://b/mcp");
        let other_server =
            tokio::time::timeout(Duration::from_secs(5), b.acquire_refresh_guard()).await;
        assert!(
            other_server.is_ok(),
            "another server's refresh is not blocked"
        );
        let same = store.for_url("https://a/mcp");
        let second = tokio::spawn(async move { same.acquire_refresh_guard().await.map(drop) });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !second.is_finished(),
            "the second refresh waits for the first"
        );
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .expect("released")
            .expect("joined")
            .expect("locked");
    }
}
