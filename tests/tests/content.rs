//! Content addressing against independent implementations: Cairn's UnixFS importer gives the
//! CIDv0 the real Kubo peer's `add` gives (and the same cumulative `Size`), and the CIDv1
//! (raw leaves) that `ipfs-unixfs-importer` from npm gives, for files at every layout edge:
//! empty, one byte, exactly one chunk, one chunk and a byte, and more than 174 chunks (a
//! second tree level). `cairn cid` prints the same CIDs. The gateway's CAR output is checked
//! by an independent CAR reader.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::io::Cursor;
use std::path::Path;
use std::process::Command;

mod support;

use cairn_core::content::{CidVersion, ImportOptions, import};
use cairn_harness::browser::run_node;
use cairn_harness::kubo::Kubo;
use cairn_harness::postgres;
use ipfs_api_backend_hyper::{IpfsApi, IpfsClient, TryFromUri, request};

const CHUNK: usize = 256 * 1024;

use cairn_harness::pseudo_random_bytes as bytes;

fn cairn_cid(file: &Path, version: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cairn-e2e-server"))
        .args(["cid", "--cid-version", version])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn cids_match_kubo_v0_and_ipfs_unixfs_importer_v1_at_every_layout_edge() {
    let kubo = Kubo::start();
    let client = IpfsClient::from_str(&kubo.api_url).unwrap();
    let dir = cairn_harness::temp_dir("cairn-cid-parity");
    let cases = [
        ("empty", 0),
        ("one-byte", 1),
        ("one-chunk", CHUNK),
        ("chunk-and-a-byte", CHUNK + 1),
        ("two-levels", 175 * CHUNK + 1000),
    ];
    let mut files = Vec::new();
    let mut ours_v1 = Vec::new();
    for (i, (name, len)) in cases.into_iter().enumerate() {
        let data = bytes(len, 0x5eed + i as u64);
        let file = dir.join(name);
        std::fs::write(&file, &data).unwrap();

        let v0_options = ImportOptions {
            version: CidVersion::V0,
            ..ImportOptions::default()
        };
        let (_, ours) = import(&data, v0_options);
        let kubo_add = client
            .add_with_options(
                Cursor::new(data.clone()),
                request::Add {
                    pin: Some(false),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(ours.root.to_string(), kubo_add.hash, "{name}: CIDv0");
        assert_eq!(ours.dag_size.to_string(), kubo_add.size, "{name}: DAG size");
        assert_eq!(ours.size, len as u64);
        if name == "two-levels" {
            assert_eq!(ours.chunks, 176);
            assert_eq!(
                cairn_cid(&file, "0"),
                kubo_add.hash,
                "cairn cid --cid-version 0"
            );
        }

        let (_, v1) = import(&data, ImportOptions::default());
        ours_v1.push(v1.root.to_string());
        files.push(file.to_string_lossy().into_owned());
    }

    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    let out = run_node("tests/e2e/cid-parity.mjs", &args);
    let js: Vec<String> = out
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["cid"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        ours_v1, js,
        "CIDv1 (raw leaves) against ipfs-unixfs-importer"
    );
    assert_eq!(
        cairn_cid(Path::new(&files[4]), "1"),
        ours_v1[4],
        "cairn cid"
    );
}

/// The gateway's CAR is read by an independent implementation (`@ipld/car`, `@ipld/dag-pb`,
/// `ipfs-unixfs`): every block matches its CID and the blocks rebuild the uploaded file; the
/// raw format is the root block itself.
#[tokio::test]
async fn gateway_car_and_raw_are_verified_by_an_independent_reader() {
    let server = support::start_server("gateway", &postgres::fresh_database().await, &[]);
    let client = reqwest::Client::new();
    let token = support::token("alice");
    let data = bytes(4 * CHUNK + 123, 77);
    let (_, imported) = import(&data, ImportOptions::default());
    let cid = imported.root.to_string();
    let uploaded = client
        .post(format!("{}v1/files?name=four-chunks.bin", server.url))
        .bearer_auth(&token)
        .header("x-cairn-cid", &cid)
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 201, "{}", uploaded.text().await.unwrap());

    let get = |format: &'static str| {
        client
            .get(format!("{}ipfs/{cid}?format={format}", server.url))
            .bearer_auth(&token)
            .send()
    };
    let car = get("car").await.unwrap();
    assert_eq!(car.status(), 200);
    assert_eq!(
        car.headers()["content-type"],
        "application/vnd.ipld.car; version=1"
    );
    let car = car.bytes().await.unwrap();
    let file = cairn_harness::temp_dir("cairn-car").join("file.car");
    std::fs::write(&file, &car).unwrap();
    let out = run_node("tests/e2e/car-verify.mjs", &[&file.to_string_lossy()]);
    let line = out.lines().rfind(|l| l.starts_with('{')).unwrap();
    let report: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(report["roots"], serde_json::json!([cid]));
    assert_eq!(report["blocks"], 6, "five leaves and a root");
    assert_eq!(report["size"], data.len());
    let digest = sha256_hex(&data);
    assert_eq!(report["sha256"], digest.as_str());

    let raw = get("raw").await.unwrap();
    assert_eq!(raw.headers()["content-type"], "application/vnd.ipld.raw");
    let raw = raw.bytes().await.unwrap();
    assert!(imported.root.verifies(&raw), "the raw block is the root");

    // Not a file of the caller's, an unknown format, no format: JSON errors.
    let other = client
        .get(format!("{}ipfs/{cid}?format=car", server.url))
        .bearer_auth(support::token("mallory"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    for query in ["?format=tar", ""] {
        let response = client
            .get(format!("{}ipfs/{cid}{query}", server.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{query}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "E_BAD_REQUEST");
    }
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}
