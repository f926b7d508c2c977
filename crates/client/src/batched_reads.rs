//! Socket reads in large steps for a TLS connection (the broker's listeners and this
//! client's connections).
//!
//! rustls reads its input at most 4 KiB at a time, so a stream of large requests or
//! responses over TLS costs four or more `read` system calls per 16 KiB TLS record.
//! [`BatchedReads`] sits between the socket and rustls: it reads up to [`READ_SIZE`] bytes
//! per system call and hands them to rustls from memory. Its buffer exists only while bytes
//! are arriving: it is freed whenever the socket has nothing more to give, so an idle
//! connection holds none. Writes pass straight through.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most bytes one socket read asks for.
pub const READ_SIZE: usize = 64 * 1024;

/// `inner` with its reads gathered into [`READ_SIZE`] steps.
#[derive(Debug)]
pub struct BatchedReads<S> {
    inner: S,
    /// Bytes read and not yet handed out; no capacity while idle.
    buf: BytesMut,
}

impl<S> BatchedReads<S> {
    /// Reads `inner` through a buffer of [`READ_SIZE`] bytes.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            buf: BytesMut::new(),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for BatchedReads<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.buf.is_empty() {
            if out.remaining() >= READ_SIZE {
                this.buf = BytesMut::new();
                return Pin::new(&mut this.inner).poll_read(cx, out);
            }
            // Reuses the emptied allocation; a fresh one is not zeroed.
            this.buf.clear();
            this.buf.reserve(READ_SIZE);
            match tokio_util::io::poll_read_buf(Pin::new(&mut this.inner), cx, &mut this.buf) {
                // Zero bytes: end of stream, passed on as an empty read.
                Poll::Ready(Ok(0)) => this.buf = BytesMut::new(),
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => {
                    this.buf = BytesMut::new();
                    return Poll::Pending;
                }
            }
        }
        let n = out.remaining().min(this.buf.len());
        out.put_slice(&this.buf[..n]);
        this.buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for BatchedReads<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn small_reads_see_every_byte_in_order_and_the_end() {
        let (mut near, far) = tokio::io::duplex(256 * 1024);
        let sent: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let writing = {
            let sent = sent.clone();
            tokio::spawn(async move {
                near.write_all(&sent).await.unwrap();
                near.shutdown().await.unwrap();
            })
        };
        let mut reader = BatchedReads::new(far);
        let mut received = Vec::new();
        let mut chunk = [0u8; 4096];
        let deadline = std::time::Duration::from_secs(10);
        loop {
            let n = tokio::time::timeout(deadline, reader.read(&mut chunk))
                .await
                .expect("bytes or the end within the deadline")
                .unwrap();
            if n == 0 {
                break;
            }
            assert!(n <= chunk.len());
            received.extend_from_slice(&chunk[..n]);
        }
        writing.await.unwrap();
        assert_eq!(received, sent);
        assert_eq!(reader.buf.capacity(), 0, "no buffer held at the end");
    }

    #[tokio::test]
    async fn an_idle_reader_holds_no_buffer() {
        let (mut near, far) = tokio::io::duplex(1024);
        let mut reader = BatchedReads::new(far);
        near.write_all(b"abc").await.unwrap();
        let mut two = [0u8; 2];
        reader.read_exact(&mut two).await.unwrap();
        assert_eq!(&two, b"ab");
        assert_eq!(reader.buf.len(), 1, "the rest is buffered");
        let mut one = [0u8; 1];
        reader.read_exact(&mut one).await.unwrap();
        assert_eq!(&one, b"c");
        let mut more = [0u8; 1];
        let waiting = reader.read(&mut more);
        let waited = tokio::time::timeout(std::time::Duration::from_millis(50), waiting).await;
        assert!(waited.is_err(), "nothing more was sent");
        assert_eq!(reader.buf.capacity(), 0, "freed while nothing arrives");
    }
}
