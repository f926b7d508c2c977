//! Certificates replaced while the broker runs, in two ways.
//!
//! As Kafka does: IncrementalAlterConfigs or AlterConfigs of
//! `listener.name.<listener>.ssl.keystore.location` (or `ssl.truststore.location`) for this
//! broker is checked first by building the listener's TLS from the new settings
//! ([`Broker::check_listener_tls`]; a store that does not load is refused with
//! INVALID_REQUEST and nothing changes), and once the change is in the metadata the listener
//! builds its TLS again from the files, even when the path did not change (Kafka's
//! `reloadUpdatedFilesWithoutConfigChange`).
//!
//! And on its own: the files a TLS listener reads are looked at every [`RELOAD_INTERVAL`]
//! (their modification time and length only; they are read when either changed), and when
//! they changed the listener's TLS configuration is built again from them.
//!
//! New connections get the new configuration; connections already open keep the session
//! they negotiated. A configuration that does not build (a half-written file, a key that
//! does not match its certificate) is logged and refused: the previous one keeps serving.
//!
//! Both ways, as Kafka's `SslFactory.validateReconfiguration` does, a certificate whose
//! subject differs from the served one's, or that lacks one of its subject alternative
//! names, is refused unless `ssl.allow.dn.changes` (resp. `ssl.allow.san.changes`) is true:
//! the alter with INVALID_REQUEST, the changed file with a warning.
//!
//! The controller port's and the inter-broker client's TLS follow their files through
//! `config/live_tls.rs`, with the same fingerprints and interval.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls_pki_types::CertificateDer;

use super::Listener;
use crate::config::dynamic::listener_tls_key;
use crate::config::{fingerprints, Fingerprint, ServerTls, RELOAD_INTERVAL};
use crate::Broker;

/// The TLS configuration new connections of a listener get, and the certificate it presents.
#[derive(Debug)]
pub(crate) struct CurrentTls(RwLock<ServerTls>);

impl CurrentTls {
    pub(crate) fn new(tls: ServerTls) -> Self {
        Self(RwLock::new(tls))
    }

    /// The configuration in force.
    pub(crate) fn get(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.0.read().unwrap_or_else(|e| e.into_inner()).config)
    }

    /// The certificate the configuration in force presents.
    pub(crate) fn certificate(&self) -> CertificateDer<'static> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .certificate
            .clone()
    }

    fn set(&self, tls: ServerTls) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = tls;
    }
}

/// A look at a listener's TLS: this broker's dynamic store settings for it, the files they
/// and the file's settings name, and those files' fingerprints.
type Look = (BTreeMap<String, String>, Vec<PathBuf>, Vec<Fingerprint>);

/// This broker's dynamic TLS store settings of `listener`.
fn dynamic_settings(broker: &Broker, listener: &str) -> BTreeMap<String, String> {
    let mut settings = broker.image().broker_configs(broker.node_id());
    settings.retain(|key, _| {
        listener_tls_key(key).is_some_and(|(l, _)| l.eq_ignore_ascii_case(listener))
    });
    settings
}

impl Broker {
    /// Checks that every TLS listener whose store settings `changes` alter (this broker's
    /// dynamic configs, `None` removing one) builds its TLS from the new settings, as
    /// Kafka's `SslFactory.validateReconfiguration` does; blocking (it reads the files).
    /// Answers the names (lower case) of the listeners the change touches, or Kafka's
    /// message for INVALID_REQUEST.
    pub(crate) fn check_listener_tls(
        &self,
        changes: &BTreeMap<String, Option<String>>,
    ) -> Result<Vec<String>, String> {
        let touched: Vec<&str> = changes
            .keys()
            .filter_map(|k| listener_tls_key(k).map(|(l, _)| l))
            .collect();
        if touched.is_empty() {
            return Ok(Vec::new());
        }
        let mut settings = self.image().broker_configs(self.node_id());
        for (key, value) in changes {
            match value {
                Some(value) => settings.insert(key.clone(), value.clone()),
                None => settings.remove(key),
            };
        }
        let mut names = Vec::new();
        for listener in &self.config.listeners {
            if !touched
                .iter()
                .any(|l| l.eq_ignore_ascii_case(&listener.name))
            {
                continue;
            }
            names.push(listener.name.to_ascii_lowercase());
            if !listener.protocol.uses_tls() {
                continue;
            }
            let refused = |error: &dyn std::fmt::Display| {
                format!(
                    "Invalid config value for resource ConfigResource(type=BROKER, \
                     name='{}'): Validation of dynamic config update of SSLFactory failed: \
                     {error}",
                    self.node_id()
                )
            };
            let built = self
                .config
                .listener_tls(listener, &settings)
                .map_err(|e| refused(&e))?;
            if let (Some(built), Some(current)) = (built, self.current_tls(&listener.name)) {
                self.config
                    .check_certificate_change(
                        listener,
                        &settings,
                        &current.certificate(),
                        &built.certificate,
                    )
                    .map_err(|e| refused(&e))?;
            }
        }
        Ok(names)
    }
}

/// Why a listener builds its TLS again.
#[derive(Debug, Clone, Copy)]
enum Cause {
    /// Its store settings were altered for this broker (even to the same paths).
    Altered,
    /// Its files changed on disk.
    FilesChanged,
}

/// Follows the TLS settings and files of `listener` until `shutdown` resolves, applying
/// each change. The files are first looked at before this returns, that is before the
/// listener accepts, so a change made once it serves is never taken for the start state.
pub(super) fn watch(
    broker: Arc<Broker>,
    listener: Arc<Listener>,
    shutdown: impl std::future::Future<Output = ()>,
) -> impl std::future::Future<Output = ()> {
    let look = |broker: &Broker, listener: &Listener| {
        let settings = dynamic_settings(broker, &listener.config.name);
        let files = broker
            .config
            .listener_tls_files(&listener.config, &settings);
        let prints = fingerprints(&files);
        (settings, files, prints)
    };
    let start = listener.tls.is_some().then(|| look(&broker, &listener));
    async move {
        let (Some(current), Some((seen_settings, _, seen_prints))) = (&listener.tls, start) else {
            return;
        };
        follow(
            broker,
            &listener,
            current,
            seen_settings,
            seen_prints,
            look,
            shutdown,
        )
        .await;
    }
}

async fn follow(
    broker: Arc<Broker>,
    listener: &Arc<Listener>,
    current: &CurrentTls,
    mut seen_settings: BTreeMap<String, String>,
    mut seen_prints: Vec<Fingerprint>,
    look: fn(&Broker, &Listener) -> Look,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let name = listener.config.name.to_ascii_lowercase();
    let mut requests = broker.tls_reload_requests();
    requests.borrow_and_update();
    let mut images = broker.images();
    images.borrow_and_update();
    tokio::pin!(shutdown);
    let look = {
        let broker = Arc::clone(&broker);
        let listener = Arc::clone(listener);
        move || {
            let broker = Arc::clone(&broker);
            let listener = Arc::clone(&listener);
            tokio::task::spawn_blocking(move || look(&broker, &listener))
        }
    };
    loop {
        let requested = tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(RELOAD_INTERVAL) => false,
            Ok(()) = requests.changed() => requests.borrow_and_update().listeners.contains(&name),
            Ok(()) = images.changed() => {
                images.borrow_and_update();
                false
            }
        };
        let Ok((settings, files, prints)) = look().await else {
            return;
        };
        let cause = if requested || settings != seen_settings {
            Cause::Altered
        } else if prints != seen_prints {
            Cause::FilesChanged
        } else {
            continue;
        };
        seen_prints = prints;
        seen_settings = settings.clone();
        let rebuilt = {
            let broker = Arc::clone(&broker);
            let config = listener.config.clone();
            tokio::task::spawn_blocking(move || {
                let built = broker.config.listener_tls(&config, &settings);
                (built, settings)
            })
            .await
        };
        match rebuilt {
            Ok((Ok(Some(tls)), settings)) => {
                let served = current.certificate();
                if let Err(error) = broker.config.check_certificate_change(
                    &listener.config,
                    &settings,
                    &served,
                    &tls.certificate,
                ) {
                    tracing::warn!(
                        listener = %listener.config.name,
                        files = ?files,
                        %error,
                        ?cause,
                        "the new certificate is refused; the previous certificate keeps serving"
                    );
                    continue;
                }
                current.set(tls);
                tracing::info!(
                    listener = %listener.config.name,
                    files = ?files,
                    ?cause,
                    "TLS reloaded: new connections get the new certificate"
                );
            }
            Ok((Ok(None), _)) => {}
            Ok((Err(error), _)) => tracing::error!(
                listener = %listener.config.name,
                %error,
                ?cause,
                "TLS files do not load; the previous certificate keeps serving"
            ),
            Err(error) => tracing::error!(%error, "reloading TLS failed"),
        }
    }
}
