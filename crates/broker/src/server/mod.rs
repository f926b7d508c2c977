//! Sockets: the listeners, and per connection a reader of length-prefixed frames and a
//! processor that answers them in request order.
//!
//! Each named listener (`listeners`) has its own accept loop; a connection remembers the
//! listener it came in on, whose advertised endpoints Metadata answers with.
//!
//! The listener enforces Kafka's connection limits: at `max.connections` it stops accepting
//! until a connection closes (KIP-402; new connections wait in the listen backlog), and a
//! connection from an address that already has `max.connections.per.ip` (or its entry in
//! `max.connections.per.ip.overrides`) is closed at once. The limits follow the dynamic
//! broker configs while the listener runs ([`ConnectionLimits`]).

mod connection;
pub(crate) use connection::Peer;
mod frame;
pub(crate) use frame::{Budget, FrameReader};
mod oauthbearer;
mod sasl;
pub(crate) use sasl::scram_keys;
mod tls_reload;
pub(crate) use tls_reload::CurrentTls;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::config::ListenerConfig;
use crate::Broker;

/// Accepts Kafka clients on every listener until `shutdown` completes. The connection
/// limits and the request budget are shared by all listeners.
pub async fn serve(
    broker: Arc<Broker>,
    listeners: Vec<(ListenerConfig, TcpListener)>,
    shutdown: impl Future<Output = ()>,
) {
    let config = &broker.config;
    let mut limits = broker.connection_limits.subscribe();
    let quotas = Arc::new(ConnectionQuotas::new(limits.borrow_and_update().clone()));
    let follow = {
        let quotas = Arc::clone(&quotas);
        tokio::spawn(async move {
            while limits.changed().await.is_ok() {
                let next = limits.borrow_and_update().clone();
                tracing::info!(?next, "connection limits changed");
                quotas.set_limits(next);
            }
        })
    };
    let _follow = AbortOnDrop(follow);
    let budget = Arc::new(frame::Budget::new(config.queued_max_request_bytes));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let loops: Vec<_> = listeners
        .into_iter()
        .map(|(config, socket)| {
            let broker = Arc::clone(&broker);
            let quotas = Arc::clone(&quotas);
            let budget = Arc::clone(&budget);
            let mut stopped = stopped.clone();
            let tls = broker.current_tls(&config.name);
            let listener = Arc::new(Listener { config, tls });
            tokio::spawn(async move {
                let mut watching = stopped.clone();
                let watch =
                    tls_reload::watch(Arc::clone(&broker), Arc::clone(&listener), async move {
                        let _ = watching.wait_for(|s| *s).await;
                    });
                let _watch = AbortOnDrop(tokio::spawn(watch));
                let shutdown = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                accept_loop(broker, listener, socket, quotas, budget, shutdown).await;
            })
        })
        .collect();
    shutdown.await;
    let _ = stop.send(true);
    for accepting in loops {
        let _ = accepting.await;
    }
}

/// A listener as connections see it.
#[derive(Debug)]
pub(crate) struct Listener {
    pub(crate) config: ListenerConfig,
    /// The TLS new connections get: `config.tls` at start, then what the files hold after
    /// they change (`tls_reload.rs`).
    tls: Option<Arc<tls_reload::CurrentTls>>,
}

async fn accept_loop(
    broker: Arc<Broker>,
    listener_info: Arc<Listener>,
    listener: TcpListener,
    quotas: Arc<ConnectionQuotas>,
    budget: Arc<frame::Budget>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            () = quotas.wait_for_slot() => {}
        }
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Some(slot) = quotas.admit(peer.ip()) else {
                        tracing::info!(
                            ip = %peer.ip(),
                            max = quotas.max_for(peer.ip()),
                            "rejected connection: the address already has the configured maximum of connections"
                        );
                        drop(stream);
                        continue;
                    };
                    let counted = broker.connection_stats.open();
                    let broker = Arc::clone(&broker);
                    let budget = Arc::clone(&budget);
                    let listener = Arc::clone(&listener_info);
                    tokio::spawn(async move {
                        let _counted = counted;
                        if let Err(error) = open(broker, stream, listener, budget).await {
                            tracing::debug!(%peer, %error, "connection closed");
                        }
                        drop(slot);
                    });
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// Aborts the task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The connection limits in force: `max.connections`, `max.connections.per.ip` and
/// `max.connections.per.ip.overrides`, the dynamic broker configs applied over the file's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnectionLimits {
    pub(crate) max_total: usize,
    pub(crate) max_per_ip: usize,
    pub(crate) overrides: BTreeMap<IpAddr, usize>,
}

/// Encrypted bytes a TLS connection holds ahead of the socket (rustls's default is 64 KiB):
/// larger fetch responses are encrypted and written in fewer, larger steps.
const TLS_SEND_BUFFER: usize = 1 << 20;

/// Serves one accepted connection: the TLS handshake first on an SSL or SASL_SSL listener
/// (within `request.receive.timeout.ms`; a client that does not speak TLS is closed), then
/// the connection.
async fn open(
    broker: Arc<Broker>,
    stream: tokio::net::TcpStream,
    listener: Arc<Listener>,
    budget: Arc<frame::Budget>,
) -> Result<(), frame::FrameError> {
    stream.set_nodelay(true)?;
    let (host, addr) = match stream.peer_addr() {
        Ok(addr) => (format!("/{}", addr.ip()), addr.to_string()),
        Err(_) => (String::new(), String::new()),
    };
    let mut peer = connection::Peer {
        host,
        addr,
        listener: Arc::clone(&listener),
        principal: "User:ANONYMOUS".to_owned(),
        throttle_ms: Default::default(),
    };
    let Some(tls) = &listener.tls else {
        let (read, write) = stream.into_split();
        return connection::run(broker, read, write, peer, budget).await;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.get());
    let limit = std::time::Duration::from_millis(broker.config.request_receive_timeout_ms);
    let mut stream = match tokio::time::timeout(
        limit,
        acceptor.accept(client::BatchedReads::new(stream)),
    )
    .await
    {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::info!(peer = %peer.addr, listener = %listener.config.name, %error, "TLS handshake failed");
            return Ok(());
        }
        Err(_) => {
            tracing::info!(peer = %peer.addr, listener = %listener.config.name, "TLS handshake timed out");
            return Ok(());
        }
    };
    stream.get_mut().1.set_buffer_limit(Some(TLS_SEND_BUFFER));
    if !listener.config.protocol.uses_sasl() {
        let certificate = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first());
        peer.principal = match crate::config::tls_principal(
            certificate,
            &listener.config.principal_mapper,
        ) {
            Ok(principal) => principal,
            Err(error) => {
                tracing::info!(peer = %peer.addr, listener = %listener.config.name, %error, "TLS client refused");
                return Ok(());
            }
        };
    }
    let (read, write) = tokio::io::split(stream);
    connection::run(broker, read, write, peer, budget).await
}

/// Open connections counted against `max.connections` and `max.connections.per.ip`.
#[derive(Debug)]
struct ConnectionQuotas {
    limits: Mutex<ConnectionLimits>,
    counts: Mutex<Counts>,
    /// Signalled when a connection closes or the limits change.
    closed: Notify,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// An admitted connection's place in the counts, given back when dropped.
#[derive(Debug)]
struct Slot {
    quotas: Arc<ConnectionQuotas>,
    ip: IpAddr,
}

impl ConnectionQuotas {
    fn new(limits: ConnectionLimits) -> Self {
        Self {
            limits: Mutex::new(limits),
            counts: Mutex::default(),
            closed: Notify::new(),
        }
    }

    /// Applies new limits; connections already open stay open.
    fn set_limits(&self, limits: ConnectionLimits) {
        *self.limits() = limits;
        self.closed.notify_waiters();
    }

    fn limits(&self) -> std::sync::MutexGuard<'_, ConnectionLimits> {
        self.limits.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        // The counts stay consistent even if a holder panicked: every update is one step.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most connections `ip` may have open.
    fn max_for(&self, ip: IpAddr) -> usize {
        let limits = self.limits();
        limits
            .overrides
            .get(&ip)
            .copied()
            .unwrap_or(limits.max_per_ip)
    }

    /// Resolves once fewer than `max.connections` connections are open.
    async fn wait_for_slot(&self) {
        let mut warned = false;
        loop {
            let closed = self.closed.notified();
            tokio::pin!(closed);
            closed.as_mut().enable();
            let max_total = self.limits().max_total;
            if self.counts().total < max_total {
                return;
            }
            if !warned {
                tracing::warn!(
                    max_connections = max_total,
                    "max.connections reached; not accepting until a connection closes"
                );
                warned = true;
            }
            closed.await;
        }
    }

    /// Counts a connection from `ip`, or `None` if that address is at its limit.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let max = self.max_for(ip);
        let mut counts = self.counts();
        let open = counts.by_ip.entry(ip).or_default();
        if *open >= max {
            if *open == 0 {
                counts.by_ip.remove(&ip);
            }
            return None;
        }
        *open += 1;
        counts.total += 1;
        Some(Slot {
            quotas: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.quotas.counts();
        counts.total -= 1;
        if let Some(open) = counts.by_ip.get_mut(&self.ip) {
            *open -= 1;
            if *open == 0 {
                counts.by_ip.remove(&self.ip);
            }
        }
        drop(counts);
        self.quotas.closed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_ip_limits_and_overrides_count_open_connections() {
        let overrides = BTreeMap::from([(ip("127.0.0.2"), 0), (ip("127.0.0.3"), 3)]);
        let quotas = Arc::new(ConnectionQuotas::new(ConnectionLimits {
            max_total: 100,
            max_per_ip: 2,
            overrides,
        }));
        let a = quotas.admit(ip("127.0.0.1")).unwrap();
        let _b = quotas.admit(ip("127.0.0.1")).unwrap();
        assert!(quotas.admit(ip("127.0.0.1")).is_none());
        assert!(quotas.admit(ip("127.0.0.2")).is_none());
        let three: Vec<_> = (0..3).map(|_| quotas.admit(ip("127.0.0.3"))).collect();
        assert!(three.iter().all(Option::is_some));
        assert!(quotas.admit(ip("127.0.0.3")).is_none());
        drop(a);
        let again = quotas.admit(ip("127.0.0.1"));
        assert!(again.is_some());
        assert_eq!(quotas.counts().total, 5);
        drop((again, three));
        assert_eq!(quotas.counts().total, 1);
    }

    #[tokio::test]
    async fn at_max_connections_the_listener_waits_for_one_to_close() {
        let quotas = Arc::new(ConnectionQuotas::new(ConnectionLimits {
            max_total: 1,
            max_per_ip: 10,
            overrides: BTreeMap::new(),
        }));
        quotas.wait_for_slot().await;
        let slot = quotas.admit(ip("127.0.0.1")).unwrap();
        let waiting = quotas.wait_for_slot();
        tokio::pin!(waiting);
        assert!(futures::poll!(waiting.as_mut()).is_pending());
        drop(slot);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("a slot after the close");
    }
}
