//! One client connection. A reader task reads frames ahead (at most `queued.max.requests`);
//! the processor answers them one by one, so responses leave in request order, and flushes
//! the socket when no more requests are waiting.

use std::sync::Arc;

use bytes::Bytes;
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
    let result = async {
        while let Some(frame) = queue.recv().await {
            match api::handle_frame(&broker, frame, &peer).await {
                Reply::Frame(response) => writer.write_all(&response).await?,
                Reply::Pieces(pieces) => {
                    for piece in pieces {
                        writer.write_all(&piece).await?;
                    }
                }
                Reply::Nothing => {}
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
