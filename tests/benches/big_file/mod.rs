//! A large file up and down through a server, as `content` and `scale` measure it: a raw
//! `POST /v1/files` streamed from disk with its CID declared, then `GET /v1/files/{cid}`
//! streamed and counted, each with the server's peak RSS.

use std::path::Path;
use std::time::Instant;

use cairn_harness::server::ServerProcess;

/// What one round trip measured.
#[derive(Debug, Clone, Copy)]
pub struct RoundTrip {
    pub up_seconds: f64,
    pub down_seconds: f64,
    /// Peak RSS (MB) while uploading, and while downloading.
    pub rss_up: f64,
    pub rss_down: f64,
}

/// Uploads `input` (`size` bytes, CID `cid`) to `server` as `token`'s, then downloads it.
pub async fn round_trip(
    server: &ServerProcess,
    token: &str,
    input: &Path,
    cid: &str,
    size: usize,
) -> RoundTrip {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let (rss_up, status) = server
        .peak_rss_during(async {
            let file = tokio::fs::File::open(input).await.unwrap();
            client
                .post(format!("{}v1/files?name=big.bin", server.url))
                .bearer_auth(token)
                .header("x-cairn-cid", cid)
                .body(reqwest::Body::from(file))
                .send()
                .await
                .unwrap()
                .status()
        })
        .await;
    let up_seconds = started.elapsed().as_secs_f64();
    assert_eq!(status, 201, "upload");
    let started = Instant::now();
    let (rss_down, received) = server
        .peak_rss_during(async {
            let mut response = client
                .get(format!("{}v1/files/{cid}", server.url))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "download");
            let mut received = 0usize;
            while let Some(chunk) = response.chunk().await.unwrap() {
                received += chunk.len();
            }
            received
        })
        .await;
    assert_eq!(received, size, "downloaded whole");
    RoundTrip {
        up_seconds,
        down_seconds: started.elapsed().as_secs_f64(),
        rss_up,
        rss_down,
    }
}
