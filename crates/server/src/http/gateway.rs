//! A trustless IPFS gateway for the caller's files: `GET /ipfs/{cid}?format=raw` (the root
//! block, `application/vnd.ipld.raw`) and `?format=car` (every block of the file's DAG in a
//! CARv1, `application/vnd.ipld.car`), so any IPFS tool can check what Cairn serves against
//! the CID. The `Accept` header may ask for either instead of `format`. Same access rule as
//! `/v1/files`: the caller must have the file.

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use cairn_core::content::car;
use serde::Deserialize;

use super::files::{piece_stream, record};
use super::{AppState, Error};
use crate::auth::User;
use crate::files::DagWalk;

const RAW: &str = "application/vnd.ipld.raw";
const CAR: &str = "application/vnd.ipld.car";

#[derive(Debug, Deserialize)]
pub struct GatewayQuery {
    format: Option<String>,
}

/// `GET /ipfs/{cid}`.
pub async fn get(
    State(state): State<AppState>,
    User(user): User,
    Path(cid): Path<String>,
    query: Result<Query<GatewayQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let Query(query) = query.map_err(|e| Error::BadRequest(e.body_text()))?;
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let car = match query.format.as_deref() {
        Some("car") => true,
        Some("raw") => false,
        Some(other) => {
            return Err(Error::BadRequest(format!(
                "format {other:?}: this gateway serves format=raw and format=car"
            )));
        }
        None if accept.contains(CAR) => true,
        None if accept.contains(RAW) => false,
        None => {
            return Err(Error::BadRequest(
                "this is a trustless gateway: ask for ?format=raw or ?format=car".into(),
            ));
        }
    };
    let (cid, _) = record(&state, &user, &cid).await?;
    let walk = DagWalk::new(state.files.blocks.clone(), cid);
    let (content_type, etag) = if car {
        (format!("{CAR}; version=1"), format!("\"{cid}.car\""))
    } else {
        (RAW.to_owned(), format!("\"{cid}.raw\""))
    };
    let body = if car {
        let header =
            futures::stream::once(async move { Ok(bytes::Bytes::from(car::header(&cid))) });
        let sections = piece_stream(walk, cid, "CAR export", |walk| {
            Box::pin(async move {
                let next = walk.next_block().await?;
                Ok(next.map(|(cid, data)| car::section(&cid, &data)))
            })
        });
        Body::from_stream(futures::StreamExt::chain(header, sections))
    } else {
        let block = state.files.blocks.get(&cid).await?.ok_or_else(|| {
            Error::Internal(anyhow::anyhow!("block {cid} of a stored file is missing"))
        })?;
        Body::from(block)
    };
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    let h = response.headers_mut();
    let value = |s: String| HeaderValue::from_str(&s).map_err(|e| Error::Internal(e.into()));
    h.insert(header::CONTENT_TYPE, value(content_type)?);
    h.insert(header::ETAG, value(etag)?);
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    Ok(response)
}
