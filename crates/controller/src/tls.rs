//! Mutual TLS on the controller port. Every RPC there (Raft between voters, broker
//! registration, heartbeats, metadata watches, command submission) changes or reveals
//! cluster state, so a peer must present a certificate signed by the cluster's CA before
//! any request is read: the handshake, not the services, does the refusing.
//!
//! The rustls configurations come from the caller (the broker's reader of Kafka's
//! `listener.name.<controller listener>.ssl.*` settings); this module only runs them.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_stream::wrappers::ReceiverStream;

/// How long a peer may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Both ends of the controller port's mutual TLS.
#[derive(Debug, Clone)]
pub struct ControllerTls {
    /// The voter's server: its certificate, and a verifier that requires a client
    /// certificate chaining to the cluster's CA.
    pub server: Arc<rustls::ServerConfig>,
    /// This node's client towards voters: it verifies the voter's certificate against the
    /// cluster's CA and presents this node's certificate.
    pub client: Arc<rustls::ClientConfig>,
}

/// The host of `host:port` as a TLS server name (an IP address or a DNS name).
fn server_name(address: &str) -> io::Result<ServerName<'static>> {
    let host = address
        .rsplit_once(':')
        .map_or(address, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    ServerName::try_from(host.to_owned()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{address}: not a TLS server name: {e}"),
        )
    })
}

/// A tonic connector for `address`: TCP, then the TLS handshake with `config`.
pub(crate) fn connector(
    address: &str,
    config: &Arc<rustls::ClientConfig>,
) -> impl tower::Service<
    tonic::transport::Uri,
    Response = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>,
    Error = io::Error,
    Future = impl Send,
> + Send
       + 'static {
    let connector = TlsConnector::from(Arc::clone(config));
    let address = address.to_owned();
    tower::service_fn(move |_uri: tonic::transport::Uri| {
        let connector = connector.clone();
        let address = address.clone();
        async move {
            let name = server_name(&address)?;
            let tcp = TcpStream::connect(&address).await?;
            tcp.set_nodelay(true)?;
            let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, tcp))
                .await
                .map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")
                })??;
            Ok(TokioIo::new(stream))
        }
    })
}

/// A controller connection that completed the mutual TLS handshake.
#[derive(Debug)]
pub(crate) struct TlsConnection(tokio_rustls::server::TlsStream<TcpStream>);

impl tonic::transport::server::Connected for TlsConnection {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

/// The connections accepted on `listener` that complete the handshake with `config`. Each
/// handshake runs in its own task, so a slow or silent peer holds up no other; a failed one
/// is logged and the connection closed before any request is read. Accepting stops once the
/// returned stream is dropped.
pub(crate) fn incoming(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
) -> ReceiverStream<io::Result<TlsConnection>> {
    let (tx, rx) = mpsc::channel(32);
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = tx.closed() => return,
            };
            let (tcp, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "controller listener cannot accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(handshake(acceptor, tcp, peer, tx));
        }
    });
    ReceiverStream::new(rx)
}

async fn handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    tx: mpsc::Sender<io::Result<TlsConnection>>,
) {
    let _ = tcp.set_nodelay(true);
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => {
            let _ = tx.send(Ok(TlsConnection(stream))).await;
        }
        Ok(Err(error)) => {
            tracing::warn!(%peer, %error, "controller connection refused: TLS handshake failed");
        }
        Err(_) => tracing::warn!(%peer, "controller connection refused: TLS handshake timed out"),
    }
}
