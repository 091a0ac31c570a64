//! The remote pinning backend: the IPFS Pinning Service API
//! (<https://ipfs.github.io/pinning-services-api-spec/>) that pinning services offer, with a
//! bearer token. A pin is asked for with the CID, a name (a prefix and the CID: no file name
//! leaves the server), the origins where the service can fetch the content (configured, and
//! Kubo's own addresses when Kubo runs too) and `meta`; the service then pins it in its own
//! time, so an attempt polls it for a little while and, if it is not done, the worker tries
//! again later. Every attempt first looks the CID up at the service, so retries (and other
//! replicas) never ask twice; a request the service failed is replaced.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cairn_core::content::Cid;
use serde::Deserialize;
use serde_json::json;

use super::{KuboPinner, OpenFile, PinError, Pinner};

/// The statuses `GET /pins` is asked for (it lists only `pinned` ones otherwise).
const ANY_STATUS: &str = "queued,pinning,pinned,failed";
/// The spec's limit of origins per pin.
const MAX_ORIGINS: usize = 20;

/// How to reach the service and what to tell it.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The API endpoint, without `/pins` (e.g. `https://api.pinata.cloud/psa`).
    pub endpoint: String,
    pub token: String,
    /// Pins are named this prefix and the CID.
    pub name_prefix: String,
    /// Multiaddrs where the content can be fetched.
    pub origins: Vec<String>,
    /// How long one attempt waits for the service to finish.
    pub wait: Duration,
    /// How often it asks meanwhile.
    pub poll: Duration,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            token: String::new(),
            name_prefix: "cairn-".into(),
            origins: Vec::new(),
            wait: Duration::from_secs(10),
            poll: Duration::from_millis(500),
        }
    }
}

/// A remote pinning service (see the module docs).
#[derive(Debug)]
pub struct ServicePinner {
    config: ServiceConfig,
    client: reqwest::Client,
    /// With Kubo too: its addresses are origins.
    kubo: Option<Arc<KuboPinner>>,
}

/// The spec's `PinStatus` (what Cairn reads of it).
#[derive(Debug, Clone, Deserialize)]
struct PinStatus {
    requestid: String,
    status: String,
    #[serde(default)]
    info: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct PinResults {
    results: Vec<PinStatus>,
}

impl ServicePinner {
    pub fn new(mut config: ServiceConfig, kubo: Option<Arc<KuboPinner>>) -> anyhow::Result<Self> {
        let endpoint = config.endpoint.trim().trim_end_matches('/');
        let endpoint = endpoint
            .strip_suffix("/pins")
            .unwrap_or(endpoint)
            .to_owned();
        anyhow::ensure!(
            endpoint.starts_with("http://") || endpoint.starts_with("https://"),
            "the pinning service URL must be http:// or https://, not {endpoint:?}"
        );
        config.endpoint = endpoint;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("cairn/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            config,
            client,
            kubo,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.endpoint)
    }

    /// Sends `request` with the token; a reply of another status than `ok` is an error,
    /// retryable unless the service refused the request itself.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        ok: &[u16],
    ) -> Result<reqwest::Response, PinError> {
        let response = request
            .bearer_auth(&self.config.token)
            .send()
            .await
            .map_err(|e| PinError::Retryable(format!("the pinning service is unreachable: {e}")))?;
        let status = response.status().as_u16();
        if ok.contains(&status) {
            return Ok(response);
        }
        let body: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
        let reason = body["error"]["reason"]
            .as_str()
            .unwrap_or("no reason given");
        let details = body["error"]["details"].as_str().unwrap_or("");
        let message = format!("the pinning service answered {status}: {reason} {details}");
        Err(match status {
            // A token or a service that may be fixed: keep trying (the error is shown).
            401 | 403 | 404 | 408 | 429 | 500..=599 => PinError::Retryable(message),
            _ => PinError::Permanent(message),
        })
    }

    /// The service's requests for `cid`: pinned first, then in progress, then failed.
    async fn find(&self, cid: &Cid) -> Result<Vec<PinStatus>, PinError> {
        let request = self.client.get(self.url("/pins")).query(&[
            ("cid", cid.to_string().as_str()),
            ("status", ANY_STATUS),
            ("limit", "10"),
        ]);
        let response = self.send(request, &[200]).await?;
        let mut found = response
            .json::<PinResults>()
            .await
            .map_err(|e| PinError::Retryable(format!("an unreadable pin list: {e}")))?
            .results;
        let rank = |s: &PinStatus| match s.status.as_str() {
            "pinned" => 0,
            "queued" | "pinning" => 1,
            _ => 2,
        };
        found.sort_by_key(rank);
        Ok(found)
    }

    async fn origins(&self) -> Vec<String> {
        let mut origins = self.config.origins.clone();
        if let Some(kubo) = &self.kubo {
            match kubo.addresses().await {
                Ok(addresses) => origins.extend(addresses),
                Err(e) => {
                    tracing::warn!(?e, "cannot read Kubo's addresses for the pinning service")
                }
            }
        }
        origins.retain(|o| o.starts_with('/'));
        origins.truncate(MAX_ORIGINS);
        origins
    }

    /// Asks the service to pin `cid` (replacing the failed request `replace`).
    async fn request(&self, cid: &Cid, replace: Option<&str>) -> Result<PinStatus, PinError> {
        let mut pin = json!({
            "cid": cid.to_string(),
            "name": format!("{}{cid}", self.config.name_prefix),
            "meta": { "app": "cairn" },
        });
        let origins = self.origins().await;
        if !origins.is_empty() {
            pin["origins"] = json!(origins);
        }
        let path = match replace {
            Some(id) => format!("/pins/{id}"),
            None => "/pins".to_owned(),
        };
        let response = self
            .send(
                self.client.post(self.url(&path)).json(&pin),
                &[200, 201, 202],
            )
            .await?;
        response
            .json()
            .await
            .map_err(|e| PinError::Retryable(format!("an unreadable pin status: {e}")))
    }

    /// Follows `status` until the service has pinned it, failed it, or the attempt's time is up.
    async fn follow(&self, mut status: PinStatus) -> Result<(), PinError> {
        let deadline = Instant::now() + self.config.wait;
        loop {
            match status.status.as_str() {
                "pinned" => return Ok(()),
                "failed" => {
                    return Err(PinError::Retryable(format!(
                        "the pinning service could not pin it ({})",
                        status.info
                    )));
                }
                other if Instant::now() >= deadline => {
                    return Err(PinError::Retryable(format!(
                        "still {other} at the pinning service"
                    )));
                }
                _ => {}
            }
            tokio::time::sleep(self.config.poll).await;
            let url = self.url(&format!("/pins/{}", status.requestid));
            status = self
                .send(self.client.get(url), &[200])
                .await?
                .json()
                .await
                .map_err(|e| PinError::Retryable(format!("an unreadable pin status: {e}")))?;
        }
    }
}

#[async_trait]
impl Pinner for ServicePinner {
    fn describe(&self) -> String {
        format!("pinning service {}", self.config.endpoint)
    }

    async fn pin(&self, cid: &Cid, _file: OpenFile<'_>) -> Result<(), PinError> {
        let found = self.find(cid).await?;
        let status = match found.into_iter().next() {
            Some(failed) if failed.status == "failed" => {
                self.request(cid, Some(&failed.requestid)).await?
            }
            Some(known) => known,
            None => self.request(cid, None).await?,
        };
        self.follow(status).await
    }

    async fn is_pinned(&self, cid: &Cid) -> Result<bool, PinError> {
        Ok(self.find(cid).await?.iter().any(|s| s.status == "pinned"))
    }

    async fn unpin(&self, cid: &Cid) -> Result<(), PinError> {
        for request in self.find(cid).await? {
            let url = self.url(&format!("/pins/{}", request.requestid));
            self.send(self.client.delete(url), &[200, 202, 404]).await?;
        }
        Ok(())
    }
}
