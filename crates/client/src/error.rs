//! `ClientError`: every failure the SDK reports, each with a stable `code` that JavaScript
//! can switch on (`err.code`), as automerge-wasm's errors do.

use wasm_bindgen::JsValue;

/// An SDK error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached (offline, DNS, connection refused, CORS).
    #[error("the server is unreachable: {0}")]
    Offline(String),
    /// The browser refused to store more data.
    #[error("storage quota exceeded: {0}")]
    Quota(String),
    /// IndexedDB failed or holds something unreadable.
    #[error("local storage failed: {0}")]
    Storage(String),
    /// An argument from the caller is invalid (e.g. a malformed document id).
    #[error("{0}")]
    InvalidArgument(String),
    /// No such document.
    #[error("document {0} not found")]
    NotFound(String),
    /// The server answered with an error; `code` is the server's stable code.
    #[error("server error {status} {code}: {message}")]
    Server {
        status: u16,
        code: String,
        message: String,
    },
    /// The operation cannot run now (e.g. closing a repo with operations in flight).
    #[error("{0}")]
    Busy(String),
    /// The server's reply did not follow the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// Bytes received for a file are not the file its CID names (nothing was kept).
    #[error("{0}")]
    Corrupt(String),
}

impl ClientError {
    /// The stable code (`E_OFFLINE`, `E_QUOTA`, ...). Server errors keep the server's code.
    pub fn code(&self) -> &str {
        match self {
            ClientError::Offline(_) => "E_OFFLINE",
            ClientError::Quota(_) => "E_QUOTA",
            ClientError::Storage(_) => "E_STORAGE",
            ClientError::InvalidArgument(_) => "E_INVALID_ARGUMENT",
            ClientError::NotFound(_) => "E_NOT_FOUND",
            ClientError::Server { code, .. } => code,
            ClientError::Busy(_) => "E_BUSY",
            ClientError::Protocol(_) => "E_PROTOCOL",
            ClientError::Corrupt(_) => "E_CORRUPT",
        }
    }

    /// Whether trying again later may succeed (offline, a busy or failing server, storage
    /// that may free up); `false` for a refusal that will not change.
    pub fn retryable(&self) -> bool {
        match self {
            ClientError::Offline(_) | ClientError::Quota(_) | ClientError::Storage(_) => true,
            ClientError::Server { status, .. } => {
                cairn_core::sync::client::failure_for_status(*status)
                    == cairn_core::retry::Failure::Retryable
            }
            _ => false,
        }
    }

    /// A JavaScript `Error` with `code` (and `status` for server errors) set.
    pub fn to_js(&self) -> JsValue {
        let error = js_sys::Error::new(&self.to_string());
        error.set_name("CairnError");
        let set = |key: &str, value: JsValue| {
            let _ = js_sys::Reflect::set(&error, &JsValue::from_str(key), &value);
        };
        set("code", JsValue::from_str(self.code()));
        if let ClientError::Server { status, .. } = self {
            set("status", JsValue::from(*status));
        }
        error.into()
    }
}

impl From<rexie::Error> for ClientError {
    fn from(e: rexie::Error) -> Self {
        let text = e.to_string();
        if text.contains("QuotaExceeded") {
            ClientError::Quota(text)
        } else {
            ClientError::Storage(text)
        }
    }
}

impl From<ClientError> for JsValue {
    fn from(e: ClientError) -> Self {
        e.to_js()
    }
}
