//! sha2-256 for files in the browser: WebCrypto (`crypto.subtle.digest`, native code, several
//! blocks at once) where the page is a secure context, else the pure-Rust implementation the
//! core uses (in wasm it runs at a fraction of the speed). Every block of a file is hashed
//! on the way in (import), before upload, when read back and when downloaded, so this is the
//! browser's hot loop for files.

use cairn_core::content::Cid;
use futures::future::join_all;
use js_sys::{ArrayBuffer, Reflect, Uint8Array};
use sha2::{Digest, Sha256};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::SubtleCrypto;

fn subtle() -> Option<SubtleCrypto> {
    let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto")).ok()?;
    let subtle = Reflect::get(&crypto, &JsValue::from_str("subtle")).ok()?;
    subtle.dyn_into::<SubtleCrypto>().ok()
}

async fn resolve(promise: Result<js_sys::Promise, JsValue>) -> Option<[u8; 32]> {
    let buffer: ArrayBuffer = JsFuture::from(promise.ok()?).await.ok()?.dyn_into().ok()?;
    let mut digest = [0u8; 32];
    let bytes = Uint8Array::new(&buffer);
    (bytes.length() == 32).then(|| {
        bytes.copy_to(&mut digest);
        digest
    })
}

/// The sha2-256 of each of `blocks`, computed together.
pub async fn digests(blocks: &[&[u8]]) -> Vec<[u8; 32]> {
    if let Some(subtle) = subtle() {
        let pending = blocks
            .iter()
            .map(|b| resolve(subtle.digest_with_str_and_u8_array("SHA-256", b)));
        let found: Vec<Option<[u8; 32]>> = join_all(pending).await;
        if found.iter().all(Option::is_some) {
            return found.into_iter().flatten().collect();
        }
    }
    blocks.iter().map(|b| Sha256::digest(b).into()).collect()
}

/// The sha2-256 of a JavaScript array (hashed where it is, without copying it into wasm).
pub async fn digest_js(data: &Uint8Array) -> [u8; 32] {
    if let Some(subtle) = subtle()
        && let Some(digest) = resolve(subtle.digest_with_str_and_js_u8_array("SHA-256", data)).await
    {
        return digest;
    }
    Sha256::digest(data.to_vec()).into()
}

/// Whether `data` is the block `cid` names.
pub async fn verifies(cid: &Cid, data: &Uint8Array) -> bool {
    digest_js(data).await == cid.digest()
}
