//! Path operations on a document: what `doc.change(...)` in JavaScript records and the
//! engine applies as one Automerge change.
//!
//! A path is an array of map keys (strings) and list indexes (numbers) from the root.
//! Operations: `put` (set a key or list slot; appends when the index is the list's length),
//! `delete`, `insert` (into a list), `splice` (a text: delete and insert characters) and
//! `increment` (a counter).

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ObjType, ReadDoc, Value};
use js_sys::{Array, Reflect};
use wasm_bindgen::{JsCast, JsValue, intern};

use super::value::{self, Slot};
use crate::ClientError;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// One path operation.
#[derive(Debug)]
pub enum Op {
    Put {
        path: Vec<Seg>,
        value: JsValue,
    },
    Delete {
        path: Vec<Seg>,
    },
    Insert {
        path: Vec<Seg>,
        index: usize,
        value: JsValue,
    },
    Splice {
        path: Vec<Seg>,
        index: usize,
        delete: usize,
        text: String,
    },
    Increment {
        path: Vec<Seg>,
        by: i64,
    },
}

fn invalid(what: impl Into<String>) -> ClientError {
    ClientError::InvalidArgument(what.into())
}

fn field(op: &JsValue, name: &str) -> JsValue {
    Reflect::get(op, &JsValue::from_str(intern(name))).unwrap_or(JsValue::UNDEFINED)
}

fn index(v: &JsValue, what: &str) -> Result<usize, ClientError> {
    v.as_f64()
        .filter(|n| n.fract() == 0.0 && *n >= 0.0 && *n < 4_294_967_296.0)
        .map(|n| n as usize)
        .ok_or_else(|| invalid(format!("{what} must be a non-negative integer")))
}

fn path(v: &JsValue) -> Result<Vec<Seg>, ClientError> {
    let array = v
        .dyn_ref::<Array>()
        .ok_or_else(|| invalid("a path is an array of keys and indexes"))?;
    array
        .iter()
        .map(|s| match s.as_string() {
            Some(key) => Ok(Seg::Key(key)),
            None => index(&s, "a path index").map(Seg::Index),
        })
        .collect()
}

/// Reads `[{op, path, ...}, ...]` from JavaScript.
pub fn parse(ops: &JsValue) -> Result<Vec<Op>, ClientError> {
    let array = ops
        .dyn_ref::<Array>()
        .ok_or_else(|| invalid("operations must be an array"))?;
    array
        .iter()
        .map(|op| {
            let path = path(&field(&op, "path"))?;
            match field(&op, "op").as_string().as_deref() {
                Some("put") => Ok(Op::Put {
                    path,
                    value: field(&op, "value"),
                }),
                Some("delete") => Ok(Op::Delete { path }),
                Some("insert") => Ok(Op::Insert {
                    path,
                    index: index(&field(&op, "index"), "index")?,
                    value: field(&op, "value"),
                }),
                Some("splice") => Ok(Op::Splice {
                    path,
                    index: index(&field(&op, "index"), "index")?,
                    delete: index(&field(&op, "delete"), "delete")?,
                    text: field(&op, "text").as_string().unwrap_or_default(),
                }),
                Some("increment") => Ok(Op::Increment {
                    path,
                    by: field(&op, "by")
                        .as_f64()
                        .filter(|n| n.fract() == 0.0)
                        .map_or(1, |n| n as i64),
                }),
                other => Err(invalid(format!("unknown operation {other:?}"))),
            }
        })
        .collect()
}

/// The object at `path`.
fn object_at(doc: &AutoCommit, path: &[Seg]) -> Result<(ObjId, ObjType), ClientError> {
    let mut obj = automerge::ROOT;
    let mut kind = ObjType::Map;
    for seg in path {
        let got = match seg {
            Seg::Key(k) => doc.get(&obj, k.as_str()),
            Seg::Index(i) => doc.get(&obj, *i),
        };
        match got.map_err(|e| invalid(e.to_string()))? {
            Some((Value::Object(t), id)) => {
                obj = id;
                kind = t;
            }
            _ => return Err(invalid(format!("no object at {path:?}"))),
        }
    }
    Ok((obj, kind))
}

/// The parent object of `path` and its last step.
fn parent_of<'p>(
    doc: &AutoCommit,
    path: &'p [Seg],
) -> Result<(ObjId, ObjType, &'p Seg), ClientError> {
    let (last, parent) = path
        .split_last()
        .ok_or_else(|| invalid("the path is empty"))?;
    let (obj, kind) = object_at(doc, parent)?;
    Ok((obj, kind, last))
}

/// Applies one operation inside the document's open transaction.
pub fn apply(doc: &mut AutoCommit, op: &Op) -> Result<(), ClientError> {
    let am = |e: automerge::AutomergeError| invalid(e.to_string());
    match op {
        Op::Put { path, value: v } => {
            let (obj, kind, last) = parent_of(doc, path)?;
            let slot = match (kind, last) {
                (ObjType::Map, Seg::Key(k)) => Slot::Key(k.clone()),
                (ObjType::List, Seg::Index(i)) if *i < doc.length(&obj) => Slot::Put(*i),
                (ObjType::List, Seg::Index(i)) if *i == doc.length(&obj) => Slot::Insert(*i),
                _ => return Err(invalid(format!("cannot put at {path:?}"))),
            };
            value::put(doc, &obj, slot, v)
        }
        Op::Delete { path } => {
            let (obj, _, last) = parent_of(doc, path)?;
            match last {
                Seg::Key(k) => doc.delete(&obj, k.as_str()),
                Seg::Index(i) => doc.delete(&obj, *i),
            }
            .map_err(am)
        }
        Op::Insert {
            path,
            index,
            value: v,
        } => {
            let (obj, kind) = object_at(doc, path)?;
            if kind != ObjType::List || *index > doc.length(&obj) {
                return Err(invalid(format!("cannot insert at {index} of {path:?}")));
            }
            value::put(doc, &obj, Slot::Insert(*index), v)
        }
        Op::Splice {
            path,
            index,
            delete,
            text,
        } => {
            let (obj, kind) = object_at(doc, path)?;
            if kind != ObjType::Text || index + delete > doc.length(&obj) {
                return Err(invalid(format!("cannot splice {path:?} at {index}")));
            }
            doc.splice_text(&obj, *index, *delete as isize, text)
                .map_err(am)
        }
        Op::Increment { path, by } => {
            let (obj, _, last) = parent_of(doc, path)?;
            match last {
                Seg::Key(k) => doc.increment(&obj, k.as_str(), *by),
                Seg::Index(i) => doc.increment(&obj, *i, *by),
            }
            .map_err(am)
        }
    }
}
