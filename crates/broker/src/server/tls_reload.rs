//! Certificates replaced on disk while the broker runs. Kafka reloads a listener's keystore
//! when its settings are altered; here the files a TLS listener reads
//! (`ssl.keystore.location`, `ssl.truststore.location`) are read every
//! [`RELOAD_INTERVAL`], and when their contents changed the listener's TLS configuration is
//! built again from them. New connections get the new one; connections already open keep
//! the session they negotiated. A configuration that does not build (a half-written file, a
//! key that does not match its certificate) is logged and refused: the previous one keeps
//! serving until the files change again.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::ServerConfig;

use super::Listener;
use crate::Broker;

/// How often a TLS listener's files are read for changes.
pub(crate) const RELOAD_INTERVAL: Duration = Duration::from_secs(3);

/// The TLS configuration new connections of a listener get.
#[derive(Debug)]
pub(crate) struct CurrentTls(RwLock<Arc<ServerConfig>>);

impl CurrentTls {
    pub(crate) fn new(config: Arc<ServerConfig>) -> Self {
        Self(RwLock::new(config))
    }

    /// The configuration in force.
    pub(crate) fn get(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.0.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn set(&self, config: Arc<ServerConfig>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = config;
    }
}

/// The contents of `files` (`None` for one that cannot be read).
fn contents(files: &[PathBuf]) -> Vec<Option<Vec<u8>>> {
    files.iter().map(|f| std::fs::read(f).ok()).collect()
}

/// Watches the TLS files of `listener` until `shutdown` resolves, applying each change.
pub(super) async fn watch(
    broker: Arc<Broker>,
    listener: Arc<Listener>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let Some(current) = &listener.tls else {
        return;
    };
    let files = broker.config.listener_tls_files(&listener.config);
    if files.is_empty() {
        // Inline PEM settings: nothing on disk to follow.
        return;
    }
    tokio::pin!(shutdown);
    let read = {
        let files = files.clone();
        move || {
            let files = files.clone();
            tokio::task::spawn_blocking(move || contents(&files))
        }
    };
    let Ok(mut seen) = read().await else {
        return;
    };
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(RELOAD_INTERVAL) => {}
        }
        let Ok(now) = read().await else {
            return;
        };
        if now == seen {
            continue;
        }
        seen = now;
        let rebuilt = {
            let broker = Arc::clone(&broker);
            let config = listener.config.clone();
            tokio::task::spawn_blocking(move || broker.config.listener_tls(&config)).await
        };
        match rebuilt {
            Ok(Ok(Some(config))) => {
                current.set(config);
                tracing::info!(
                    listener = %listener.config.name,
                    files = ?files,
                    "TLS files changed: new connections get the new certificate"
                );
            }
            Ok(Ok(None)) => {}
            Ok(Err(error)) => tracing::error!(
                listener = %listener.config.name,
                %error,
                "TLS files changed but do not load; the previous certificate keeps serving"
            ),
            Err(error) => tracing::error!(%error, "reloading TLS failed"),
        }
    }
}
