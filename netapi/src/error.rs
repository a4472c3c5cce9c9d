//! API errors, rendered the way the OpenStack clients parse them: Neutron's
//! `{"NeutronError": {"type", "message", "detail"}}` and Keystone's
//! `{"error": {"code", "title", "message"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::store::StoreError;

/// Which API's error body to render.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorStyle {
    /// `{"NeutronError": {...}}`
    Neutron,
    /// `{"error": {...}}`
    Keystone,
}

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
#[error("{status} {kind}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Neutron exception name (`NetworkNotFound`, `IpAddressAlreadyAllocated`, ...).
    pub kind: &'static str,
    /// Human-readable message.
    pub message: String,
    /// Body format.
    pub style: ErrorStyle,
}

/// Result of an API handler.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with the given status, Neutron type and message.
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, kind, message: message.into(), style: ErrorStyle::Neutron }
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "HTTPBadRequest", message)
    }

    /// 400 for a value that fails validation.
    pub fn invalid_input(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidInput",
            format!("Invalid input for operation: {}", message.into()),
        )
    }

    /// 404 for a `label` ("Network", "Port", ...) with `id` that does not exist or is not visible.
    pub fn not_found(label: &'static str, id: &str) -> ApiError {
        let kind = match label {
            "Network" => "NetworkNotFound",
            "Subnet" => "SubnetNotFound",
            "Port" => "PortNotFound",
            "Security group" => "SecurityGroupNotFound",
            "Security group rule" => "SecurityGroupRuleNotFound",
            "Port binding" => "PortBindingNotFound",
            "Port Pair" => "PortPairNotFound",
            "Port Pair Group" => "PortPairGroupNotFound",
            "Flow Classifier" => "FlowClassifierNotFound",
            "Port Chain" => "PortChainNotFound",
            _ => "NotFound",
        };
        ApiError::new(StatusCode::NOT_FOUND, kind, format!("{label} {id} could not be found."))
    }

    /// 404 for a path no handler serves.
    pub fn no_route() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "HTTPNotFound", "The resource could not be found.")
    }

    /// 409 Conflict.
    pub fn conflict(kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, kind, message)
    }

    /// 401: no or an invalid token.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "NotAuthenticated", message)
    }

    /// 403: authenticated but not allowed.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "PolicyNotAuthorized", message)
    }

    /// 500 for a failure that is ours, not the client's; the detail goes to the log only.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "internal failure");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "Request failed: internal server error.",
        )
    }

    /// Renders this error as Keystone does.
    pub fn keystone(mut self) -> ApiError {
        self.style = ErrorStyle::Keystone;
        self
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        if e.is_unique_violation() {
            ApiError::conflict("Conflict", "The object conflicts with an existing one.")
        } else if e.is_foreign_key_violation() {
            ApiError::conflict("InUse", "The object is in use or refers to an object that does not exist.")
        } else {
            tracing::error!(error = %e, "store failure");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "Request failed: internal server error.",
            )
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.style {
            ErrorStyle::Neutron => json!({"NeutronError": {"type": self.kind, "message": self.message, "detail": ""}}),
            ErrorStyle::Keystone => json!({"error": {
                "code": self.status.as_u16(),
                "title": self.status.canonical_reason().unwrap_or("Error"),
                "message": self.message,
            }}),
        };
        (self.status, Json(body)).into_response()
    }
}
