//! JavaScript values ↔ Automerge values, with the conventions of `@automerge/automerge`:
//! objects are maps, arrays are lists, strings are collaborative text, integers are `int`,
//! other numbers `f64`, `Uint8Array` is bytes, `Date` is a timestamp.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ObjType, ScalarValue, hydrate};
use js_sys::{Array, Date, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};

use crate::ClientError;

/// Where a value goes: a map key or a list index (insert) / list slot (put).
#[derive(Debug, Clone)]
pub enum Slot {
    Key(String),
    Put(usize),
    Insert(usize),
}

fn invalid(what: String) -> ClientError {
    ClientError::InvalidArgument(what)
}

/// What kind of value a JS value becomes.
enum Kind {
    Scalar(ScalarValue),
    Text(String),
    List(Array),
    Map(Object),
}

fn classify(value: &JsValue) -> Result<Kind, ClientError> {
    if value.is_null() || value.is_undefined() {
        return Ok(Kind::Scalar(ScalarValue::Null));
    }
    if let Some(b) = value.as_bool() {
        return Ok(Kind::Scalar(ScalarValue::Boolean(b)));
    }
    if let Some(n) = value.as_f64() {
        let integer = n.fract() == 0.0 && n.abs() <= 9_007_199_254_740_991.0;
        return Ok(Kind::Scalar(if integer {
            ScalarValue::Int(n as i64)
        } else {
            ScalarValue::F64(n)
        }));
    }
    if let Some(s) = value.as_string() {
        return Ok(Kind::Text(s));
    }
    if let Some(bytes) = value.dyn_ref::<Uint8Array>() {
        return Ok(Kind::Scalar(ScalarValue::Bytes(bytes.to_vec())));
    }
    if let Some(date) = value.dyn_ref::<Date>() {
        return Ok(Kind::Scalar(ScalarValue::Timestamp(date.get_time() as i64)));
    }
    if let Some(array) = value.dyn_ref::<Array>() {
        return Ok(Kind::List(array.clone()));
    }
    if value.is_object() && !value.is_function() {
        return Ok(Kind::Map(value.clone().unchecked_into()));
    }
    Err(invalid(format!("cannot store {value:?} in a document")))
}

/// Stores `value` at `slot` of `obj`.
pub fn put(
    doc: &mut AutoCommit,
    obj: &ObjId,
    slot: Slot,
    value: &JsValue,
) -> Result<(), ClientError> {
    let am = |e: automerge::AutomergeError| invalid(e.to_string());
    let (made, kind) = match classify(value)? {
        Kind::Scalar(s) => {
            match slot {
                Slot::Key(k) => doc.put(obj, k, s),
                Slot::Put(i) => doc.put(obj, i, s),
                Slot::Insert(i) => doc.insert(obj, i, s),
            }
            .map_err(am)?;
            return Ok(());
        }
        Kind::Text(s) => (object(doc, obj, slot, ObjType::Text)?, Kind::Text(s)),
        Kind::List(a) => (object(doc, obj, slot, ObjType::List)?, Kind::List(a)),
        Kind::Map(o) => (object(doc, obj, slot, ObjType::Map)?, Kind::Map(o)),
    };
    fill(doc, &made, kind)
}

fn object(
    doc: &mut AutoCommit,
    obj: &ObjId,
    slot: Slot,
    kind: ObjType,
) -> Result<ObjId, ClientError> {
    match slot {
        Slot::Key(k) => doc.put_object(obj, k, kind),
        Slot::Put(i) => doc.put_object(obj, i, kind),
        Slot::Insert(i) => doc.insert_object(obj, i, kind),
    }
    .map_err(|e| invalid(e.to_string()))
}

fn fill(doc: &mut AutoCommit, made: &ObjId, kind: Kind) -> Result<(), ClientError> {
    match kind {
        Kind::Text(s) => doc
            .splice_text(made, 0, 0, &s)
            .map_err(|e| invalid(e.to_string())),
        Kind::List(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| put(doc, made, Slot::Insert(i), &item)),
        Kind::Map(object) => Object::entries(&object).iter().try_for_each(|entry| {
            let pair: Array = entry.unchecked_into();
            let key = pair.get(0).as_string().unwrap_or_default();
            put(doc, made, Slot::Key(key), &pair.get(1))
        }),
        Kind::Scalar(_) => Ok(()),
    }
}

/// A hydrated Automerge value as plain JavaScript.
pub fn to_js(value: &hydrate::Value) -> JsValue {
    match value {
        hydrate::Value::Scalar(s) => scalar_to_js(s),
        hydrate::Value::Text(t) => JsValue::from_str(&String::from(t)),
        hydrate::Value::List(list) => list
            .iter()
            .map(|v| to_js(&v.value))
            .collect::<Array>()
            .into(),
        hydrate::Value::Map(map) => {
            let out = Object::new();
            // Sorted keys, as Automerge's JavaScript library shows them.
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            for (key, v) in entries {
                let _ = Reflect::set(&out, &JsValue::from_str(key), &to_js(&v.value));
            }
            out.into()
        }
    }
}

fn scalar_to_js(s: &ScalarValue) -> JsValue {
    match s {
        ScalarValue::Null | ScalarValue::Unknown { .. } => JsValue::NULL,
        ScalarValue::Boolean(b) => JsValue::from_bool(*b),
        ScalarValue::Int(i) => JsValue::from_f64(*i as f64),
        ScalarValue::Uint(u) => JsValue::from_f64(*u as f64),
        ScalarValue::F64(f) => JsValue::from_f64(*f),
        ScalarValue::Str(s) => JsValue::from_str(s),
        ScalarValue::Bytes(b) => Uint8Array::from(b.as_slice()).into(),
        ScalarValue::Timestamp(ms) => Date::new(&JsValue::from_f64(*ms as f64)).into(),
        ScalarValue::Counter(c) => JsValue::from_f64(i64::from(c) as f64),
    }
}
