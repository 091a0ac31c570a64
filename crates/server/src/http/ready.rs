//! `GET /v1/ready`: 200 when the server can serve (database reachable, migrations current,
//! blockstore writable, not shutting down), else 503 `E_UNAVAILABLE` naming the failing
//! parts. `GET /v1/health` only says the process answers.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::schema::Ready;

pub async fn ready(State(state): State<AppState>) -> Response {
    let stopping = state.lifecycle.is_shutting_down();
    let (checks, failing) = state.readiness.check(stopping).await;
    if failing.is_empty() {
        let ready = Ready {
            status: "ready".into(),
            checks,
        };
        return Json(ready).into_response();
    }
    let error = json!({
        "code": "E_UNAVAILABLE",
        "message": format!("not ready: {}", failing.join(", ")),
        "checks": checks,
    });
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "error": error })),
    )
        .into_response()
}
