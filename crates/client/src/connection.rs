//! One connection to one broker.

use std::collections::HashMap;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{ClientError, Result};

/// Largest response accepted.
const MAX_RESPONSE: usize = 256 << 20;
/// How long one request may take, unless the request says longer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A byte stream a [`Connection`] runs over: a TCP stream, or one wrapped in TLS
/// ([`crate::Security`]).
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send + Sync {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Transport for T {}

/// A connection with negotiated API versions.
pub struct Connection {
    addr: String,
    stream: Box<dyn Transport>,
    next_correlation_id: i32,
    versions: HashMap<i16, (i16, i16)>,
    /// Responses are read into this buffer and split off it; once a response's bytes are
    /// dropped its allocation is reused, so a long-lived fetching connection does not
    /// allocate and zero a new buffer per response.
    read_buf: BytesMut,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.addr)
            .field("next_correlation_id", &self.next_correlation_id)
            .finish_non_exhaustive()
    }
}

/// How long a TCP connect may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A TCP connection to `addr` with `TCP_NODELAY`, within [`CONNECT_TIMEOUT`].
pub async fn connect_tcp(addr: &str) -> Result<TcpStream> {
    let io = |source| ClientError::Io {
        addr: addr.to_owned(),
        source,
    };
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| ClientError::Timeout(format!("connecting to {addr}")))?
        .map_err(io)?;
    stream.set_nodelay(true).map_err(io)?;
    Ok(stream)
}

impl Connection {
    /// Connects over plain TCP and negotiates versions with ApiVersions.
    pub async fn connect(addr: &str) -> Result<Self> {
        let stream = connect_tcp(addr).await?;
        Self::over(addr, Box::new(stream)).await
    }

    /// Negotiates versions with ApiVersions over `stream`, already connected to `addr` (and,
    /// for a TLS listener, through its handshake).
    pub async fn over(addr: &str, stream: Box<dyn Transport>) -> Result<Self> {
        let mut conn = Self {
            addr: addr.to_owned(),
            stream,
            next_correlation_id: 1,
            versions: HashMap::new(),
            read_buf: BytesMut::new(),
        };
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("strata-cli"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let response = conn.send_version(request, 3, REQUEST_TIMEOUT).await?;
        ClientError::check(response.error_code, "ApiVersions", None)?;
        conn.versions = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(conn)
    }

    /// The broker address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The highest version of `R` both sides speak, at most `preferred`.
    pub fn version<R: Request>(&self, preferred: i16) -> Result<i16> {
        let unsupported = || ClientError::Unsupported {
            api: format!("{:?}", ApiKey::try_from(R::KEY).ok()),
        };
        let (min, max) = self
            .versions
            .get(&R::KEY)
            .copied()
            .ok_or_else(unsupported)?;
        let ours = <R as kafka_protocol::protocol::Message>::VERSIONS;
        let version = preferred.min(max).min(ours.max);
        if version < min.max(ours.min) {
            return Err(unsupported());
        }
        Ok(version)
    }

    /// Sends `request` at the best version up to `preferred` and waits for its response.
    pub async fn send<R: Request>(&mut self, request: R, preferred: i16) -> Result<R::Response> {
        let version = self.version::<R>(preferred)?;
        self.send_version(request, version, REQUEST_TIMEOUT).await
    }

    /// Like [`Connection::send`], allowing `extra` time beyond the default timeout (long polls).
    pub async fn send_with_timeout<R: Request>(
        &mut self,
        request: R,
        preferred: i16,
        timeout: Duration,
    ) -> Result<R::Response> {
        self.send_within(request, preferred, timeout + REQUEST_TIMEOUT)
            .await
    }

    /// Like [`Connection::send`], failing after exactly `timeout`.
    pub async fn send_within<R: Request>(
        &mut self,
        request: R,
        preferred: i16,
        timeout: Duration,
    ) -> Result<R::Response> {
        let version = self.version::<R>(preferred)?;
        self.send_version(request, version, timeout).await
    }

    /// Sends `request` at exactly `version` without reading a response (Produce acks=0).
    pub async fn send_only<R: Request>(&mut self, request: R, preferred: i16) -> Result<()> {
        let version = self.version::<R>(preferred)?;
        let (frame, _) = self.frame(&request, version)?;
        let addr = self.addr.clone();
        self.stream
            .write_all(&frame)
            .await
            .map_err(|source| ClientError::Io { addr, source })
    }

    fn frame<R: Request>(&mut self, request: &R, version: i16) -> Result<(Bytes, i32)> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("strata-cli")));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header
            .encode(&mut buf, R::header_version(version))
            .and_then(|()| request.encode(&mut buf, version))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let len = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        Ok((buf.freeze(), correlation_id))
    }

    async fn send_version<R: Request>(
        &mut self,
        request: R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response> {
        let (frame, correlation_id) = self.frame(&request, version)?;
        let addr = self.addr.clone();
        let exchange = async {
            let io = |source| ClientError::Io {
                addr: addr.clone(),
                source,
            };
            self.stream.write_all(&frame).await.map_err(io)?;
            let len = self.stream.read_i32().await.map_err(io)?;
            let len = usize::try_from(len)
                .ok()
                .filter(|l| *l <= MAX_RESPONSE && *l >= 4)
                .ok_or_else(|| {
                    ClientError::Protocol(format!("response length {len} out of range"))
                })?;
            let buf = &mut self.read_buf;
            buf.clear();
            buf.reserve(len);
            while buf.len() < len {
                let want = len - buf.len();
                if self
                    .stream
                    .read_buf(&mut buf.limit(want))
                    .await
                    .map_err(io)?
                    == 0
                {
                    return Err(io(std::io::ErrorKind::UnexpectedEof.into()));
                }
            }
            Ok::<_, ClientError>(buf.split_to(len).freeze())
        };
        let mut body = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| {
                ClientError::Timeout(format!(
                    "{:?} to {}",
                    ApiKey::try_from(R::KEY).ok(),
                    self.addr
                ))
            })??;
        let header = ResponseHeader::decode(&mut body, R::Response::header_version(version))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        if header.correlation_id != correlation_id {
            return Err(ClientError::Protocol(format!(
                "correlation id {} does not match {correlation_id}",
                header.correlation_id
            )));
        }
        let response = R::Response::decode(&mut body, version)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        if body.has_remaining() {
            tracing::debug!(remaining = body.remaining(), "response had trailing bytes");
        }
        Ok(response)
    }
}
