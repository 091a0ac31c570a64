//! The `#[wasm_bindgen]` exports, kept thin: argument parsing, promises, and errors as JS
//! `Error`s with a `code`. The idiomatic API is the wrapper in `pkg/index.js`.

use std::rc::Rc;

use cairn_core::DocumentId;
use js_sys::{Array, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::repo::push_bytes;
use crate::{ClientError, Document, Repo};

fn parse_id(id: &str) -> Result<DocumentId, ClientError> {
    id.parse()
        .map_err(|e| ClientError::InvalidArgument(format!("invalid document id {id:?}: {e}")))
}

fn promise<F>(f: F) -> Promise
where
    F: std::future::Future<Output = Result<JsValue, ClientError>> + 'static,
{
    future_to_promise(async move { f.await.map_err(JsValue::from) })
}

/// A repository (JS: `WasmRepo`).
#[wasm_bindgen(js_name = WasmRepo)]
#[derive(Debug)]
pub struct WasmRepo {
    inner: Rc<Repo>,
}

#[wasm_bindgen(js_class = WasmRepo)]
impl WasmRepo {
    /// `WasmRepo.open(name): Promise<WasmRepo>`
    pub fn open(name: String) -> Promise {
        promise(async move {
            let repo = Repo::open(&name).await?;
            Ok(WasmRepo {
                inner: Rc::new(repo),
            }
            .into())
        })
    }

    /// `WasmRepo.delete(name): Promise<void>`
    #[wasm_bindgen(js_name = delete)]
    pub fn delete_repo(name: String) -> Promise {
        promise(async move {
            Repo::delete(&name).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.inner.name().to_owned()
    }

    pub fn create(&self) -> WasmDocument {
        WasmDocument {
            inner: self.inner.create(),
        }
    }

    /// `find(id): Promise<WasmDocument | undefined>`
    pub fn find(&self, id: String) -> Promise {
        let repo = self.inner.clone();
        promise(async move {
            let found = repo.find(&parse_id(&id)?).await?;
            Ok(found.map_or(JsValue::UNDEFINED, |d| WasmDocument { inner: d }.into()))
        })
    }

    /// `list(): Promise<string[]>`
    pub fn list(&self) -> Promise {
        let repo = self.inner.clone();
        promise(async move {
            let ids = repo.list().await?;
            Ok(ids
                .iter()
                .map(|id| JsValue::from_str(&id.to_string()))
                .collect::<Array>()
                .into())
        })
    }

    /// `save(doc): Promise<void>`, resolved once committed to IndexedDB.
    pub fn save(&self, doc: &mut WasmDocument) -> Promise {
        let repo = self.inner.clone();
        let id = doc.inner.id();
        let bytes = doc.inner.save();
        promise(async move {
            repo.save_bytes(&id, &bytes).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// `push(doc, server): Promise<{ heads: string[], applied: number }>`
    pub fn push(&self, doc: &mut WasmDocument, server: String) -> Promise {
        let id = doc.inner.id();
        let bytes = doc.inner.save();
        promise(async move {
            let ack = push_bytes(id, bytes, &server).await?;
            let result = Object::new();
            let heads: Array = ack
                .heads
                .iter()
                .map(|h| JsValue::from_str(&h.to_string()))
                .collect();
            let _ = Reflect::set(&result, &"heads".into(), &heads);
            // Counts of changes stay far below 2^53.
            let _ = Reflect::set(
                &result,
                &"applied".into(),
                &JsValue::from(ack.applied as f64),
            );
            Ok(result.into())
        })
    }

    /// `pull(id, server): Promise<WasmDocument>`
    pub fn pull(&self, id: String, server: String) -> Promise {
        let repo = self.inner.clone();
        promise(async move {
            let doc = repo.pull(&parse_id(&id)?, &server).await?;
            Ok(WasmDocument { inner: doc }.into())
        })
    }

    /// Closes the IndexedDB connection. Fails with `E_BUSY` while operations are in flight.
    pub fn close(self) -> Result<(), JsValue> {
        match Rc::try_unwrap(self.inner) {
            Ok(repo) => {
                repo.close();
                Ok(())
            }
            Err(_) => Err(ClientError::Busy("operations are still in flight".into()).into()),
        }
    }
}

/// A document (JS: `WasmDocument`).
#[wasm_bindgen(js_name = WasmDocument)]
#[derive(Debug)]
pub struct WasmDocument {
    inner: Document,
}

#[wasm_bindgen(js_class = WasmDocument)]
impl WasmDocument {
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.inner.id().to_string()
    }

    #[wasm_bindgen(getter)]
    pub fn url(&self) -> String {
        self.inner.id().to_url()
    }

    pub fn set(&mut self, key: &str, value: &str) -> Result<(), JsValue> {
        Ok(self.inner.set(key, value)?)
    }

    pub fn get(&self, key: &str) -> Option<String> {
        self.inner.get(key)
    }

    pub fn keys(&self) -> Vec<String> {
        self.inner.keys()
    }

    pub fn heads(&mut self) -> Vec<String> {
        self.inner.heads().iter().map(ToString::to_string).collect()
    }

    /// The document as a plain object of its top-level string fields.
    #[wasm_bindgen(js_name = toJSON)]
    pub fn to_json(&self) -> JsValue {
        let out = Object::new();
        for key in self.inner.keys() {
            if let Some(value) = self.inner.get(&key) {
                let _ = Reflect::set(&out, &JsValue::from_str(&key), &JsValue::from_str(&value));
            }
        }
        out.into()
    }
}
