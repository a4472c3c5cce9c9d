//! Following netapi's state feed (`tenet.netapi.v1.StateFeed/WatchState`): a snapshot,
//! then every committed change, in revision order. The stream is resumed from the last
//! revision received when netapi restarts or the connection drops, so nothing is
//! missed or repeated and the switches are not re-synced. Keystone tokens are fetched
//! with the password from the environment (an openrc), or given directly.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tonic::metadata::MetadataValue;

/// The generated netapi client.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("tenet.netapi.v1");
}

use pb::state_feed_client::StateFeedClient;
use pb::watch_event::Event;

/// How to authenticate to netapi.
#[derive(Debug, Clone)]
pub enum Auth {
    /// A Keystone token as it is (it expires: prefer a password).
    Token(String),
    /// Keystone v3 password authentication, scoped to a project.
    Password { auth_url: String, username: String, password: String, project: String, domain: String },
}

impl Auth {
    /// From the usual OpenStack environment (`OS_TOKEN`, or `OS_AUTH_URL`, `OS_USERNAME`,
    /// `OS_PASSWORD`, `OS_PROJECT_NAME`, `OS_USER_DOMAIN_NAME`).
    pub fn from_env() -> Result<Auth, String> {
        if let Ok(t) = std::env::var("OS_TOKEN") {
            return Ok(Auth::Token(t));
        }
        let var = |k: &str| {
            std::env::var(k).map_err(|_| format!("{k} is not set (source an openrc, e.g. target/lab/openrc)"))
        };
        Ok(Auth::Password {
            auth_url: var("OS_AUTH_URL")?,
            username: var("OS_USERNAME")?,
            password: var("OS_PASSWORD")?,
            project: var("OS_PROJECT_NAME")?,
            domain: std::env::var("OS_USER_DOMAIN_NAME").unwrap_or_else(|_| "Default".into()),
        })
    }

    async fn token(&self) -> Result<String, String> {
        match self {
            Auth::Token(t) => Ok(t.clone()),
            Auth::Password { auth_url, username, password, project, domain } => {
                let body = serde_json::json!({"auth": {
                    "identity": {"methods": ["password"], "password": {"user": {
                        "name": username, "domain": {"name": domain}, "password": password}}},
                    "scope": {"project": {"name": project, "domain": {"name": domain}}}
                }});
                keystone_token(auth_url, &body.to_string()).await
            }
        }
    }
}

/// POST {auth_url}/auth/tokens over plain HTTP/1.1; the token is the X-Subject-Token header.
async fn keystone_token(auth_url: &str, body: &str) -> Result<String, String> {
    let rest =
        auth_url.strip_prefix("http://").ok_or_else(|| format!("{auth_url}: only http:// URLs are supported"))?;
    let (hostport, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
    let path = format!("/{}/auth/tokens", path.trim_end_matches('/')).replace("//", "/");
    let mut stream =
        tokio::net::TcpStream::connect(hostport).await.map_err(|e| format!("keystone at {hostport}: {e}"))?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .map_err(|_| "keystone did not answer within 10 s".to_string())?
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let status = head.split_whitespace().nth(1).unwrap_or_default();
    if status != "201" && status != "200" {
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
        return Err(format!("keystone answered {status}: {}", body.chars().take(200).collect::<String>()));
    }
    head.lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("x-subject-token")))
        .map(|(_, v)| v.trim().to_string())
        .ok_or_else(|| "keystone answered without X-Subject-Token".to_string())
}

/// What the feed hands the engine, in order.
#[derive(Debug)]
pub enum FeedMsg {
    /// A snapshot starts: build the state afresh from what follows.
    SnapshotBegin(i64),
    Objects(Vec<pb::StateObject>),
    /// The snapshot is complete at this revision.
    SnapshotEnd(i64),
    /// The changes of one revision.
    Changes(pb::RevisionChanges),
}

/// Follows the feed until `shutdown`, reconnecting with backoff and resuming from the
/// last revision handed on (0 at first: a snapshot).
pub async fn run(grpc: String, auth: Auth, tx: mpsc::Sender<FeedMsg>, mut shutdown: watch::Receiver<bool>) {
    let mut revision = 0i64;
    let mut backoff = Duration::from_millis(100);
    loop {
        let attempt = follow(&grpc, &auth, &mut revision, &tx);
        tokio::select! {
            r = attempt => {
                match r {
                    Ok(()) => tracing::warn!(revision, "netapi closed the state feed; resuming"),
                    Err(e) => tracing::warn!(revision, error = %e, retry_ms = backoff.as_millis() as u64, "netapi state feed unavailable"),
                }
            }
            _ = shutdown.changed() => return,
        }
        if tx.is_closed() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

// tonic's interceptor signature returns `Result<_, Status>`, a large error by design.
#[allow(clippy::result_large_err)]
async fn follow(grpc: &str, auth: &Auth, revision: &mut i64, tx: &mpsc::Sender<FeedMsg>) -> Result<(), String> {
    let token = auth.token().await?;
    let token: MetadataValue<_> = token.parse().map_err(|_| "token is not a valid header value".to_string())?;
    let channel = tonic::transport::Endpoint::from_shared(grpc.to_string())
        .map_err(|e| format!("{grpc}: {e}"))?
        .connect_timeout(Duration::from_secs(3))
        .connect()
        .await
        .map_err(|e| format!("{grpc}: {e}"))?;
    let mut client = StateFeedClient::with_interceptor(channel, move |mut req: tonic::Request<()>| {
        req.metadata_mut().insert("x-auth-token", token.clone());
        Ok(req)
    })
    .max_decoding_message_size(64 << 20);
    let mut stream = client
        .watch_state(pb::WatchRequest { from_revision: *revision })
        .await
        .map_err(|s| format!("WatchState: {}: {}", s.code(), s.message()))?
        .into_inner();
    tracing::info!(from_revision = *revision, "following netapi's state feed");
    while let Some(ev) = stream.message().await.map_err(|s| format!("{}: {}", s.code(), s.message()))? {
        let msg = match ev.event {
            Some(Event::SnapshotBegin(b)) => FeedMsg::SnapshotBegin(b.revision),
            Some(Event::SnapshotObjects(o)) => FeedMsg::Objects(o.objects),
            Some(Event::SnapshotEnd(e)) => {
                *revision = e.revision;
                FeedMsg::SnapshotEnd(e.revision)
            }
            Some(Event::Changes(c)) => {
                *revision = c.revision;
                FeedMsg::Changes(c)
            }
            None => continue,
        };
        if tx.send(msg).await.is_err() {
            return Ok(());
        }
    }
    Ok(())
}
