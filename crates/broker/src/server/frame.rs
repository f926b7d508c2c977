//! Kafka's framing: a 4-byte big-endian length, then that many bytes.
//!
//! Frames are cut out of a per-connection buffer, so a stream of pipelined requests is read
//! with few reads and large produce requests reuse memory instead of allocating (and
//! page-faulting) a fresh buffer per frame. The buffer is given back whenever the
//! connection goes quiet between frames, so an idle connection holds only a small one.
//!
//! Before any byte of a frame's body beyond those already buffered is read, the whole frame
//! is reserved from the broker's [`Budget`] (`queued.max.request.bytes`); at most
//! [`READ_AHEAD`] bytes past the frame being read are ever buffered unreserved. The buffer
//! grows only as bytes arrive, at most [`MAX_RESERVE`] ahead of them, so a claimed length is
//! never allocated up front. A frame must arrive whole within the receive timeout of its
//! first byte (time spent waiting for budget does not count), so a client that stops
//! half-way through a request does not keep its buffer and its reservation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The smallest request: api key, api version and correlation id.
const MIN_FRAME: usize = 8;
/// Bytes read ahead of the frame being read (or of nothing, between frames); frames up to
/// this size are "small" for the [`Budget`].
pub(crate) const READ_AHEAD: usize = 64 * 1024;
/// The buffer a quiet connection waits with: small, yet it takes most requests other than
/// produce (metadata, fetches, heartbeats, commits) whole in one read.
const IDLE_BUFFER: usize = 512;
/// The most reserved ahead of bytes that have arrived.
const MAX_RESERVE: usize = 4 * 1024 * 1024;

/// Why a connection's framing failed; the connection is closed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("frame of {size} bytes is outside [{MIN_FRAME}, {max}]")]
    BadSize { size: i64, max: usize },
    #[error("connection closed inside a frame")]
    Truncated,
    #[error("request not received whole within {0:?} of its first byte")]
    Stalled(Duration),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The broker-wide budget of request bytes read off sockets and not yet handled
/// (`queued.max.request.bytes`). Frames larger than [`READ_AHEAD`] may hold at most three
/// quarters of it, so requests stuck half-way (or clients announcing huge frames) never
/// leave the small requests of other clients (metadata, fetches, heartbeats, ordinary
/// produce batches) without room. A frame larger than the large share is still served: it
/// waits until no other large frame holds budget and then holds the whole share.
#[derive(Debug)]
pub(crate) struct Budget {
    /// `None`: unbounded (Kafka's `queued.max.request.bytes` = -1).
    limits: Option<Limits>,
}

#[derive(Debug)]
struct Limits {
    total: u32,
    all: Arc<Semaphore>,
    large: Arc<Semaphore>,
    large_share: u32,
}

/// A frame's share of the [`Budget`], returned when dropped.
#[derive(Debug, Default)]
pub(crate) struct Reservation {
    _all: Option<OwnedSemaphorePermit>,
    _large: Option<OwnedSemaphorePermit>,
}

impl Budget {
    /// A budget of `bytes`; `None` for no bound.
    pub(crate) fn new(bytes: Option<usize>) -> Self {
        let limits = bytes.map(|bytes| {
            // Semaphores count in u32 and cap their permits.
            let bytes = bytes.clamp(4, Semaphore::MAX_PERMITS.min(u32::MAX as usize)) as u32;
            let large_share = bytes - bytes / 4;
            Limits {
                total: bytes,
                all: Arc::new(Semaphore::new(bytes as usize)),
                large: Arc::new(Semaphore::new(large_share as usize)),
                large_share,
            }
        });
        Self { limits }
    }

    /// Reserves `size` bytes, waiting (in arrival order) for room.
    pub(crate) async fn reserve(&self, size: usize) -> Reservation {
        let Some(limits) = &self.limits else {
            return Reservation::default();
        };
        let mut reservation = Reservation::default();
        let mut wanted = u32::try_from(size).unwrap_or(u32::MAX).min(limits.total);
        if size > READ_AHEAD {
            wanted = wanted.min(limits.large_share);
            // The semaphores are never closed.
            reservation._large = Arc::clone(&limits.large)
                .acquire_many_owned(wanted)
                .await
                .ok();
        }
        reservation._all = Arc::clone(&limits.all)
            .acquire_many_owned(wanted)
            .await
            .ok();
        reservation
    }

    /// Bytes free now (for tests and metrics); `None` when unbounded.
    #[cfg(test)]
    fn available(&self) -> Option<usize> {
        self.limits.as_ref().map(|l| l.all.available_permits())
    }
}

/// A request frame and its share of the budget.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) bytes: Bytes,
    pub(crate) reservation: Reservation,
}

/// Reads length-prefixed frames from `inner`.
#[derive(Debug)]
pub(crate) struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
    max: usize,
    budget: Arc<Budget>,
    receive_timeout: Duration,
    receiving: Arc<AtomicBool>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Frames larger than `max` bytes are refused; a frame not received whole within
    /// `receive_timeout` of its first byte fails with [`FrameError::Stalled`].
    pub(crate) fn new(
        inner: R,
        max: usize,
        budget: Arc<Budget>,
        receive_timeout: Duration,
    ) -> Self {
        Self {
            inner,
            buf: BytesMut::new(),
            max,
            budget,
            receive_timeout,
            receiving: Arc::default(),
        }
    }

    /// A flag that is set while part of a frame has been received.
    pub(crate) fn receiving(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.receiving)
    }

    /// The next frame; `Ok(None)` at a clean end of stream between frames.
    pub(crate) async fn next(&mut self) -> Result<Option<Frame>, FrameError> {
        if self.buf.is_empty() && !self.first_bytes().await? {
            return Ok(None);
        }
        self.receiving.store(true, Ordering::Relaxed);
        let mut deadline = Instant::now() + self.receive_timeout;
        let mut reservation = None;
        loop {
            let mut limit = READ_AHEAD;
            if self.buf.len() >= 4 {
                let size = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
                let size = usize::try_from(size)
                    .ok()
                    .filter(|s| (MIN_FRAME..=self.max).contains(s))
                    .ok_or(FrameError::BadSize {
                        size: size.into(),
                        max: self.max,
                    })?;
                if reservation.is_none() {
                    let waiting = Instant::now();
                    reservation = Some(self.budget.reserve(size).await);
                    deadline += waiting.elapsed();
                }
                if self.buf.len() >= 4 + size {
                    self.buf.advance(4);
                    let bytes = self.buf.split_to(size).freeze();
                    self.receiving
                        .store(!self.buf.is_empty(), Ordering::Relaxed);
                    return Ok(Some(Frame {
                        bytes,
                        reservation: reservation.unwrap_or_default(),
                    }));
                }
                limit = limit.max(4 + size);
            }
            let wanted = limit - self.buf.len();
            if self.buf.capacity() - self.buf.len() < wanted.min(READ_AHEAD) {
                self.buf.reserve(wanted.min(MAX_RESERVE));
            }
            let mut limited = (&mut self.inner).take(wanted as u64);
            match tokio::time::timeout_at(deadline, limited.read_buf(&mut self.buf)).await {
                Ok(Ok(0)) => return Err(FrameError::Truncated),
                Ok(Ok(_)) => {}
                Ok(Err(error)) => return Err(error.into()),
                Err(_) => return Err(FrameError::Stalled(self.receive_timeout)),
            }
        }
    }

    /// Between frames: reads into the buffer if bytes are already waiting; otherwise gives
    /// the buffer back and waits with a small one ([`IDLE_BUFFER`]). `false` at end of
    /// stream.
    async fn first_bytes(&mut self) -> Result<bool, FrameError> {
        if self.buf.capacity() >= MIN_FRAME {
            let polled = {
                let mut limited = (&mut self.inner).take(READ_AHEAD as u64);
                let read = limited.read_buf(&mut self.buf);
                tokio::pin!(read);
                futures::poll!(read.as_mut())
            };
            if let std::task::Poll::Ready(read) = polled {
                return Ok(read? > 0);
            }
        }
        self.buf = BytesMut::with_capacity(IDLE_BUFFER);
        Ok(self.inner.read_buf(&mut self.buf).await? > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unbounded() -> Arc<Budget> {
        Arc::new(Budget::new(None))
    }

    async fn read_all(bytes: &[u8], max: usize) -> Result<Vec<Bytes>, FrameError> {
        let mut reader = FrameReader::new(bytes, max, unbounded(), Duration::from_secs(5));
        let mut frames = Vec::new();
        while let Some(frame) = reader.next().await? {
            frames.push(frame.bytes);
        }
        Ok(frames)
    }

    fn framed(bodies: &[&[u8]]) -> Vec<u8> {
        let mut input = Vec::new();
        for body in bodies {
            input.extend_from_slice(&(body.len() as i32).to_be_bytes());
            input.extend_from_slice(body);
        }
        input
    }

    #[tokio::test]
    async fn reads_consecutive_frames() {
        let input = framed(&[&b"0123456789"[..], &[7u8; 300_000][..], b"abcdefgh"]);
        let frames = read_all(&input, 1 << 20).await.unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0], Bytes::from_static(b"0123456789"));
        assert_eq!(frames[1].len(), 300_000);
        assert_eq!(frames[2], Bytes::from_static(b"abcdefgh"));
    }

    #[tokio::test]
    async fn oversized_and_negative_lengths_are_refused_before_reading() {
        assert!(matches!(
            read_all(&(1i32 << 30).to_be_bytes(), 1 << 20).await,
            Err(FrameError::BadSize { .. })
        ));
        assert!(matches!(
            read_all(&(-5i32).to_be_bytes(), 1 << 20).await,
            Err(FrameError::BadSize { .. })
        ));
        assert!(matches!(
            read_all(&(2i32).to_be_bytes(), 1 << 20).await,
            Err(FrameError::BadSize { .. })
        ));
    }

    #[tokio::test]
    async fn truncated_body_is_an_error_and_empty_stream_is_clean() {
        let mut input = 100i32.to_be_bytes().to_vec();
        input.extend_from_slice(b"short");
        assert!(matches!(
            read_all(&input, 1000).await,
            Err(FrameError::Truncated)
        ));
        assert!(read_all(&[], 1000).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn frames_hold_their_bytes_of_the_budget_until_dropped() {
        let budget = Arc::new(Budget::new(Some(1 << 20)));
        let input = framed(&[&[1u8; 100][..], &[2u8; 200_000][..]]);
        let mut reader = FrameReader::new(
            &input[..],
            1 << 20,
            Arc::clone(&budget),
            Duration::from_secs(5),
        );
        let small = reader.next().await.unwrap().unwrap();
        assert_eq!(budget.available(), Some((1 << 20) - 100));
        let large = reader.next().await.unwrap().unwrap();
        assert_eq!(budget.available(), Some((1 << 20) - 200_100));
        drop(small);
        drop(large);
        assert_eq!(budget.available(), Some(1 << 20));
    }

    #[tokio::test]
    async fn large_frames_leave_a_quarter_of_the_budget_to_small_ones() {
        let budget = Budget::new(Some(4 << 20));
        // Larger than the whole budget: served, holding the large share.
        let huge = budget.reserve(100 << 20).await;
        assert_eq!(budget.available(), Some(1 << 20));
        let another_large = budget.reserve(READ_AHEAD + 1);
        tokio::pin!(another_large);
        assert!(futures::poll!(another_large.as_mut()).is_pending());
        let small = budget.reserve(READ_AHEAD).await;
        assert_eq!(budget.available(), Some((1 << 20) - READ_AHEAD));
        drop(huge);
        let _large = another_large.await;
        drop(small);
    }

    #[tokio::test]
    async fn a_frame_that_stops_half_way_fails_after_the_receive_timeout() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let mut reader = FrameReader::new(server, 1 << 20, unbounded(), Duration::from_millis(300));
        tokio::io::AsyncWriteExt::write_all(&mut client, &1000i32.to_be_bytes())
            .await
            .unwrap();
        let started = Instant::now();
        assert!(matches!(reader.next().await, Err(FrameError::Stalled(_))));
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(5));
    }
}
