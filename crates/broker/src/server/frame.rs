//! Kafka's framing: a 4-byte big-endian length, then that many bytes.
//!
//! Frames are cut out of one per-connection buffer, so reading a stream of large produce
//! requests reuses memory instead of allocating (and page-faulting) a fresh buffer per frame.
//! The buffer grows only as bytes arrive, at most [`MAX_RESERVE`] ahead of them, so a claimed
//! length is never allocated up front.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The smallest request: api key, api version and correlation id.
const MIN_FRAME: usize = 8;
/// Room reserved before a read when nothing says more is coming.
const READ_AHEAD: usize = 64 * 1024;
/// The most reserved ahead of bytes that have arrived.
const MAX_RESERVE: usize = 4 * 1024 * 1024;

/// Why a connection's framing failed; the connection is closed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("frame of {size} bytes is outside [{MIN_FRAME}, {max}]")]
    BadSize { size: i64, max: usize },
    #[error("connection closed inside a frame")]
    Truncated,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads length-prefixed frames from `inner`.
#[derive(Debug)]
pub(crate) struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
    max: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Frames larger than `max` bytes are refused.
    pub(crate) fn new(inner: R, max: usize) -> Self {
        Self {
            inner,
            buf: BytesMut::with_capacity(READ_AHEAD),
            max,
        }
    }

    /// The next frame; `Ok(None)` at a clean end of stream between frames.
    pub(crate) async fn next(&mut self) -> Result<Option<Bytes>, FrameError> {
        loop {
            let wanted = if self.buf.len() >= 4 {
                let size = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
                let size = usize::try_from(size)
                    .ok()
                    .filter(|s| (MIN_FRAME..=self.max).contains(s))
                    .ok_or(FrameError::BadSize {
                        size: size.into(),
                        max: self.max,
                    })?;
                if self.buf.len() >= 4 + size {
                    self.buf.advance(4);
                    return Ok(Some(self.buf.split_to(size).freeze()));
                }
                4 + size - self.buf.len()
            } else {
                READ_AHEAD
            };
            if self.buf.capacity() - self.buf.len() < wanted.min(READ_AHEAD) {
                self.buf.reserve(wanted.min(MAX_RESERVE));
            }
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(FrameError::Truncated)
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(bytes: &[u8], max: usize) -> Result<Vec<Bytes>, FrameError> {
        let mut reader = FrameReader::new(bytes, max);
        let mut frames = Vec::new();
        while let Some(frame) = reader.next().await? {
            frames.push(frame);
        }
        Ok(frames)
    }

    #[tokio::test]
    async fn reads_consecutive_frames() {
        let mut input = Vec::new();
        for body in [&b"0123456789"[..], &[7u8; 300_000][..], b"abcdefgh"] {
            input.extend_from_slice(&(body.len() as i32).to_be_bytes());
            input.extend_from_slice(body);
        }
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
}
