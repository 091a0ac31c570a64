//! Record shapes of the IndexedDB stores, to and from JavaScript objects.

use cairn_core::content::Cid;
use cairn_core::outbox::{FileUpload, OpKind, OpStatus, OutboxEntry};
use cairn_core::{ChangeHash, DocumentId, OpId};
use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue, intern};

use crate::ClientError;

pub fn set(target: &Object, key: &str, value: &JsValue) -> Result<(), ClientError> {
    Reflect::set(target, &JsValue::from_str(intern(key)), value)
        .map(|_| ())
        .map_err(|_| ClientError::Storage(format!("cannot build the {key} field")))
}

pub fn get_field(record: &JsValue, key: &str) -> JsValue {
    Reflect::get(record, &JsValue::from_str(intern(key))).unwrap_or(JsValue::UNDEFINED)
}

pub fn document_record(
    id: &str,
    snapshot: Option<&[u8]>,
    now: f64,
) -> Result<JsValue, ClientError> {
    let r = Object::new();
    set(&r, "id", &JsValue::from_str(id))?;
    if let Some(s) = snapshot {
        set(&r, "snapshot", &Uint8Array::from(s).into())?;
    }
    set(&r, "updated", &JsValue::from_f64(now))?;
    Ok(r.into())
}

pub fn change_row(doc: &str, bytes: &[u8], local: bool) -> Result<JsValue, ClientError> {
    let r = Object::new();
    set(&r, "doc", &JsValue::from_str(doc))?;
    set(&r, "bytes", &Uint8Array::from(bytes).into())?;
    set(&r, "local", &JsValue::from_bool(local))?;
    Ok(r.into())
}

fn hex_list(hashes: &[ChangeHash]) -> JsValue {
    hashes
        .iter()
        .map(|h| JsValue::from_str(&h.to_string()))
        .collect::<Array>()
        .into()
}

pub fn heads(value: &JsValue) -> Vec<ChangeHash> {
    value
        .dyn_ref::<Array>()
        .map(|a| {
            a.iter()
                .filter_map(|h| h.as_string()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

pub fn sync_record(doc: &str, heads: &[ChangeHash]) -> Result<JsValue, ClientError> {
    let r = Object::new();
    set(&r, "doc", &JsValue::from_str(doc))?;
    set(&r, "heads", &hex_list(heads))?;
    Ok(r.into())
}

fn status_str(status: &OpStatus) -> &'static str {
    match status {
        OpStatus::Pending => "pending",
        OpStatus::InFlight => "in-flight",
        OpStatus::Acked => "acked",
        OpStatus::Failed { .. } => "failed",
    }
}

/// An outbox entry as stored (`with_seq`: for updates; new entries get an auto key) and as
/// shown to the application by `repo.outbox()`. `kind` is `changes` (with `doc` and
/// `changes`), `file-upload` (`cid`, `size`, `name`, `type`, `metadata`, `doc`, `cancelled`)
/// or `file-delete` (`cid`).
pub fn outbox_record(entry: &OutboxEntry, with_seq: bool) -> Result<JsValue, ClientError> {
    let r = Object::new();
    if with_seq {
        set(&r, "seq", &JsValue::from_f64(entry.seq as f64))?;
    }
    set(&r, "id", &JsValue::from_str(&entry.id.to_string()))?;
    let str = |v: &str| JsValue::from_str(v);
    match &entry.kind {
        OpKind::DocumentChanges { document, changes } => {
            set(&r, "kind", &str("changes"))?;
            set(&r, "doc", &str(&document.to_string()))?;
            let blobs: Array = changes
                .iter()
                .map(|c| JsValue::from(Uint8Array::from(c.as_slice())))
                .collect();
            set(&r, "changes", &blobs.into())?;
        }
        OpKind::FileUpload(upload) => {
            set(&r, "kind", &str("file-upload"))?;
            set(&r, "cid", &str(&upload.cid.to_string()))?;
            set(&r, "size", &JsValue::from_f64(upload.size as f64))?;
            set(&r, "name", &str(&upload.name))?;
            set(&r, "type", &str(&upload.content_type))?;
            set(&r, "metadata", &str(&upload.metadata))?;
            let doc = upload.document.map(|d| d.to_string());
            set(&r, "doc", &doc.as_deref().map_or(JsValue::NULL, str))?;
            set(&r, "cancelled", &JsValue::from_bool(upload.cancelled))?;
        }
        OpKind::FileDelete { cid } => {
            set(&r, "kind", &str("file-delete"))?;
            set(&r, "cid", &str(&cid.to_string()))?;
        }
    }
    set(
        &r,
        "attempts",
        &JsValue::from_f64(f64::from(entry.attempts)),
    )?;
    set(
        &r,
        "nextAttemptAt",
        &JsValue::from_f64(entry.next_attempt_at as f64),
    )?;
    set(&r, "status", &JsValue::from_str(status_str(&entry.status)))?;
    let code = match &entry.status {
        OpStatus::Failed { code } => Some(code.as_str()),
        _ => entry.last_error.as_deref(),
    };
    set(&r, "code", &code.map_or(JsValue::NULL, JsValue::from_str))?;
    set(&r, "createdAt", &JsValue::from_f64(entry.created_at as f64))?;
    Ok(r.into())
}

/// The application's view of an entry: no change bytes, just their count.
pub fn outbox_entry_to_js(entry: &OutboxEntry) -> Result<JsValue, ClientError> {
    let r = outbox_record(entry, true)?;
    if let OpKind::DocumentChanges { changes, .. } = &entry.kind {
        let object: &Object = r.unchecked_ref();
        let _ = Reflect::delete_property(object, &JsValue::from_str("changes"));
        set(
            object,
            "changeCount",
            &JsValue::from_f64(changes.len() as f64),
        )?;
    }
    Ok(r)
}

fn kind_of(record: &JsValue, bad: impl Fn(&str) -> ClientError) -> Result<OpKind, ClientError> {
    let text = |k: &str| get_field(record, k).as_string();
    let cid = || -> Result<Cid, ClientError> {
        text("cid")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("cid"))
    };
    let document = |required: bool| -> Result<Option<DocumentId>, ClientError> {
        match text("doc") {
            Some(s) => s.parse().map(Some).map_err(|_| bad("doc")),
            None if required => Err(bad("doc")),
            None => Ok(None),
        }
    };
    Ok(match text("kind").as_deref() {
        // Version 2 wrote only change entries.
        None | Some("changes") => OpKind::DocumentChanges {
            document: document(true)?.ok_or_else(|| bad("doc"))?,
            changes: get_field(record, "changes")
                .dyn_into::<Array>()
                .map_err(|_| bad("changes"))?
                .iter()
                .map(|c| {
                    c.dyn_into::<Uint8Array>()
                        .map(|a| a.to_vec())
                        .map_err(|_| bad("change"))
                })
                .collect::<Result<Vec<_>, _>>()?,
        },
        Some("file-upload") => OpKind::FileUpload(FileUpload {
            cid: cid()?,
            size: get_field(record, "size")
                .as_f64()
                .ok_or_else(|| bad("size"))? as u64,
            name: text("name").unwrap_or_default(),
            content_type: text("type").unwrap_or_default(),
            metadata: text("metadata").unwrap_or_else(|| "{}".into()),
            document: document(false)?,
            cancelled: get_field(record, "cancelled").as_bool().unwrap_or(false),
        }),
        Some("file-delete") => OpKind::FileDelete { cid: cid()? },
        Some(_) => return Err(bad("kind")),
    })
}

pub fn outbox_entry(record: &JsValue) -> Result<OutboxEntry, ClientError> {
    let bad = |what: &str| ClientError::Storage(format!("unreadable outbox entry: {what}"));
    let number = |k: &str| get_field(record, k).as_f64().ok_or_else(|| bad(k));
    let id: OpId = get_field(record, "id")
        .as_string()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("id"))?;
    let kind = kind_of(record, bad)?;
    let code = get_field(record, "code").as_string();
    let status = match get_field(record, "status").as_string().as_deref() {
        Some("in-flight") => OpStatus::InFlight,
        Some("failed") => OpStatus::Failed {
            code: code.clone().unwrap_or_default(),
        },
        _ => OpStatus::Pending,
    };
    Ok(OutboxEntry {
        id,
        seq: number("seq")? as u64,
        kind,
        attempts: number("attempts")? as u32,
        next_attempt_at: number("nextAttemptAt")? as u64,
        status,
        created_at: number("createdAt")? as u64,
        last_error: code,
    })
}
