//! The `#[wasm_bindgen]` exports, kept thin: argument parsing, promises, and errors as JS
//! `Error`s with a `code`. The idiomatic API is the wrapper in `pkg/index.js`.

use std::cell::RefCell;
use std::rc::Rc;

use cairn_core::DocumentId;
use cairn_core::protocol::SyncRequest;
use js_sys::{Array, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::repo::{Remote, new_op_id, send_sync};
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
        WasmDocument::wrap(self.inner.create())
    }

    /// An empty document with a known id, e.g. to fetch from the server.
    #[wasm_bindgen(js_name = emptyDocument)]
    pub fn empty_document(&self, id: &str) -> Result<WasmDocument, JsValue> {
        Ok(WasmDocument::wrap(Document::empty(parse_id(id)?)))
    }

    /// `find(id): Promise<WasmDocument | undefined>`
    pub fn find(&self, id: String) -> Promise {
        let repo = self.inner.clone();
        promise(async move {
            let found = repo.find(&parse_id(&id)?).await?;
            Ok(found.map_or(JsValue::UNDEFINED, |d| WasmDocument::wrap(d).into()))
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
    pub fn save(&self, doc: &WasmDocument) -> Promise {
        let repo = self.inner.clone();
        let (id, bytes, synced) = {
            let mut d = doc.inner.borrow_mut();
            (d.id(), d.save(), d.synced().to_vec())
        };
        promise(async move {
            repo.save_bytes(&id, &bytes, &synced).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// `sync(doc, server, token): Promise<string[]>`: one sync round; merges into `doc`,
    /// stores it, and resolves with the server's heads.
    pub fn sync(&self, doc: &WasmDocument, server: String, token: String) -> Promise {
        let repo = self.inner.clone();
        let cell = doc.inner.clone();
        let request = SyncRequest {
            request: 1,
            documents: vec![cell.borrow_mut().sync_request(new_op_id())],
        };
        promise(async move {
            let response = send_sync(&Remote { server, token }, request).await?;
            let (id, bytes, synced) = {
                let mut d = cell.borrow_mut();
                let id = d.id();
                for r in response.documents.iter().filter(|r| r.document == id) {
                    d.apply_response(r)?;
                }
                (d.id(), d.save(), d.synced().to_vec())
            };
            repo.save_bytes(&id, &bytes, &synced).await?;
            Ok(synced
                .iter()
                .map(|h| JsValue::from_str(&h.to_string()))
                .collect::<Array>()
                .into())
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

/// A document (JS: `WasmDocument`). Shared with in-flight syncs, which merge into it.
#[wasm_bindgen(js_name = WasmDocument)]
#[derive(Debug)]
pub struct WasmDocument {
    inner: Rc<RefCell<Document>>,
}

impl WasmDocument {
    fn wrap(doc: Document) -> Self {
        Self {
            inner: Rc::new(RefCell::new(doc)),
        }
    }
}

#[wasm_bindgen(js_class = WasmDocument)]
impl WasmDocument {
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.inner.borrow().id().to_string()
    }

    #[wasm_bindgen(getter)]
    pub fn url(&self) -> String {
        self.inner.borrow().id().to_url()
    }

    pub fn set(&self, key: &str, value: &str) -> Result<(), JsValue> {
        Ok(self.inner.borrow_mut().set(key, value)?)
    }

    pub fn get(&self, key: &str) -> Option<String> {
        self.inner.borrow().get(key)
    }

    pub fn keys(&self) -> Vec<String> {
        self.inner.borrow().keys()
    }

    pub fn heads(&self) -> Vec<String> {
        self.inner
            .borrow_mut()
            .heads()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// The document as a plain object of its top-level string fields.
    #[wasm_bindgen(js_name = toJSON)]
    pub fn to_json(&self) -> JsValue {
        let doc = self.inner.borrow();
        let out = Object::new();
        for key in doc.keys() {
            if let Some(value) = doc.get(&key) {
                let _ = Reflect::set(&out, &JsValue::from_str(&key), &JsValue::from_str(&value));
            }
        }
        out.into()
    }
}
