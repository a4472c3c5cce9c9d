//! A small JSON-over-HTTP client for the services the API calls: Keystone and Neutron
//! (netapi) and the agents. Unlike `tenet_netapi::client::Rest` it takes any headers
//! (Keystone's `X-Subject-Token`) and full URLs (agents each have their own).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// How long one call may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// An answer: status, the `X-Subject-Token` header if any, the body as JSON (`Null` if none).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub subject_token: Option<String>,
    pub body: Value,
}

/// Keep-alive HTTP/1.1 client (cheap to clone).
#[derive(Clone, Debug)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for Http {
    fn default() -> Self {
        Http::new()
    }
}

impl Http {
    pub fn new() -> Http {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector);
        Http { client }
    }

    /// Sends `method url` with `headers` and an optional JSON body.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Answer, String> {
        let mut req = hyper::Request::builder().method(method).uri(url).header("accept", "application/json");
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
        let req = req.body(Full::new(payload)).map_err(|e| format!("{url}: {e}"))?;
        let call = async {
            let resp = self.client.request(req).await.map_err(|e| format!("{url}: {e}"))?;
            let (parts, body) = resp.into_parts();
            let bytes = body.collect().await.map_err(|e| format!("{url}: {e}"))?.to_bytes();
            let body =
                if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
            let subject_token = parts.headers.get("x-subject-token").and_then(|v| v.to_str().ok()).map(str::to_string);
            Ok(Answer { status: parts.status, subject_token, body })
        };
        tokio::time::timeout(TIMEOUT, call).await.map_err(|_| format!("{url}: timed out"))?
    }
}
