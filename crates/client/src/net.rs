//! HTTP over the global `fetch`, in a window or a worker (a Service Worker has no `window`).

use js_sys::{ArrayBuffer, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, RequestInit, Response, Window, WorkerGlobalScope};

use crate::ClientError;

/// A reply: status and body bytes.
pub(crate) struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    /// The server's JSON error (`{"error": {"code", "message"}}`) as a [`ClientError`].
    pub fn into_error(self) -> ClientError {
        let text = String::from_utf8_lossy(&self.body).into_owned();
        let field = |json: &JsValue, key: &str| {
            Reflect::get(json, &JsValue::from_str("error"))
                .and_then(|e| Reflect::get(&e, &JsValue::from_str(key)))
                .ok()
                .and_then(|v| v.as_string())
        };
        match js_sys::JSON::parse(&text) {
            Ok(json) => ClientError::Server {
                status: self.status,
                code: field(&json, "code").unwrap_or_else(|| "E_SERVER".to_owned()),
                message: field(&json, "message").unwrap_or(text),
            },
            Err(_) => ClientError::Server {
                status: self.status,
                code: "E_SERVER".to_owned(),
                message: text,
            },
        }
    }
}

/// Sends one request with an optional bearer token; a failure to reach the server is
/// [`ClientError::Offline`].
pub(crate) async fn send(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<(&str, &[u8])>,
) -> Result<Reply, ClientError> {
    let js = |e: JsValue| ClientError::Offline(format!("{e:?}"));
    let init = RequestInit::new();
    init.set_method(method);
    let headers = Headers::new().map_err(js)?;
    if let Some(token) = token {
        headers
            .set("authorization", &format!("Bearer {token}"))
            .map_err(js)?;
    }
    if let Some((content_type, bytes)) = body {
        headers.set("content-type", content_type).map_err(js)?;
        init.set_body(&Uint8Array::from(bytes).into());
    }
    init.set_headers(&headers);
    let request = Request::new_with_str_and_init(url, &init)
        .map_err(|e| ClientError::InvalidArgument(format!("bad server URL {url}: {e:?}")))?;
    let global = js_sys::global();
    let promise = if let Some(window) = global.dyn_ref::<Window>() {
        window.fetch_with_request(&request)
    } else if let Some(worker) = global.dyn_ref::<WorkerGlobalScope>() {
        worker.fetch_with_request(&request)
    } else {
        return Err(ClientError::Offline("no fetch in this global scope".into()));
    };
    let response: Response = JsFuture::from(promise)
        .await
        .map_err(|e| ClientError::Offline(error_text(&e)))?
        .unchecked_into();
    let buffer: ArrayBuffer = JsFuture::from(response.array_buffer().map_err(js)?)
        .await
        .map_err(|e| ClientError::Offline(error_text(&e)))?
        .unchecked_into();
    Ok(Reply {
        status: response.status(),
        body: Uint8Array::new(&buffer).to_vec(),
    })
}

fn error_text(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .unwrap_or_else(|| format!("{e:?}"))
}
