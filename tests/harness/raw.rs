//! Raw-socket helpers for tests that send what no client library would.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

/// How long a raw read waits.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A blocking connection with read and write timeouts.
pub fn connect(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connecting to strata");
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .expect("timeout");
    stream
        .set_write_timeout(Some(READ_TIMEOUT))
        .expect("timeout");
    stream
}

/// Like [`connect`], from the local address `source` (another loopback address such as
/// `127.0.0.2`). Not for use inside a tokio runtime.
pub fn connect_from(source: &str, addr: &str) -> TcpStream {
    let source: std::net::SocketAddr = format!("{source}:0").parse().expect("source address");
    let addr: std::net::SocketAddr = addr.parse().expect("server address");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("runtime");
    let stream = runtime
        .block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(source)?;
            socket.connect(addr).await?.into_std()
        })
        .unwrap_or_else(|e| panic!("connecting to {addr} from {source}: {e}"));
    stream.set_nonblocking(false).expect("blocking");
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .expect("timeout");
    stream
        .set_write_timeout(Some(READ_TIMEOUT))
        .expect("timeout");
    stream
}

/// A length-prefixed request frame.
pub fn request_frame<R: Request>(request: &R, version: i16, correlation_id: i32) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("raw-test")));
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header
        .encode(&mut buf, R::header_version(version))
        .expect("header");
    request.encode(&mut buf, version).expect("body");
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf.to_vec()
}

/// Reads one response frame (without its length prefix).
pub fn read_frame(stream: &mut TcpStream) -> std::io::Result<Bytes> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let len = i32::from_be_bytes(len) as usize;
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body)?;
    Ok(Bytes::from(body))
}

/// Sends `request` and decodes its response.
pub fn call<R: Request>(
    stream: &mut TcpStream,
    request: &R,
    version: i16,
) -> (ResponseHeader, R::Response) {
    stream
        .write_all(&request_frame(request, version, 7))
        .expect("write");
    read_response::<R>(stream, version)
}

/// Reads and decodes the next response, that of a request `R` sent at `version`.
pub fn read_response<R: Request>(
    stream: &mut TcpStream,
    version: i16,
) -> (ResponseHeader, R::Response) {
    let mut body = read_frame(stream).expect("response");
    let header = ResponseHeader::decode(&mut body, R::Response::header_version(version))
        .expect("response header");
    let response = R::Response::decode(&mut body, version).expect("response body");
    (header, response)
}

/// Kafka's `COORDINATOR_LOAD_IN_PROGRESS`: a coordinator still replaying its partitions.
pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;

/// Like [`call`], but sends again while `loading(response)` says the coordinator is still
/// loading (clients retry `COORDINATOR_LOAD_IN_PROGRESS`), for at most 10 s.
pub fn call_loaded<R: Request>(
    stream: &mut TcpStream,
    request: &R,
    version: i16,
    loading: impl Fn(&R::Response) -> bool,
) -> R::Response {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, response) = call(stream, request, version);
        if !loading(&response) || std::time::Instant::now() > deadline {
            return response;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A transactional producer's start: FindCoordinator for `transactional_id` (which creates
/// `__transaction_state`) and InitProducerId (v`version`) with `timeout_ms`, each sent again
/// while the coordinator is not ready (loading, not available, ending a transaction) for at
/// most 10 s. The producer id and epoch; panics on any other answer.
pub fn init_transactional(
    stream: &mut TcpStream,
    transactional_id: &str,
    timeout_ms: i32,
    version: i16,
) -> (i64, i16) {
    use kafka_protocol::messages::{
        FindCoordinatorRequest, InitProducerIdRequest, ProducerId, TransactionalId,
    };
    let not_ready = |code: i16| matches!(code, 14 | 15 | 51);
    let id = StrBytes::from_string(transactional_id.to_owned());
    let find = FindCoordinatorRequest::default()
        .with_key(id.clone())
        .with_key_type(1);
    let found = call_loaded(stream, &find, 3, |r| not_ready(r.error_code));
    assert_eq!(found.error_code, 0, "FindCoordinator: {found:?}");
    let init = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(id)))
        .with_transaction_timeout_ms(timeout_ms)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let init = call_loaded(stream, &init, version, |r| not_ready(r.error_code));
    assert_eq!(init.error_code, 0, "InitProducerId: {init:?}");
    (init.producer_id.0, init.producer_epoch)
}

/// Whether the server closed the connection (a read sees end of stream or a reset) within
/// the read timeout.
pub fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}
