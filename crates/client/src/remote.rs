//! The server, as seen from the browser: where it is, the bearer token, and one
//! `POST /v1/sync` round trip.

use cairn_core::Message;
use cairn_core::protocol::{MEDIA_TYPE, SyncRequest, SyncResponse};

use crate::{ClientError, net};

/// Where and as whom to sync.
#[derive(Debug, Clone)]
pub struct Remote {
    /// Base URL, e.g. `https://example.com`.
    pub server: String,
    /// Bearer token (JWT).
    pub token: String,
}

impl Remote {
    /// The URL of `path` (which starts with `/`) on the server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.trim_end_matches('/'))
    }
}

/// `POST /v1/sync` with `request`.
pub async fn send_sync(remote: &Remote, request: SyncRequest) -> Result<SyncResponse, ClientError> {
    let url = remote.url("/v1/sync");
    let frame = Message::SyncRequest(request).encode();
    let reply = net::send(
        "POST",
        &url,
        Some(&remote.token),
        Some((MEDIA_TYPE, &frame)),
    )
    .await?;
    if reply.status != 200 {
        return Err(reply.into_error());
    }
    match Message::decode(&reply.body).map_err(|e| ClientError::Protocol(e.to_string()))? {
        Message::SyncResponse(response) => Ok(response),
        other => Err(ClientError::Protocol(format!(
            "expected a sync response, got {other:?}"
        ))),
    }
}
