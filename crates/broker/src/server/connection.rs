//! One client connection. A reader task reads frames ahead (at most `queued.max.requests`, and
//! at most [`READ_AHEAD_BYTES`] of them, each also reserved from the broker-wide
//! `queued.max.request.bytes` budget before its body is read);
//! the processor handles them one by one in order, so responses leave in request order. A
//! deferred reply (a produce waiting for its append, acks=all for replication) does not hold
//! up the requests behind it: they are handled, and their replies queue behind the deferred
//! one. A request's read-ahead share and its reservation are released when its handler
//! returns, or for a produce when its records are written.
//!
//! Replies are written with vectored writes straight from their pieces (record bytes are
//! slices of the segment mappings), so no reply is copied in user space; the processor writes
//! once no more requests are waiting or [`WRITE_AHEAD`] bytes are ready.
//!
//! A connection with nothing received, nothing sent and nothing in progress for
//! `connections.max.idle.ms` is closed. While idle it holds a small read buffer and no
//! reply buffers, so it costs little more than its two tasks.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Semaphore};

use super::frame::{Budget, Frame, FrameError, FrameReader};
use super::sasl::Step;
use super::Listener;
use crate::api::{self, Reply};
use crate::metrics::Stage;
use crate::partition::Hold;
use crate::Broker;
use kafka_protocol::messages::ApiKey;

/// Reply bytes gathered before a write even while more requests are waiting: small, so a
/// client that keeps requests coming still gets its replies promptly.
const WRITE_AHEAD: usize = 64 * 1024;
/// Bytes of requests read off the socket and not yet handled (for a produce: not yet
/// written), beyond the one being read: the reader waits for room before reading on. Small requests still pipeline by the hundred; a
/// stream of large produce requests is read one or two ahead, so memory stays bounded and a
/// request's bytes are still in cache when they are copied to the log.
const READ_AHEAD_BYTES: usize = 1 << 20;
/// Slices handed to one `writev` (Linux allows 1,024).
const MAX_SLICES: usize = 256;
/// Reply pieces an emptied outbox keeps room for; a larger queue is freed once written.
const IDLE_SLICES: usize = 16;

/// The other end of a connection, as handlers and logs name it.
#[derive(Debug)]
pub(crate) struct Peer {
    /// The client's address as Kafka shows it in group descriptions (`/127.0.0.1`).
    pub(crate) host: String,
    /// `ip:port`, naming the connection in request spans.
    pub(crate) addr: String,
    /// The listener the connection came in on.
    pub(crate) listener: Arc<Listener>,
    /// Kafka's principal: `User:ANONYMOUS` on PLAINTEXT, the certificate subject on SSL
    /// (`User:CN=...`), the SASL user once authenticated.
    pub(crate) principal: String,
    /// The longest throttle (ms) a quota asked for while handling the current request; the
    /// processor takes it and mutes the connection that long (KIP-219).
    pub(crate) throttle_ms: AtomicU64,
}

impl Peer {
    /// Asks for the connection to be muted for `ms` after the current request's reply.
    pub(crate) fn throttle(&self, ms: u64) {
        if ms > 0 {
            self.throttle_ms.fetch_max(ms, Ordering::Relaxed);
        }
    }
}

/// A reply on its way out, with what its timings need.
struct Timed {
    reply: Reply,
    api_key: i16,
    /// When its frame was read.
    received: Instant,
    /// When its handler started.
    started: Instant,
    /// When the reply was ready.
    ready: Instant,
}

/// Serves one connection (its two halves, plain TCP or TLS) until the client closes it, a
/// frame is bad or stalls, it idles, or it fails to authenticate on a SASL listener.
pub(crate) async fn run<R, W>(
    broker: Arc<Broker>,
    read_half: R,
    mut write_half: W,
    mut peer: Peer,
    budget: Arc<Budget>,
) -> Result<(), FrameError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send,
{
    let mut authenticator = peer
        .listener
        .config
        .sasl
        .clone()
        .map(super::sasl::Authenticator::new);
    let (requests, mut queue) =
        mpsc::channel::<(Bytes, Instant, Hold)>(broker.config.max_in_flight_per_connection);
    let read_ahead = Arc::new(Semaphore::new(READ_AHEAD_BYTES));
    let mut reader = FrameReader::new(
        read_half,
        broker.config.socket_request_max_bytes,
        budget,
        Duration::from_millis(broker.config.request_receive_timeout_ms),
    );
    let receiving = reader.receiving();
    // Until when (`quota::clock_ms`) a quota throttle mutes the connection: nothing more is
    // read from the socket before then.
    let muted = Arc::new(AtomicU64::new(0));
    let reader_muted = Arc::clone(&muted);
    let reader = tokio::spawn(async move {
        loop {
            let until = reader_muted.load(Ordering::Relaxed);
            let now = crate::quota::clock_ms();
            if until > now {
                tokio::time::sleep(Duration::from_millis(until - now)).await;
            }
            match reader.next().await {
                Ok(Some(Frame { bytes, reservation })) => {
                    let received = Instant::now();
                    let share = bytes.len().min(READ_AHEAD_BYTES) as u32;
                    let Ok(permit) = Arc::clone(&read_ahead).acquire_many_owned(share).await else {
                        return Ok(());
                    };
                    let hold: Hold = Arc::new((permit, reservation));
                    if requests.send((bytes, received, hold)).await.is_err() {
                        return Ok(());
                    }
                }
                Ok(None) => return Ok(()),
                Err(error) => return Err(error),
            }
        }
    });
    let metrics = broker.request_metrics();
    let limit = broker.config.max_in_flight_per_connection.max(1);
    let mut outbox = Outbox::default();
    let max_idle = broker
        .config
        .connections_max_idle_ms
        .map(Duration::from_millis);
    let mut last_active = tokio::time::Instant::now();
    // Armed lazily: when it fires, it is moved to the last activity plus the idle time.
    let expiry = tokio::time::sleep(max_idle.unwrap_or(Duration::from_secs(86_400)));
    tokio::pin!(expiry);
    let result = async {
        // Replies not yet written, in request order; empty unless a reply was deferred.
        let mut pending: FuturesOrdered<BoxFuture<'static, Timed>> = FuturesOrdered::new();
        let mut open = true;
        // While throttled, no request is taken (replies still go out).
        let mut muted_until: Option<tokio::time::Instant> = None;
        // A failed authentication was answered: the connection closes after its reply.
        let mut failed_authentication = false;
        while open || !pending.is_empty() {
            let timed = tokio::select! {
                biased;
                Some(timed) = pending.next(), if !pending.is_empty() => timed,
                () = tokio::time::sleep_until(muted_until.unwrap_or_else(tokio::time::Instant::now)), if muted_until.is_some() => {
                    muted_until = None;
                    continue;
                }
                frame = queue.recv(), if open && pending.len() < limit && muted_until.is_none() => {
                    let Some((frame, received, hold)) = frame else {
                        open = false;
                        continue;
                    };
                    last_active = tokio::time::Instant::now();
                    if let Some(auth) = authenticator.as_mut().filter(|a| a.done()) {
                        // KIP-368: a SaslHandshake may begin a re-authentication; any other
                        // request after the session ended closes the connection.
                        let now = Instant::now();
                        let handshake = frame.get(..2) == Some(&(ApiKey::SaslHandshake as i16).to_be_bytes()[..]);
                        if !(handshake && auth.begin_reauthentication(now)) && auth.expired(now) {
                            tracing::info!(peer = %peer.addr, principal = %peer.principal, "closing a connection whose SASL session expired without re-authentication");
                            broker.connection_stats.expired_killed.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                    let frame = match authenticator.as_mut().filter(|a| !a.done()) {
                        None => frame,
                        Some(auth) => {
                            let reauthenticating = auth.reauthenticating();
                            let api_key = frame.get(..2).map_or(-1, |k| i16::from_be_bytes([k[0], k[1]]));
                            // A re-authentication's replies queue behind the replies still
                            // deferred, so replies leave in request order.
                            let queued = |reply| -> BoxFuture<'static, Timed> {
                                let now = Instant::now();
                                Box::pin(std::future::ready(Timed { reply, api_key, received, started: now, ready: now }))
                            };
                            match auth.step(frame, &broker.image()) {
                                Step::Request(frame) => frame,
                                Step::Reply(reply) => {
                                    if reauthenticating && auth.done() {
                                        broker.connection_stats.reauthenticated.fetch_add(1, Ordering::Relaxed);
                                        tracing::debug!(peer = %peer.addr, principal = %peer.principal, "re-authenticated");
                                    } else if let Some(principal) = auth.principal() {
                                        peer.principal = principal.to_owned();
                                        tracing::debug!(peer = %peer.addr, principal = %peer.principal, "authenticated");
                                    }
                                    if pending.is_empty() {
                                        outbox.push(reply);
                                        outbox.write_to(&mut write_half, &broker).await?;
                                    } else {
                                        pending.push_back(queued(Reply::Frame(reply)));
                                    }
                                    continue;
                                }
                                Step::ReplyAndClose(reply) => {
                                    if reauthenticating {
                                        broker.connection_stats.failed_reauthentications.fetch_add(1, Ordering::Relaxed);
                                    }
                                    tracing::info!(peer = %peer.addr, listener = %peer.listener.config.name, reauthenticating, "failed authentication");
                                    // The error follows the replies still pending; the
                                    // close after it waits (below).
                                    pending.push_back(queued(Reply::Frame(reply)));
                                    pending.push_back(queued(Reply::Close));
                                    failed_authentication = true;
                                    open = false;
                                    continue;
                                }
                                Step::Close => {
                                    if reauthenticating {
                                        broker.connection_stats.failed_reauthentications.fetch_add(1, Ordering::Relaxed);
                                    }
                                    tracing::info!(peer = %peer.addr, listener = %peer.listener.config.name, reauthenticating, "closing a connection that sent a request before authenticating");
                                    break;
                                }
                            }
                        }
                    };
                    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
                    let started = Instant::now();
                    metrics.record(api_key, Stage::Queue, started - received);
                    // Boxed: a handler's state lives only while it runs, not in every
                    // connection's task.
                    let mut handling = Box::pin(api::handle_frame(&broker, frame, &peer, hold));
                    // A handler that waits (a long poll, a join) does not hold back the
                    // replies already made: they go out first.
                    let reply = match futures::poll!(handling.as_mut()) {
                        std::task::Poll::Ready(reply) => reply,
                        std::task::Poll::Pending => {
                            outbox.write_to(&mut write_half, &broker).await?;
                            handling.await
                        }
                    };
                    let throttle = peer.throttle_ms.swap(0, Ordering::Relaxed);
                    if throttle > 0 {
                        muted_until = Some(tokio::time::Instant::now() + Duration::from_millis(throttle));
                        muted.store(crate::quota::clock_ms() + throttle, Ordering::Relaxed);
                    }
                    let timed = move |reply| Timed { reply, api_key, received, started, ready: Instant::now() };
                    match reply {
                        Reply::Deferred(later) => {
                            pending.push_back(Box::pin(async move { timed(later.await) }));
                            continue;
                        }
                        ready if !pending.is_empty() => {
                            let ready = timed(ready);
                            pending.push_back(Box::pin(std::future::ready(ready)));
                            continue;
                        }
                        ready => timed(ready),
                    }
                }
                () = &mut expiry, if max_idle.is_some() && pending.is_empty() && open => {
                    let now = tokio::time::Instant::now();
                    if receiving.load(Ordering::Relaxed) || !queue.is_empty() {
                        last_active = now;
                    }
                    let due = last_active + max_idle.unwrap_or_default();
                    if due <= now {
                        tracing::debug!(peer = %peer.addr, "closing a connection idle for connections.max.idle.ms");
                        break;
                    }
                    expiry.as_mut().reset(due);
                    continue;
                }
            };
            let Timed { reply, api_key, received, started, ready } = timed;
            match reply {
                // A deferred reply resolving to another waits again, still first in line.
                Reply::Deferred(later) => {
                    pending.push_front(Box::pin(async move {
                        Timed { reply: later.await, api_key, received, started, ready: Instant::now() }
                    }));
                    continue;
                }
                Reply::Close => break,
                Reply::Frame(frame) => outbox.push(frame),
                Reply::Pieces(pieces) => pieces.into_iter().for_each(|p| outbox.push(p)),
                Reply::Nothing => {}
            }
            metrics.record(api_key, Stage::Handling, ready - started);
            outbox.started.push((api_key, received, ready));
            let full = outbox.bytes >= WRITE_AHEAD || outbox.pieces.len() >= MAX_SLICES;
            if queue.is_empty() || full || muted_until.is_some() {
                outbox.write_to(&mut write_half, &broker).await?;
                last_active = tokio::time::Instant::now();
            }
        }
        outbox.write_to(&mut write_half, &broker).await?;
        if failed_authentication {
            // As Kafka (KIP-306): the close waits, so that the client reads the error before
            // it sees the connection end, whether the error went out at once or queued.
            tokio::time::sleep(Duration::from_millis(
                broker.config.connection_failed_authentication_delay_ms,
            ))
            .await;
        }
        Ok::<_, std::io::Error>(())
    }
    .await;
    reader.abort();
    let read_result = reader.await.unwrap_or(Ok(()));
    result?;
    read_result
}

/// Reply pieces waiting for the socket, and when each reply became ready.
#[derive(Default)]
struct Outbox {
    pieces: VecDeque<Bytes>,
    bytes: usize,
    /// Per reply: api key, when its frame was read, when it was ready.
    started: Vec<(i16, Instant, Instant)>,
}

impl Outbox {
    fn push(&mut self, piece: Bytes) {
        if !piece.is_empty() {
            self.bytes += piece.len();
            self.pieces.push_back(piece);
        }
    }

    /// Writes every piece with vectored writes and flushes (a TLS stream keeps the records
    /// it encrypted but could not send yet until flushed), then records the replies' send
    /// times.
    async fn write_to<W: AsyncWrite + Unpin>(
        &mut self,
        socket: &mut W,
        broker: &Broker,
    ) -> std::io::Result<()> {
        while !self.pieces.is_empty() {
            let slices: Vec<IoSlice<'_>> = self
                .pieces
                .iter()
                .take(MAX_SLICES)
                .map(|p| IoSlice::new(p))
                .collect();
            let mut written = socket.write_vectored(&slices).await?;
            drop(slices);
            if written == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            self.bytes -= written;
            while written > 0 {
                let front = self
                    .pieces
                    .front_mut()
                    .expect("written bytes came from pieces");
                if written >= front.len() {
                    written -= front.len();
                    self.pieces.pop_front();
                } else {
                    front.advance(written);
                    written = 0;
                }
            }
        }
        socket.flush().await?;
        if self.pieces.capacity() > IDLE_SLICES {
            self.pieces = VecDeque::new();
        }
        let done = Instant::now();
        let metrics = broker.request_metrics();
        for (api_key, received, ready) in self.started.drain(..) {
            metrics.record(api_key, Stage::Send, done - ready);
            metrics.record(api_key, Stage::Total, done - received);
        }
        if self.started.capacity() > IDLE_SLICES {
            self.started = Vec::new();
        }
        Ok(())
    }
}
