//! `cairn serve`: the server, with its workers (pinning, garbage collection, the
//! notification listener), until SIGTERM or SIGINT.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use cairn_core::sync::server::Limits as RequestLimits;
use tokio::net::TcpListener;

use crate::auth::{self, Authenticator};
use crate::config::{PinArgs, ServeConfig};
use crate::documents::{Documents, Settings};
use crate::files::{FileLimits, Files};
use crate::gc;
use crate::http::{AppState, Limits};
use crate::lifecycle::{Lifecycle, Readiness};
use crate::pinning::{self, KuboPinner, PinSet, PinSettings, Pinner, ServiceConfig, ServicePinner};
use crate::ratelimit::RateLimits;
use crate::store;
use crate::{serve, spawn_listener};

/// The token verifier the configuration asks for.
fn authenticator(config: &ServeConfig) -> anyhow::Result<Authenticator> {
    if config.dev_auth && !config.listen.ip().is_loopback() {
        bail!(
            "refusing --dev-auth on {}: development tokens are only allowed on a loopback address",
            config.listen
        );
    }
    let auth = match (&config.jwt_secret, &config.jwt_public_key) {
        (Some(secret), _) => Authenticator::hs256(secret.as_bytes(), config.dev_auth)?,
        (None, Some(path)) => {
            if config.dev_auth {
                bail!("--dev-auth mints HS256 tokens and cannot be combined with --jwt-public-key");
            }
            let pem =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            Authenticator::ed25519(&pem)?
        }
        (None, None) if config.dev_auth => {
            let secret = auth::dev_secret(&config.storage.data_dir)
                .context("cannot set up the development secret")?;
            Authenticator::hs256(&secret, true)?
        }
        (None, None) => bail!(
            "no authentication configured: set --jwt-secret (HS256) or --jwt-public-key (Ed25519), \
             or pass --dev-auth for local development"
        ),
    };
    Ok(auth.require(config.jwt_issuer.as_deref(), config.jwt_audience.as_deref()))
}

/// The pinning backend the configuration asks for (`None`: no pinning).
pub fn pinner(config: &PinArgs) -> anyhow::Result<Option<Arc<PinSet>>> {
    let wants = |name: &str| config.pin_backend.iter().any(|b| b == name);
    let kubos = if wants("kubo") {
        config
            .kubo_api_url
            .iter()
            .map(|url| Ok(Arc::new(KuboPinner::new(url)?)))
            .collect::<anyhow::Result<Vec<_>>>()?
    } else {
        Vec::new()
    };
    let mut backends: Vec<Arc<dyn Pinner>> = kubos
        .iter()
        .map(|kubo| kubo.clone() as Arc<dyn Pinner>)
        .collect();
    if wants("pinning-service") {
        let endpoint = config.pinning_service_url.clone().context(
            "--pin-backend pinning-service needs --pinning-service-url (CAIRN_PINNING_SERVICE_URL)",
        )?;
        let token = config.pinning_service_token.clone().context(
            "--pin-backend pinning-service needs --pinning-service-token (CAIRN_PINNING_SERVICE_TOKEN)",
        )?;
        let service = ServiceConfig {
            endpoint,
            token,
            name_prefix: config.pin_name_prefix.clone(),
            origins: config.pin_origins.clone(),
            ..ServiceConfig::default()
        };
        // The service fetches the content from the first Kubo node's addresses.
        backends.push(Arc::new(ServicePinner::new(
            service,
            kubos.first().cloned(),
        )?));
    }
    if backends.is_empty() {
        return Ok(None);
    }
    let want = config.pin_replicas.unwrap_or(backends.len());
    Ok(Some(Arc::new(
        PinSet::new(backends, want).map_err(anyhow::Error::msg)?,
    )))
}

pub async fn run(config: ServeConfig) -> anyhow::Result<()> {
    let auth = authenticator(&config)?;
    let storage = &config.storage;
    let store = store::open(
        storage.database_url.as_deref(),
        &storage.data_dir,
        &storage.options(true),
    )
    .await
    .context("cannot open the document store")?;
    let settings = Settings {
        limits: RequestLimits {
            max_documents: config.max_documents_per_request,
            max_changes: config.max_changes_per_request,
        },
        snapshot_every: config.snapshot_every,
    };
    let blocks = storage.blockstore(false)?;
    let pinner = pinner(&config.pins)?;
    let pin_wake = pinner
        .is_some()
        .then(|| Arc::new(tokio::sync::Notify::new()));
    let files = Arc::new(Files {
        store: store.clone(),
        blocks: blocks.clone(),
        limits: FileLimits {
            max_file_bytes: config.max_file_bytes,
            allowed_types: config.allowed_file_types.clone(),
        },
        pin_wake: pin_wake.clone(),
    });
    let lifecycle = Lifecycle::default();
    let unpinner = pinner.clone().map(|set| set as Arc<dyn Pinner>);
    gc::spawn(files.clone(), unpinner, config.gc.settings());
    let pin_worker = if let (Some(wake), Some(pinner)) = (pin_wake, pinner) {
        let mut settings = PinSettings::default();
        settings.retry.max_ms = config.pins.pin_retry_max_secs.saturating_mul(1000).max(1);
        settings.retry.base_ms = settings.retry.base_ms.min(settings.retry.max_ms);
        Some(pinning::spawn_worker(
            files.clone(),
            pinner,
            settings,
            wake,
            lifecycle.clone(),
        ))
    } else {
        None
    };
    let readiness = Arc::new(Readiness {
        schema: store.clone(),
        blocks,
    });
    let rate_limits = Arc::new(RateLimits::new(
        &config.rate_limits,
        config.trust_forwarded_for,
    ));
    rate_limits.spawn_housekeeping();
    let documents = Arc::new(Documents::new(store, settings, config.cache_documents));
    spawn_listener(documents.clone());
    let existing = |dir: &std::path::Path| {
        let found = dir.is_dir();
        if !found {
            tracing::warn!(dir = %dir.display(), "static directory not found; not serving it");
        }
        found.then(|| dir.to_path_buf())
    };
    let state = AppState {
        documents,
        files,
        auth: Arc::new(auth),
        limits: Limits {
            max_body_bytes: config.max_body_bytes,
            max_subscriptions: config.max_subscriptions,
            max_connections_per_user: config.max_connections_per_user,
        },
        connections: Arc::default(),
        dev_auth: config.dev_auth,
        www_dir: existing(&config.www_dir),
        pkg_dir: existing(&config.pkg_dir),
        metrics_token: config.metrics_token.as_deref().map(Arc::from),
        lifecycle: lifecycle.clone(),
        readiness,
        rate_limits,
        automerge: Arc::new(automerge_hub(&config)),
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(
        storage = %state.documents.store.describe(),
        blocks = %state.files.blocks.describe(),
        dev_auth = config.dev_auth,
        "cairn ready"
    );
    // The one line on stdout: scripts and the test harness read the URL from it.
    println!("cairn listening on http://{addr}/");
    let stopping = lifecycle.clone();
    let connections = state.connections.clone();
    let mut server = tokio::spawn(serve(listener, state, async move {
        stopping.stopping().await;
    }));
    tokio::select! {
        () = shutdown_signal() => {}
        ended = &mut server => {
            ended.context("the server task failed")??;
            return Ok(());
        }
    }
    // Not ready any more, no new connections, WebSockets told to go away, pins given back.
    tracing::info!("shutting down: finishing the requests in flight");
    lifecycle.shut_down();
    let deadline = Duration::from_secs(config.shutdown_timeout_secs);
    match tokio::time::timeout(deadline, &mut server).await {
        Ok(ended) => ended.context("the server task failed")??,
        Err(_) => tracing::warn!(
            ?deadline,
            "requests still in flight at the deadline; exiting"
        ),
    }
    // Upgraded WebSockets run in tasks of their own, outside the server's graceful shutdown:
    // let each send its going-away frame before the runtime ends.
    connections.wait_closed(Duration::from_secs(5)).await;
    if let Some(worker) = pin_worker {
        let _ = tokio::time::timeout(Duration::from_secs(5), worker).await;
    }
    tracing::info!("cairn stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

/// Who this replica is to automerge-repo peers: its own peer id, the deployment's storage id.
fn automerge_hub(config: &ServeConfig) -> crate::automerge::AutomergeHub {
    use crate::automerge::{derived_storage_id, without_credentials};
    let location = match &config.storage.database_url {
        Some(url) => without_credentials(url),
        None => config.storage.data_dir.display().to_string(),
    };
    let storage_id = config
        .automerge_storage_id
        .clone()
        .unwrap_or_else(|| derived_storage_id(&location));
    let mut id = [0u8; 8];
    // Without randomness the replicas still work; their peer ids only collide in logs.
    let _ = getrandom::fill(&mut id);
    let peer_id = format!("cairn-{}", hex::encode(id));
    crate::automerge::AutomergeHub::new(peer_id, storage_id)
}
