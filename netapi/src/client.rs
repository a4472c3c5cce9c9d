//! Clients for the services that use netapi (compute, storage, the controller, tests and
//! the benchmark): a small JSON-over-HTTP client for Keystone and Neutron, and the gRPC
//! clients with the Keystone token attached to every call.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tenet_netapi::client::ClientError> {
//! use tenet_netapi::client::{connect_grpc, Rest};
//! let rest = Rest::new("http://127.0.0.1:9696");
//! let token = rest.password_token("nova", "secret", "service").await?;
//! let (mut registry, mut feed) = connect_grpc("http://127.0.0.1:9697", &token).await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::HeaderMap;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};

pub use hyper::{Method, StatusCode};
/// The gRPC library the clients are built on, for callers that need its types (`Code`, `Streaming`).
pub use tonic;

use crate::grpc::pb::port_registry_client::PortRegistryClient;
use crate::grpc::pb::state_feed_client::StateFeedClient;
use crate::grpc::TOKEN_METADATA;

/// Errors of the clients.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL or a header value is malformed.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The HTTP exchange failed.
    #[error("HTTP request failed: {0}")]
    Http(String),
    /// The server answered with an unexpected status.
    #[error("{method} {path}: HTTP {status}: {body}")]
    Status {
        /// Request method.
        method: String,
        /// Request path.
        path: String,
        /// The status received.
        status: u16,
        /// The body received.
        body: String,
    },
    /// The gRPC channel could not be set up.
    #[error("gRPC connection failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// An HTTP answer: status, headers and the body parsed as JSON (`Null` when empty or not JSON).
#[derive(Clone, Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The JSON body.
    pub body: Value,
}

/// A JSON-over-HTTP/1.1 client for the REST API, with keep-alive connections (cheap to clone).
#[derive(Clone, Debug)]
pub struct Rest {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Rest {
    /// A client for the server at `base` (`http://127.0.0.1:9696`).
    pub fn new(base: &str) -> Rest {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector);
        Rest { base: base.trim_end_matches('/').to_string(), client }
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends `method path` (relative to the base) with an optional token and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Answer, ClientError> {
        let headers: Vec<(&str, &str)> = token.map(|t| ("x-auth-token", t)).into_iter().collect();
        self.call_with_headers(method, path, &headers, body).await
    }

    /// Like [`Rest::call`] with any request headers (e.g. Keystone's `X-Subject-Token`).
    pub async fn call_with_headers(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Answer, ClientError> {
        let uri = format!("{}{path}", self.base);
        let mut req = hyper::Request::builder().method(method).uri(&uri).header("accept", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let payload = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Bytes::from(b.to_string())
            }
            None => Bytes::new(),
        };
        let req = req.body(Full::new(payload)).map_err(|e| ClientError::Invalid(e.to_string()))?;
        let resp = self.client.request(req).await.map_err(|e| ClientError::Http(format!("{uri}: {e}")))?;
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.map_err(|e| ClientError::Http(format!("{uri}: {e}")))?.to_bytes();
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        Ok(Answer { status: parts.status, headers: parts.headers, body })
    }

    /// Like [`Rest::call`], failing unless the answer is `expected`; returns the body.
    pub async fn expect(
        &self,
        expected: StatusCode,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let answer = self.call(method.clone(), path, token, body).await?;
        if answer.status != expected {
            return Err(ClientError::Status {
                method: method.to_string(),
                path: path.to_string(),
                status: answer.status.as_u16(),
                body: answer.body.to_string(),
            });
        }
        Ok(answer.body)
    }

    /// Validates `subject` (`GET /v3/auth/tokens` with `X-Subject-Token`), authenticated
    /// with `own` (a token allowed to validate others: admin or service); returns the
    /// token body (`{"token": {...}}`).
    pub async fn validate_token(&self, own: &str, subject: &str) -> Result<Value, ClientError> {
        let headers = [("x-auth-token", own), ("x-subject-token", subject)];
        let answer = self.call_with_headers(Method::GET, "/v3/auth/tokens", &headers, None).await?;
        if answer.status != StatusCode::OK {
            return Err(ClientError::Status {
                method: "GET".into(),
                path: "/v3/auth/tokens".into(),
                status: answer.status.as_u16(),
                body: answer.body.to_string(),
            });
        }
        Ok(answer.body)
    }

    /// Issues a project-scoped token for `user` (password authentication); returns its id.
    pub async fn password_token(&self, user: &str, password: &str, project: &str) -> Result<String, ClientError> {
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {"name": user, "password": password, "domain": {"name": "Default"}}}},
            "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}});
        let answer = self.call(Method::POST, "/v3/auth/tokens", None, Some(&body)).await?;
        if answer.status != StatusCode::CREATED {
            return Err(ClientError::Status {
                method: "POST".into(),
                path: "/v3/auth/tokens".into(),
                status: answer.status.as_u16(),
                body: answer.body.to_string(),
            });
        }
        answer
            .headers
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| ClientError::Http("no X-Subject-Token in the answer".into()))
    }
}

/// Adds the Keystone token to every gRPC call.
#[derive(Clone, Debug)]
pub struct TokenInterceptor {
    token: MetadataValue<Ascii>,
}

impl TokenInterceptor {
    /// An interceptor sending `token`.
    pub fn new(token: &str) -> Result<TokenInterceptor, ClientError> {
        let token =
            token.parse().map_err(|_| ClientError::Invalid("the token is not a valid metadata value".into()))?;
        Ok(TokenInterceptor { token })
    }
}

impl Interceptor for TokenInterceptor {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert(TOKEN_METADATA, self.token.clone());
        Ok(request)
    }
}

/// A gRPC channel whose calls carry a token.
pub type AuthChannel = InterceptedService<Channel, TokenInterceptor>;

/// Connects to the gRPC API at `endpoint` (`http://127.0.0.1:9697`): a `PortRegistry` and
/// a `StateFeed` client on one channel, both sending `token`.
pub async fn connect_grpc(
    endpoint: &str,
    token: &str,
) -> Result<(PortRegistryClient<AuthChannel>, StateFeedClient<AuthChannel>), ClientError> {
    let channel = Endpoint::from_shared(endpoint.to_string())
        .map_err(|e| ClientError::Invalid(format!("{endpoint}: {e}")))?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?;
    let interceptor = TokenInterceptor::new(token)?;
    Ok((
        PortRegistryClient::with_interceptor(channel.clone(), interceptor.clone()),
        StateFeedClient::with_interceptor(channel, interceptor),
    ))
}
