//! Document resources: the merged document, and its access list.

use super::schema::{DocumentEntry, DocumentList, MemberList, RoleBody};
use super::{AppState, Error};
use crate::auth::{User, valid_user};
use crate::hub::Mark;
use crate::store::Role;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use cairn_core::DocumentId;

fn parse(id: &str) -> Result<DocumentId, Error> {
    id.parse()
        .map_err(|e: cairn_core::DocumentIdError| Error::InvalidDocumentId(e.to_string()))
}

/// `GET /v1/docs/{id}`: the document as saved Automerge bytes; its heads in `x-cairn-heads`.
pub async fn get(
    State(state): State<AppState>,
    User(user): User,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Error> {
    let document = parse(&id)?;
    let missing = state
        .documents
        .missing(&user, &document, &[], usize::MAX, Mark::Unknown)
        .await?;
    let heads: Vec<String> = missing.heads.iter().map(ToString::to_string).collect();
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                header::HeaderName::from_static("x-cairn-heads"),
                heads.join(","),
            ),
        ],
        missing.data,
    ))
}

/// `GET /v1/docs`: `{"documents": [{"id", "role"}]}`, every document the caller may read.
pub async fn list(
    State(state): State<AppState>,
    User(user): User,
) -> Result<impl IntoResponse, Error> {
    let documents = state.documents.store.documents_for(&user).await?;
    let documents = documents
        .iter()
        .map(|(id, role)| DocumentEntry {
            id: id.to_string(),
            role: *role,
        })
        .collect();
    Ok(Json(DocumentList { documents }))
}

/// `GET /v1/docs/{id}/members` (owner only).
pub async fn members(
    State(state): State<AppState>,
    User(user): User,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Error> {
    let document = parse(&id)?;
    let (owner, members) = state.documents.members(&user, &document).await?;
    Ok(Json(MemberList {
        document: document.to_string(),
        owner,
        members,
    }))
}

/// `PUT /v1/docs/{id}/members/{user}` with `{"role": "writer" | "reader"}` (owner only).
pub async fn put_member(
    State(state): State<AppState>,
    User(user): User,
    Path((id, member)): Path<(String, String)>,
    body: Result<Json<RoleBody>, axum::extract::rejection::JsonRejection>,
) -> Result<impl IntoResponse, Error> {
    let document = parse(&id)?;
    let Json(RoleBody { role }) = body.map_err(|e| Error::BadRequest(e.body_text()))?;
    if !valid_user(&member) || role == Role::Owner {
        return Err(Error::BadRequest(
            "a member is a valid user id with role writer or reader".into(),
        ));
    }
    state
        .documents
        .set_member(&user, &document, &member, Some(role))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/docs/{id}/members/{user}` (owner only).
pub async fn delete_member(
    State(state): State<AppState>,
    User(user): User,
    Path((id, member)): Path<(String, String)>,
) -> Result<impl IntoResponse, Error> {
    let document = parse(&id)?;
    state
        .documents
        .set_member(&user, &document, &member, None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
