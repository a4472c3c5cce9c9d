//! Errors as Nova renders them (`{"itemNotFound": {"code": 404, "message": ...}}`) and as
//! the OpenStack SDK parses Glance's (`{"error": {"code", "title", "message"}}`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Which API's error body to render.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Nova,
    Glance,
}

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub style: Style,
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), style: Style::Nova }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 for `label` ("Image", "Flavor", "Instance", ...) `id`.
    pub fn not_found(label: &str, id: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, format!("{label} {id} could not be found."))
    }

    pub fn no_route() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "The resource could not be found.")
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "The request you have made requires authentication.")
    }

    /// 403 for a policy refusal.
    pub fn policy(rule: &str) -> ApiError {
        ApiError::forbidden(format!("Policy doesn't allow {rule} to be performed."))
    }

    /// 500: ours, not the client's; the detail goes to the log only.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "internal failure");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Unexpected API Error. Please report this at https://github.com/ and attach the log.",
        )
    }

    /// 503: a service we depend on (Keystone, Neutron) does not answer.
    pub fn unavailable(what: impl std::fmt::Display) -> ApiError {
        tracing::warn!(error = %what, "dependency unavailable");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("Service unavailable: {what}"))
    }

    /// Renders as Glance.
    pub fn glance(mut self) -> ApiError {
        self.style = Style::Glance;
        self
    }

    /// Nova's wrapper name for the status.
    fn nova_kind(&self) -> &'static str {
        match self.status {
            StatusCode::BAD_REQUEST => "badRequest",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "itemNotFound",
            StatusCode::METHOD_NOT_ALLOWED => "badMethod",
            StatusCode::NOT_ACCEPTABLE => "notAcceptable",
            StatusCode::CONFLICT => "conflictingRequest",
            StatusCode::PAYLOAD_TOO_LARGE => "overLimit",
            StatusCode::SERVICE_UNAVAILABLE => "serviceUnavailable",
            _ => "computeFault",
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> ApiError {
        ApiError::internal(format!("database: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.status.as_u16();
        let body = match self.style {
            Style::Nova => json!({ self.nova_kind(): {"code": code, "message": self.message} }),
            Style::Glance => json!({"error": {
                "code": code,
                "title": self.status.canonical_reason().unwrap_or("Error"),
                "message": self.message,
            }}),
        };
        (self.status, Json(body)).into_response()
    }
}
