//! The storage manager's view of this origin's storage (`navigator.storage.estimate()`),
//! available in windows and workers.

use js_sys::{Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// `(usage, quota)` in bytes, if the browser tells.
pub async fn estimate() -> Option<(f64, f64)> {
    let get = |target: &JsValue, key: &str| Reflect::get(target, &JsValue::from_str(key)).ok();
    let storage = get(&get(&js_sys::global(), "navigator")?, "storage")?;
    let estimate = get(&storage, "estimate")?
        .dyn_into::<js_sys::Function>()
        .ok()?;
    let promise: Promise = estimate.call0(&storage).ok()?.dyn_into().ok()?;
    let result = JsFuture::from(promise).await.ok()?;
    Some((
        get(&result, "usage")?.as_f64()?,
        get(&result, "quota")?.as_f64()?,
    ))
}
