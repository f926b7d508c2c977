//! Kafka's framing: a 4-byte big-endian length, then that many bytes.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The smallest request: api key, api version and correlation id.
const MIN_FRAME: usize = 8;
/// Buffer growth step while a large frame arrives, so a claimed length is never allocated
/// before the bytes are there.
const READ_CHUNK: usize = 256 * 1024;

/// Why a connection's framing failed; the connection is closed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("frame of {size} bytes is outside [{MIN_FRAME}, {max}]")]
    BadSize { size: usize, max: usize },
    #[error("connection closed inside a frame")]
    Truncated,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads one frame; `Ok(None)` at a clean end of stream between frames.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Option<Bytes>, FrameError> {
    let mut len = [0u8; 4];
    match reader.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let size = i32::from_be_bytes(len);
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    if !(MIN_FRAME..=max).contains(&size) {
        return Err(FrameError::BadSize { size, max });
    }
    let mut buf = BytesMut::with_capacity(size.min(READ_CHUNK));
    while buf.len() < size {
        if buf.capacity() == buf.len() {
            buf.reserve((size - buf.len()).min(READ_CHUNK));
        }
        let want = (size - buf.len()).min(buf.capacity() - buf.len());
        let mut limited = (&mut *reader).take(want as u64);
        if limited.read_buf(&mut buf).await? == 0 {
            return Err(FrameError::Truncated);
        }
    }
    Ok(Some(buf.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(bytes: &[u8], max: usize) -> Result<Option<Bytes>, FrameError> {
        let mut r = bytes;
        read_frame(&mut r, max).await
    }

    #[tokio::test]
    async fn reads_a_whole_frame() {
        let mut input = 10i32.to_be_bytes().to_vec();
        input.extend_from_slice(b"0123456789rest");
        assert_eq!(
            read(&input, 100).await.unwrap().unwrap(),
            Bytes::from_static(b"0123456789")
        );
    }

    #[tokio::test]
    async fn oversized_and_negative_lengths_are_refused_before_reading() {
        assert!(matches!(
            read(&(1i32 << 30).to_be_bytes(), 1 << 20).await,
            Err(FrameError::BadSize { .. })
        ));
        assert!(matches!(
            read(&(-5i32).to_be_bytes(), 1 << 20).await,
            Err(FrameError::BadSize { .. })
        ));
    }

    #[tokio::test]
    async fn truncated_body_is_an_error_and_empty_stream_is_clean() {
        let mut input = 100i32.to_be_bytes().to_vec();
        input.extend_from_slice(b"short");
        assert!(matches!(
            read(&input, 1000).await,
            Err(FrameError::Truncated)
        ));
        assert!(read(&[], 1000).await.unwrap().is_none());
    }
}
