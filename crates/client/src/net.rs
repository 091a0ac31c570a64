//! HTTP over the global `fetch`, in a window or a worker (a Service Worker has no `window`):
//! whole replies ([`send`]) and replies read as a stream ([`open`]).

use js_sys::{ArrayBuffer, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Headers, ReadableStreamDefaultReader, Request, RequestInit, Response, Window, WorkerGlobalScope,
};

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

    /// The body as JSON.
    pub fn json(&self) -> Result<JsValue, ClientError> {
        js_sys::JSON::parse(&String::from_utf8_lossy(&self.body)).map_err(|_| {
            ClientError::Protocol(format!("a reply that is not JSON ({})", self.status))
        })
    }
}

/// One request: method, URL, bearer token, extra headers, body (`(content type, bytes)`).
pub(crate) struct Call<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub token: Option<&'a str>,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: Option<(&'a str, &'a [u8])>,
}

/// Sends one request with an optional bearer token; a failure to reach the server is
/// [`ClientError::Offline`].
pub(crate) async fn send(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<(&str, &[u8])>,
) -> Result<Reply, ClientError> {
    call(Call {
        method,
        url,
        token,
        headers: &[],
        body,
    })
    .await
}

/// Sends `c` and reads the whole reply.
pub(crate) async fn call(c: Call<'_>) -> Result<Reply, ClientError> {
    let response = fetch(&c).await?;
    let js = |e: JsValue| ClientError::Offline(error_text(&e));
    let buffer: ArrayBuffer = JsFuture::from(response.array_buffer().map_err(js)?)
        .await
        .map_err(js)?
        .unchecked_into();
    Ok(Reply {
        status: response.status(),
        body: Uint8Array::new(&buffer).to_vec(),
    })
}

/// A reply whose body is read piece by piece.
pub(crate) struct Streamed {
    pub status: u16,
    reader: Option<ReadableStreamDefaultReader>,
}

impl Streamed {
    /// The next piece of the body, or `None` at its end.
    pub async fn next(&mut self) -> Result<Option<Uint8Array>, ClientError> {
        let Some(reader) = &self.reader else {
            return Ok(None);
        };
        let result = JsFuture::from(reader.read())
            .await
            .map_err(|e| ClientError::Offline(error_text(&e)))?;
        if Reflect::get(&result, &"done".into())
            .ok()
            .and_then(|d| d.as_bool())
            .unwrap_or(true)
        {
            return Ok(None);
        }
        Ok(Reflect::get(&result, &"value".into())
            .ok()
            .and_then(|v| v.dyn_into::<Uint8Array>().ok()))
    }

    /// Stops reading (the rest of the body is not downloaded).
    pub fn cancel(self) {
        if let Some(reader) = self.reader {
            let _ = reader.cancel();
        }
    }
}

/// Sends `c`; the body of the reply is read with [`Streamed::next`].
pub(crate) async fn open(c: Call<'_>) -> Result<Streamed, ClientError> {
    let response = fetch(&c).await?;
    let reader = response.body().map(|b| {
        b.get_reader()
            .unchecked_into::<ReadableStreamDefaultReader>()
    });
    Ok(Streamed {
        status: response.status(),
        reader,
    })
}

async fn fetch(c: &Call<'_>) -> Result<Response, ClientError> {
    let js = |e: JsValue| ClientError::Offline(format!("{e:?}"));
    let init = RequestInit::new();
    init.set_method(c.method);
    let headers = Headers::new().map_err(js)?;
    if let Some(token) = c.token {
        headers
            .set("authorization", &format!("Bearer {token}"))
            .map_err(js)?;
    }
    for (name, value) in c.headers {
        headers.set(name, value).map_err(js)?;
    }
    if let Some((content_type, bytes)) = c.body {
        headers.set("content-type", content_type).map_err(js)?;
        init.set_body(&Uint8Array::from(bytes).into());
    }
    init.set_headers(&headers);
    let request = Request::new_with_str_and_init(c.url, &init)
        .map_err(|e| ClientError::InvalidArgument(format!("bad server URL {}: {e:?}", c.url)))?;
    let global = js_sys::global();
    let promise = if let Some(window) = global.dyn_ref::<Window>() {
        window.fetch_with_request(&request)
    } else if let Some(worker) = global.dyn_ref::<WorkerGlobalScope>() {
        worker.fetch_with_request(&request)
    } else {
        return Err(ClientError::Offline("no fetch in this global scope".into()));
    };
    Ok(JsFuture::from(promise)
        .await
        .map_err(|e| ClientError::Offline(error_text(&e)))?
        .unchecked_into())
}

fn error_text(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .unwrap_or_else(|| format!("{e:?}"))
}
