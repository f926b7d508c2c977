//! Sockets: the listener, and per connection a reader of length-prefixed frames and a
//! processor that answers them in request order.

mod connection;
pub(crate) use connection::Peer;
mod frame;
pub(crate) use frame::FrameReader;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::Broker;

/// Accepts Kafka clients on `listener` until `shutdown` completes.
pub async fn serve(broker: Arc<Broker>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let broker = Arc::clone(&broker);
                    tokio::spawn(async move {
                        if let Err(error) = connection::run(broker, stream).await {
                            tracing::debug!(%peer, %error, "connection closed");
                        }
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
