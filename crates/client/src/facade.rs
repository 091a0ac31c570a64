//! The `#[wasm_bindgen]` exports, kept thin: argument parsing, promises, and errors as JS
//! `Error`s with a `code`. The idiomatic API (documents, events, tabs, transport) is the
//! wrapper in `pkg/index.js`.

use cairn_core::{DocumentId, Message};
use js_sys::{Array, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use cairn_core::content::CidVersion;

use std::cell::RefCell;
use std::collections::HashMap;

use crate::engine::{Applied, FileOp, PutOptions, Ticket};
use crate::storage::files::file_to_js;
use crate::storage::outbox_entry_to_js;
use crate::{ClientError, Engine, Remote, parse_ops};

fn parse_id(id: &str) -> Result<DocumentId, ClientError> {
    id.parse()
        .map_err(|e| ClientError::InvalidArgument(format!("invalid document id {id:?}: {e}")))
}

fn parse_ids(ids: &Array) -> Result<Vec<DocumentId>, ClientError> {
    ids.iter()
        .map(|v| parse_id(&v.as_string().unwrap_or_default()))
        .collect()
}

fn ids_js(ids: &[DocumentId]) -> JsValue {
    ids.iter()
        .map(|id| JsValue::from_str(&id.to_string()))
        .collect::<Array>()
        .into()
}

/// A JavaScript array of `items`, each converted by `to_js`.
fn js_list<T>(
    items: &[T],
    to_js: impl Fn(&T) -> Result<JsValue, ClientError>,
) -> Result<JsValue, ClientError> {
    Ok(items
        .iter()
        .map(to_js)
        .collect::<Result<Array, _>>()?
        .into())
}

fn promise<F>(f: F) -> Promise
where
    F: std::future::Future<Output = Result<JsValue, ClientError>> + 'static,
{
    future_to_promise(async move { f.await.map_err(JsValue::from) })
}

fn remote(server: String, token: String) -> Remote {
    Remote { server, token }
}

/// Document ids already parsed (a bs58check id costs two sha-256 to check): the same few
/// ids come with every change.
#[derive(Debug, Default)]
struct Ids(RefCell<HashMap<String, DocumentId>>);

impl Ids {
    fn parse(&self, id: &str) -> Result<DocumentId, ClientError> {
        if let Some(doc) = self.0.borrow().get(id) {
            return Ok(*doc);
        }
        let doc = parse_id(id)?;
        let mut known = self.0.borrow_mut();
        if known.len() >= 1024 {
            known.clear();
        }
        known.insert(id.to_owned(), doc);
        Ok(doc)
    }
}

/// The promise of each document's share of the group commit being gathered, so a burst of
/// changes makes one promise per document, not one per change.
#[derive(Debug, Default)]
struct Commits(RefCell<HashMap<DocumentId, (u64, Promise)>>);

impl Commits {
    fn promise(&self, ticket: Ticket) -> Promise {
        let mut commits = self.0.borrow_mut();
        if let Some((commit, promise)) = commits.get(&ticket.doc)
            && *commit == ticket.commit
        {
            return promise.clone();
        }
        commits.retain(|_, (commit, _)| *commit == ticket.commit);
        let (commit, doc) = (ticket.commit, ticket.doc);
        let made = promise(async move {
            ticket.wait().await?;
            Ok(JsValue::UNDEFINED)
        });
        commits.insert(doc, (commit, made.clone()));
        made
    }
}

/// A repository (JS: `WasmRepo`). Every method that touches storage returns a promise.
#[wasm_bindgen(js_name = WasmRepo)]
#[derive(Debug)]
pub struct WasmRepo {
    engine: Engine,
    ids: Ids,
    commits: Commits,
}

#[wasm_bindgen(js_class = WasmRepo)]
impl WasmRepo {
    /// `WasmRepo.open(name): Promise<WasmRepo>`
    pub fn open(name: String) -> Promise {
        promise(async move {
            Ok(WasmRepo {
                engine: Engine::open(&name).await?,
                ids: Ids::default(),
                commits: Commits::default(),
            }
            .into())
        })
    }

    /// `WasmRepo.delete(name): Promise<void>` — the whole repository.
    #[wasm_bindgen(js_name = delete)]
    pub fn delete_repo(name: String) -> Promise {
        promise(async move {
            crate::delete_database(&name).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The IndexedDB database name of a repository.
    #[wasm_bindgen(js_name = databaseName)]
    pub fn database_name(name: &str) -> String {
        crate::database_name(name)
    }

    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.engine.name().to_owned()
    }

    /// `create(initial): Promise<string>` — resolves once stored.
    pub fn create(&self, initial: JsValue) -> Promise {
        let engine = self.engine.clone();
        promise(async move {
            Ok(JsValue::from_str(
                &engine.create(&initial).await?.to_string(),
            ))
        })
    }

    /// `load(id): Promise<boolean>` — whether the document is stored here.
    pub fn load(&self, id: String) -> Promise {
        let engine = self.engine.clone();
        promise(async move { Ok(JsValue::from_bool(engine.load(&parse_id(&id)?).await?)) })
    }

    /// `refresh(id): Promise<boolean>` — reads what other tabs stored; whether it changed.
    pub fn refresh(&self, id: String) -> Promise {
        let engine = self.engine.clone();
        promise(async move { Ok(JsValue::from_bool(engine.refresh(&parse_id(&id)?).await?)) })
    }

    /// `refreshLoaded(id): Promise<boolean>` — the same, for a document in memory only (another
    /// tab said it stored changes to it); `false` when it is not loaded here.
    #[wasm_bindgen(js_name = refreshLoaded)]
    pub fn refresh_loaded(&self, id: String) -> Promise {
        let engine = self.engine.clone();
        promise(async move {
            Ok(JsValue::from_bool(
                engine.refresh_loaded(&parse_id(&id)?).await?,
            ))
        })
    }

    /// The loaded document as plain JavaScript.
    pub fn value(&self, id: &str) -> Result<JsValue, JsValue> {
        Ok(self.engine.with_doc(&self.ids.parse(id)?, |d| d.value())?)
    }

    pub fn heads(&self, id: &str) -> Result<Vec<String>, JsValue> {
        let heads = self.engine.with_doc(&self.ids.parse(id)?, |d| d.heads())?;
        Ok(heads.iter().map(ToString::to_string).collect())
    }

    pub fn history(&self, id: &str) -> Result<JsValue, JsValue> {
        Ok(self.engine.with_doc(&parse_id(id)?, |d| d.history())?)
    }

    /// `change(id, ops): Promise<void> | undefined` — applies path operations as one change
    /// (at once, when the document is loaded) and returns a promise that resolves once it and
    /// its outbox entry are committed; `undefined` if they changed nothing. Every change of a
    /// document in one group commit gets the same promise.
    pub fn change(&self, id: &str, ops: JsValue) -> Result<JsValue, JsValue> {
        let doc = self.ids.parse(id)?;
        let parsed = parse_ops(&ops)?;
        match self.engine.change_now(&doc, &parsed)? {
            Applied::Queued(ticket) => Ok(self.commits.promise(ticket).into()),
            Applied::Unchanged => Ok(JsValue::UNDEFINED),
            Applied::NotLoaded => {
                let engine = self.engine.clone();
                Ok(promise(async move {
                    engine.change(&doc, &parsed).await?;
                    Ok(JsValue::UNDEFINED)
                })
                .into())
            }
        }
    }

    /// Merges changes another tab stored (memory only); whether the document changed.
    pub fn absorb(&self, id: &str, data: &Uint8Array) -> Result<bool, JsValue> {
        Ok(self.engine.absorb(&parse_id(id)?, &data.to_vec())?)
    }

    /// `list(): Promise<string[]>`
    pub fn list(&self) -> Promise {
        let engine = self.engine.clone();
        promise(async move { Ok(ids_js(&engine.list().await?)) })
    }

    /// `remove(id): Promise<void>` — the local copy and its pending operations.
    pub fn remove(&self, id: String) -> Promise {
        let engine = self.engine.clone();
        promise(async move {
            engine.delete(&parse_id(&id)?).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// `outbox(): Promise<object[]>`
    pub fn outbox(&self) -> Promise {
        let engine = self.engine.clone();
        promise(async move { js_list(&engine.outbox().await?, outbox_entry_to_js) })
    }

    /// `pending(): Promise<number>` — operations still to deliver.
    pub fn pending(&self) -> Promise {
        let engine = self.engine.clone();
        promise(async move { Ok(JsValue::from_f64(engine.pending().await? as f64)) })
    }

    /// `nextDue(): Promise<number | undefined>` — when the outbox has something to send.
    #[wasm_bindgen(js_name = nextDue)]
    pub fn next_due(&self) -> Promise {
        let engine = self.engine.clone();
        promise(async move {
            Ok(engine
                .next_due()
                .await?
                .map_or(JsValue::UNDEFINED, JsValue::from_f64))
        })
    }

    /// `syncRequest(pull): Promise<Uint8Array | undefined>` — a frame for the WebSocket.
    #[wasm_bindgen(js_name = syncRequest)]
    pub fn sync_request(&self, pull: Array) -> Promise {
        let engine = self.engine.clone();
        promise(async move {
            let request = engine.sync_request(&parse_ids(&pull)?).await?;
            Ok(request.map_or(JsValue::UNDEFINED, |r| {
                Uint8Array::from(Message::SyncRequest(r).encode().as_slice()).into()
            }))
        })
    }

    /// `syncHttp(server, token, pull): Promise<{changed, sent} | undefined>`
    #[wasm_bindgen(js_name = syncHttp)]
    pub fn sync_http(&self, server: String, token: String, pull: Array) -> Promise {
        let engine = self.engine.clone();
        promise(async move {
            let Some((changed, sent)) = engine
                .sync_http(&remote(server, token), &parse_ids(&pull)?)
                .await?
            else {
                return Ok(JsValue::UNDEFINED);
            };
            let out = Object::new();
            let _ = Reflect::set(&out, &"changed".into(), &ids_js(&changed));
            let _ = Reflect::set(&out, &"sent".into(), &JsValue::from_f64(sent as f64));
            Ok(out.into())
        })
    }

    /// `syncFailed(code, retryable): Promise<void>` — the request in flight failed.
    #[wasm_bindgen(js_name = syncFailed)]
    pub fn sync_failed(&self, code: String, retryable: bool) -> Promise {
        let engine = self.engine.clone();
        promise(async move {
            engine.sync_failed(&code, retryable).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The first WebSocket frame.
    #[wasm_bindgen(js_name = authFrame)]
    pub fn auth_frame(token: String) -> Uint8Array {
        Uint8Array::from(Message::Auth { token }.encode().as_slice())
    }

    /// `subscribeFrame(ids): Promise<Uint8Array>`
    #[wasm_bindgen(js_name = subscribeFrame)]
    pub fn subscribe_frame(&self, ids: Array) -> Promise {
        let engine = self.engine.clone();
        promise(async move {
            let frame = engine.subscribe_frame(&parse_ids(&ids)?).await?;
            Ok(Uint8Array::from(frame.encode().as_slice()).into())
        })
    }

    /// `handleFrame(bytes): Promise<{changed, welcome, error}>`
    #[wasm_bindgen(js_name = handleFrame)]
    pub fn handle_frame(&self, bytes: Uint8Array) -> Promise {
        let engine = self.engine.clone();
        promise(async move {
            let handled = engine.handle_frame(&bytes.to_vec()).await?;
            let out = Object::new();
            let _ = Reflect::set(&out, &"changed".into(), &ids_js(&handled.changed));
            let flag = |k: &str, v: bool| Reflect::set(&out, &k.into(), &JsValue::from_bool(v));
            let _ = flag("welcome", handled.welcome);
            let _ = flag("answered", handled.answered);
            let error = handled.error.map_or(JsValue::NULL, |e| {
                let err = ClientError::Server {
                    status: 0,
                    code: e.code,
                    message: e.message,
                }
                .to_js();
                let _ = Reflect::set(&err, &"retryable".into(), &JsValue::from_bool(e.retryable));
                let _ = Reflect::set(&err, &"documents".into(), &ids_js(&e.documents));
                err
            });
            let _ = Reflect::set(&out, &"error".into(), &error);
            Ok(out.into())
        })
    }

    /// `drain(server, token): Promise<number>` — the Service Worker's loop.
    pub fn drain(&self, server: String, token: String) -> Promise {
        let engine = self.engine.clone();
        promise(async move {
            Ok(JsValue::from_f64(
                engine.drain(&remote(server, token)).await? as f64,
            ))
        })
    }

    /// `pull(ids, server, token): Promise<string[]>` — the ids the server had.
    pub fn pull(&self, ids: Array, server: String, token: String) -> Promise {
        let engine = self.engine.clone();
        promise(async move {
            Ok(ids_js(
                &engine
                    .pull(&parse_ids(&ids)?, &remote(server, token))
                    .await?,
            ))
        })
    }

    /// `listRemote(server, token): Promise<string[]>`
    #[wasm_bindgen(js_name = listRemote)]
    pub fn list_remote(&self, server: String, token: String) -> Promise {
        let engine = self.engine.clone();
        promise(async move { Ok(ids_js(&engine.list_remote(&remote(server, token)).await?)) })
    }

    /// `setToken(token): Promise<void>` — stored for the Service Worker.
    #[wasm_bindgen(js_name = setToken)]
    pub fn set_token(&self, token: String) -> Promise {
        let engine = self.engine.clone();
        promise(async move {
            engine.set_token(&token).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// `token(): Promise<string | undefined>`
    pub fn token(&self) -> Promise {
        let engine = self.engine.clone();
        promise(async move {
            Ok(engine
                .token()
                .await?
                .map_or(JsValue::UNDEFINED, |t| JsValue::from_str(&t)))
        })
    }

    /// Closes the IndexedDB connection (once pending writes finish).
    pub fn close(self) {
        self.engine.close();
    }

    /// `putFile(blob, {name, type, metadata?, doc?, cidVersion?}, onProgress?):
    /// Promise<FileInfo>` — imports the blob (its CID computed as it streams), stores it and
    /// queues its upload; `onProgress(bytesRead, total)`.
    #[wasm_bindgen(js_name = putFile)]
    pub fn put_file(
        &self,
        blob: web_sys::Blob,
        options: JsValue,
        on_progress: Option<js_sys::Function>,
    ) -> Promise {
        let engine = self.engine.clone();
        promise(async move {
            let options = put_options(&options)?;
            let report = |loaded: f64, total: f64| {
                if let Some(f) = &on_progress {
                    let _ = f.call2(&JsValue::NULL, &loaded.into(), &total.into());
                }
            };
            file_to_js(&engine.put_file(&blob, options, &report).await?)
        })
    }

    /// `startPut({name, type, metadata?, doc?}): FilePut` — a `putFile` whose CIDv1 import
    /// the caller runs (leaves cut and hashed in JS, the DAG from a `FileImporter`): the
    /// options are checked now, before any block is stored.
    #[wasm_bindgen(js_name = startPut)]
    pub fn start_put(&self, options: JsValue) -> Result<FilePut, JsValue> {
        Ok(FilePut {
            engine: self.engine.clone(),
            options: Some(put_options(&options)?),
            added: std::rc::Rc::default(),
        })
    }

    /// `readFile(cid): Promise<Uint8Array[] | undefined>` — the file's bytes from this
    /// device, verified, as `Blob` parts; `undefined` if it is not (entirely) here.
    #[wasm_bindgen(js_name = readFile)]
    pub fn read_file(&self, cid: String) -> Promise {
        let engine = self.engine.clone();
        promise(async move {
            Ok(engine
                .read_parts(&cid)
                .await?
                .map_or(JsValue::UNDEFINED, |parts| {
                    parts.into_iter().collect::<Array>().into()
                }))
        })
    }

    /// `file(cid): Promise<FileInfo | undefined>` — the record of a file on this device.
    pub fn file(&self, cid: String) -> Promise {
        let engine = self.engine.clone();
        promise(async move {
            match engine.file(&cid).await? {
                Some(entry) => file_to_js(&entry),
                None => Ok(JsValue::UNDEFINED),
            }
        })
    }

    /// `files(): Promise<FileInfo[]>` — every file on this device.
    pub fn files(&self) -> Promise {
        let engine = self.engine.clone();
        promise(async move { js_list(&engine.files().await?, file_to_js) })
    }

    /// `deleteFile(cid): Promise<void>` — here at once, on the server through the outbox.
    #[wasm_bindgen(js_name = deleteFile)]
    pub fn delete_file(&self, cid: String) -> Promise {
        let engine = self.engine.clone();
        promise(async move {
            engine.delete_file(&cid).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// `fileOp(server, token, onProgress?): Promise<{state, cid?, kind?, error?,
    /// retryable?}>` — carries out the next file operation; `state` is `idle`, `waiting`,
    /// `busy`, `done` or `failed`; `onProgress(cid, sent, total)` during an upload.
    #[wasm_bindgen(js_name = fileOp)]
    pub fn file_op(
        &self,
        server: String,
        token: String,
        on_progress: Option<js_sys::Function>,
    ) -> Promise {
        let engine = self.engine.clone();
        promise(async move {
            let report = progress_fn(on_progress);
            let done = engine.file_op(&remote(server, token), &report).await?;
            Ok(file_op_js(done))
        })
    }

    /// `nextFileDue(): Promise<number | undefined>` — when a file operation may go next.
    #[wasm_bindgen(js_name = nextFileDue)]
    pub fn next_file_due(&self) -> Promise {
        let engine = self.engine.clone();
        promise(async move {
            Ok(engine
                .next_file_due()
                .await?
                .map_or(JsValue::UNDEFINED, JsValue::from_f64))
        })
    }

    /// `download(cid, server, token, onProgress?): Promise<FileInfo>` — fetches the file's
    /// CAR, verifying each block before storing it; `onProgress(cid, received, total)`.
    pub fn download(
        &self,
        cid: String,
        server: String,
        token: String,
        on_progress: Option<js_sys::Function>,
    ) -> Promise {
        let engine = self.engine.clone();
        promise(async move {
            let report = progress_fn(on_progress);
            let entry = engine
                .download(&remote(server, token), &cid, &report)
                .await?;
            file_to_js(&entry)
        })
    }
}

fn progress_fn(f: Option<js_sys::Function>) -> impl Fn(&str, f64, f64) {
    move |cid: &str, done: f64, total: f64| {
        if let Some(f) = &f {
            let _ = f.call3(&JsValue::NULL, &cid.into(), &done.into(), &total.into());
        }
    }
}

fn file_op_js(done: FileOp) -> JsValue {
    let out = Object::new();
    let set = |k: &str, v: JsValue| {
        let _ = Reflect::set(&out, &k.into(), &v);
    };
    let state = match done {
        FileOp::Idle => "idle",
        FileOp::Waiting => "waiting",
        FileOp::Busy => "busy",
        FileOp::Done { cid, kind } => {
            set("cid", cid.into());
            set("kind", kind.into());
            "done"
        }
        FileOp::Failed {
            cid,
            kind,
            error,
            retryable,
        } => {
            set("cid", cid.into());
            set("kind", kind.into());
            set("error", error.to_js());
            set("retryable", retryable.into());
            "failed"
        }
    };
    set("state", state.into());
    out.into()
}

/// `{name, type, metadata?, doc?, cidVersion?}` from JavaScript.
fn put_options(options: &JsValue) -> Result<PutOptions, ClientError> {
    let get = |k: &str| Reflect::get(options, &k.into()).unwrap_or(JsValue::UNDEFINED);
    let bad = |m: &str| ClientError::InvalidArgument(m.to_owned());
    let text = |k: &str| -> Result<String, ClientError> {
        let v = get(k);
        if v.is_undefined() || v.is_null() {
            return Ok(String::new());
        }
        v.as_string()
            .ok_or_else(|| bad(&format!("putFile: {k} must be a string")))
    };
    let metadata = match get("metadata") {
        v if v.is_undefined() || v.is_null() => "{}".to_owned(),
        v if v.is_object() && !Array::is_array(&v) => js_sys::JSON::stringify(&v)
            .map(String::from)
            .map_err(|_| bad("putFile: metadata must be JSON"))?,
        _ => return Err(bad("putFile: metadata must be a plain object")),
    };
    let document = match text("doc")? {
        id if id.is_empty() => None,
        id => Some(parse_id(&id)?),
    };
    let version = match get("cidVersion").as_f64() {
        None if get("cidVersion").is_undefined() => CidVersion::V1,
        Some(1.0) => CidVersion::V1,
        Some(0.0) => CidVersion::V0,
        _ => return Err(bad("putFile: cidVersion must be 0 or 1")),
    };
    Ok(PutOptions {
        name: text("name")?,
        content_type: text("type")?,
        metadata,
        document,
        version,
    })
}

/// `cidOf(blob, cidVersion, onBlock?, onProgress?): Promise<{cid, size, dagSize}>` — a
/// Blob's CID, computed as it streams with its leaves hashed by WebCrypto (what `fileCid` in
/// the package calls); `onBlock([cid, bytes][])` receives the blocks, `onProgress(read)`.
#[wasm_bindgen(js_name = cidOf)]
pub fn cid_of(
    blob: web_sys::Blob,
    cid_version: u32,
    on_block: Option<js_sys::Function>,
    on_progress: Option<js_sys::Function>,
) -> Promise {
    promise(async move {
        let version = match cid_version {
            0 => CidVersion::V0,
            1 => CidVersion::V1,
            v => {
                return Err(ClientError::InvalidArgument(format!(
                    "cidVersion {v}: use 0 or 1"
                )));
            }
        };
        let give = |blocks: Vec<cairn_core::content::Block>| {
            if let Some(f) = &on_block
                && !blocks.is_empty()
            {
                let _ = f.call1(&JsValue::NULL, &blocks_js(blocks));
            }
        };
        let mut import = crate::engine::BlobImport::new(&blob, version);
        while let Some((blocks, read)) = import.next().await? {
            give(blocks);
            if let Some(f) = &on_progress {
                let _ = f.call1(&JsValue::NULL, &read.into());
            }
        }
        let (blocks, imported) = import.finish().await;
        give(blocks);
        let out = Object::new();
        let _ = Reflect::set(&out, &"cid".into(), &imported.root.to_string().into());
        let _ = Reflect::set(&out, &"size".into(), &(imported.size as f64).into());
        let _ = Reflect::set(&out, &"dagSize".into(), &(imported.dag_size as f64).into());
        Ok(out.into())
    })
}

/// A `putFile` in progress whose import runs in JS (see `WasmRepo.startPut`): `store`
/// its blocks as they are made, then `finish` with the root, or `abort` to remove the blocks
/// it added.
#[wasm_bindgen]
#[derive(Debug)]
pub struct FilePut {
    engine: Engine,
    options: Option<PutOptions>,
    /// The CIDs of the blocks this put stored that were not here before.
    added: std::rc::Rc<RefCell<Vec<String>>>,
}

#[wasm_bindgen]
impl FilePut {
    /// `store(blocks: [cid, Uint8Array][]): Promise<void>` — stores blocks of the import in
    /// one transaction, their arrays as they are (not copied). The CIDs must be the ones the
    /// `FileImporter` gave for these bytes.
    pub fn store(&self, blocks: Array) -> Promise {
        let (engine, added) = (self.engine.clone(), self.added.clone());
        promise(async move {
            let pairs = blocks
                .iter()
                .map(|pair| {
                    let pair: Array = pair.unchecked_into();
                    let cid = pair.get(0).as_string();
                    let bytes = pair.get(1).dyn_into::<Uint8Array>().ok();
                    cid.zip(bytes).ok_or_else(|| {
                        ClientError::InvalidArgument("a block is [cid, Uint8Array]".into())
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let pairs: Vec<(&str, Uint8Array)> =
                pairs.iter().map(|(c, b)| (c.as_str(), b.clone())).collect();
            let new = engine.store_imported(&pairs).await?;
            added.borrow_mut().extend(new);
            Ok(JsValue::UNDEFINED)
        })
    }

    /// `finish(cid, size): Promise<FileInfo>` — records the file whose blocks are stored
    /// (root `cid`, `size` bytes) and queues its upload, in one transaction.
    pub fn finish(&mut self, cid: String, size: f64) -> Promise {
        let engine = self.engine.clone();
        let options = self.options.take();
        promise(async move {
            let options = options
                .ok_or_else(|| ClientError::InvalidArgument("this put has finished".into()))?;
            let root = crate::engine::parse_cid(&cid)?;
            file_to_js(&engine.record_put(root, size as u64, options).await?)
        })
    }

    /// `abort(): Promise<void>` — removes the blocks this put added (after a failed import).
    pub fn abort(&mut self) -> Promise {
        let engine = self.engine.clone();
        let added = std::mem::take(&mut *self.added.borrow_mut());
        self.options = None;
        promise(async move {
            engine.remove_blocks(&added).await?;
            Ok(JsValue::UNDEFINED)
        })
    }
}

/// Computes a file's CID as its bytes stream in, exactly as `ipfs add` would (JS:
/// `FileImporter`): `write(bytes)` returns the blocks it completed, `finish()` the rest and
/// the summary. Memory: one chunk and the tree's open nodes, whatever the file size.
#[wasm_bindgen(js_name = FileImporter)]
#[derive(Debug)]
pub struct FileImporter {
    inner: Option<cairn_core::content::Importer>,
}

fn blocks_js(blocks: Vec<cairn_core::content::Block>) -> Array {
    blocks
        .into_iter()
        .map(|b| {
            let pair = Array::new();
            pair.push(&JsValue::from_str(&b.cid.to_string()));
            pair.push(&Uint8Array::from(b.data.as_slice()));
            JsValue::from(pair)
        })
        .collect()
}

#[wasm_bindgen(js_class = FileImporter)]
impl FileImporter {
    /// `new FileImporter(cidVersion)`: 1 (CIDv1, raw leaves: `ipfs add --cid-version=1`) or
    /// 0 (Kubo's `ipfs add` default).
    #[wasm_bindgen(constructor)]
    pub fn new(cid_version: u32) -> Result<FileImporter, JsValue> {
        use cairn_core::content::{CidVersion, ImportOptions, Importer};
        let version = match cid_version {
            0 => CidVersion::V0,
            1 => CidVersion::V1,
            v => {
                return Err(
                    ClientError::InvalidArgument(format!("cidVersion {v}: use 0 or 1")).into(),
                );
            }
        };
        Ok(FileImporter {
            inner: Some(Importer::new(ImportOptions {
                version,
                ..ImportOptions::default()
            })),
        })
    }

    fn importer(&mut self) -> Result<&mut cairn_core::content::Importer, JsValue> {
        self.inner.as_mut().ok_or_else(|| {
            ClientError::InvalidArgument("this FileImporter has finished".into()).into()
        })
    }

    /// Feeds bytes; returns `[cid, bytes][]`, the blocks they completed.
    pub fn write(&mut self, bytes: &[u8]) -> Result<Array, JsValue> {
        let mut blocks = Vec::new();
        self.importer()?.write(bytes, &mut blocks);
        Ok(blocks_js(blocks))
    }

    /// A raw leaf (CIDv1) the caller cut and hashed itself: `digest` is the sha2-256 of its
    /// `size` bytes, which stay with the caller. Returns the leaf's CID and the nodes it
    /// completed, `[cid, bytes][]`. Every leaf but the last is a whole 256 KiB chunk; throws
    /// `E_INVALID_ARGUMENT` otherwise, for CIDv0, or after bytes were given to `write`.
    #[wasm_bindgen(js_name = addRawLeaf)]
    pub fn add_raw_leaf(&mut self, digest: &[u8], size: f64) -> Result<Array, JsValue> {
        let digest: [u8; 32] = digest.try_into().map_err(|_| {
            JsValue::from(ClientError::InvalidArgument("a digest is 32 bytes".into()))
        })?;
        let mut blocks = Vec::new();
        let cid = self
            .importer()?
            .add_raw_leaf(size as u64, digest, &mut blocks)
            .ok_or_else(|| {
                JsValue::from(ClientError::InvalidArgument(
                    "raw leaves are whole chunks (the last may be short), of a CIDv1 import given no bytes".into(),
                ))
            })?;
        let out = Array::new();
        out.push(&JsValue::from_str(&cid.to_string()));
        out.push(&blocks_js(blocks));
        Ok(out)
    }

    /// Ends the file: `{cid, size, dagSize, blocks}` with the last blocks (the root last).
    pub fn finish(&mut self) -> Result<Object, JsValue> {
        self.importer()?;
        let importer = self.inner.take().ok_or(JsValue::NULL)?;
        let mut blocks = Vec::new();
        let imported = importer.finish(&mut blocks);
        let out = Object::new();
        Reflect::set(&out, &"cid".into(), &imported.root.to_string().into())?;
        Reflect::set(&out, &"size".into(), &(imported.size as f64).into())?;
        Reflect::set(&out, &"dagSize".into(), &(imported.dag_size as f64).into())?;
        Reflect::set(&out, &"blocks".into(), &blocks_js(blocks))?;
        Ok(out)
    }
}
