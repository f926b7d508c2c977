//! One client connection. A reader task reads frames ahead (at most `queued.max.requests`);
//! the processor handles them one by one in order, so responses leave in request order, and
//! flushes the socket when no more requests are waiting. A deferred reply (acks=all waiting
//! for replication) does not hold up the requests behind it: they are handled, and their
//! replies queue behind the deferred one.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, StreamExt};
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::frame::{FrameError, FrameReader};
use crate::api::{self, Reply};
use crate::Broker;

pub(crate) async fn run(broker: Arc<Broker>, stream: TcpStream) -> Result<(), FrameError> {
    stream.set_nodelay(true)?;
    let peer = stream
        .peer_addr()
        .map(|a| format!("/{}", a.ip()))
        .unwrap_or_default();
    let (read_half, write_half) = stream.into_split();
    let (requests, mut queue) = mpsc::channel::<Bytes>(broker.config.max_in_flight_per_connection);
    let max_frame = broker.config.socket_request_max_bytes;
    let reader = tokio::spawn(async move {
        let mut reader = FrameReader::new(read_half, max_frame);
        loop {
            match reader.next().await {
                Ok(Some(frame)) => {
                    if requests.send(frame).await.is_err() {
                        return Ok(());
                    }
                }
                Ok(None) => return Ok(()),
                Err(error) => return Err(error),
            }
        }
    });
    let mut writer = BufWriter::with_capacity(64 * 1024, write_half);
    let limit = broker.config.max_in_flight_per_connection.max(1);
    let result = async {
        // Replies not yet written, in request order; empty unless a reply was deferred.
        let mut pending: FuturesOrdered<BoxFuture<'static, Reply>> = FuturesOrdered::new();
        let mut open = true;
        while open || !pending.is_empty() {
            let reply = tokio::select! {
                biased;
                Some(reply) = pending.next(), if !pending.is_empty() => reply,
                frame = queue.recv(), if open && pending.len() < limit => {
                    let Some(frame) = frame else {
                        open = false;
                        continue;
                    };
                    let reply = api::handle_frame(&broker, frame, &peer).await;
                    match reply {
                        Reply::Deferred(later) => {
                            pending.push_back(later);
                            continue;
                        }
                        ready if !pending.is_empty() => {
                            pending.push_back(Box::pin(std::future::ready(ready)));
                            continue;
                        }
                        ready => ready,
                    }
                }
            };
            match reply {
                Reply::Frame(response) => writer.write_all(&response).await?,
                Reply::Pieces(pieces) => {
                    for piece in pieces {
                        writer.write_all(&piece).await?;
                    }
                }
                Reply::Nothing => {}
                // A deferred reply resolving to another waits again, still first in line.
                Reply::Deferred(later) => pending.push_front(later),
                Reply::Close => break,
            }
            if queue.is_empty() {
                writer.flush().await?;
            }
        }
        writer.flush().await?;
        Ok::<_, std::io::Error>(())
    }
    .await;
    reader.abort();
    let read_result = reader.await.unwrap_or(Ok(()));
    result?;
    read_result
}
