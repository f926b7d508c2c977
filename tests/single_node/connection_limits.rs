//! Connection limits and per-connection memory: `max.connections`, `max.connections.per.ip`
//! (with overrides), `connections.max.idle.ms`, `request.receive.timeout.ms`,
//! `queued.max.request.bytes`, and what an idle connection costs.

use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use kafka_protocol::messages::ApiVersionsRequest;
use rdkafka::producer::FutureRecord;
use strata_tests::raw::{closed_by_server, connect, connect_from, read_frame, request_frame};
use strata_tests::{run_bounded, Node, NodeOptions};
use tokio::io::AsyncWriteExt;

use crate::common::{create_topic, producer, read_all};

/// Whether the connection answers an ApiVersions request.
fn answers(stream: &mut TcpStream) -> bool {
    let frame = request_frame(&ApiVersionsRequest::default(), 3, 1);
    stream.write_all(&frame).is_ok() && read_frame(stream).is_ok()
}

/// Waits until the node serves, and until the harness's start-up probe connection is gone
/// (it would count against the limits for a moment).
fn settle(bootstrap: &str) {
    let mut probe = connect(bootstrap);
    assert!(answers(&mut probe));
    drop(probe);
    std::thread::sleep(Duration::from_millis(500));
}

/// Runs `f` on a thread and gives back how long it took and what it returned.
fn timed<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<(T, Duration)> {
    std::thread::spawn(move || {
        let started = Instant::now();
        let result = f();
        (result, started.elapsed())
    })
}

#[test]
fn connections_beyond_max_connections_per_ip_are_closed_at_once() {
    let node = Node::start(
        NodeOptions::default()
            .property("max.connections.per.ip", "3")
            .property("max.connections.per.ip.overrides", "127.0.0.3:1"),
    );
    let bootstrap = node.bootstrap();
    settle(&bootstrap);
    let mut first: Vec<TcpStream> = (0..3).map(|_| connect(&bootstrap)).collect();
    for stream in &mut first {
        assert!(answers(stream));
    }
    for _ in 0..2 {
        let mut extra = connect(&bootstrap);
        let started = Instant::now();
        assert!(
            closed_by_server(&mut extra),
            "a fourth connection from 127.0.0.1"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    for stream in &mut first {
        assert!(answers(stream), "the first connections still work");
    }
    // Other addresses have their own counts; an override sets one address's limit.
    let mut others: Vec<TcpStream> = (0..3)
        .map(|_| connect_from("127.0.0.2", &bootstrap))
        .collect();
    for stream in &mut others {
        assert!(answers(stream), "127.0.0.2 connects");
    }
    let mut overridden = connect_from("127.0.0.3", &bootstrap);
    assert!(answers(&mut overridden));
    let mut beyond_override = connect_from("127.0.0.3", &bootstrap);
    assert!(closed_by_server(&mut beyond_override));
    // A closed connection gives its place back.
    drop(first.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut again = connect(&bootstrap);
        if answers(&mut again) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no place freed by a closed connection"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn at_max_connections_a_new_connection_waits_until_one_closes() {
    let node = Node::start(NodeOptions::default().property("max.connections", "3"));
    let bootstrap = node.bootstrap();
    settle(&bootstrap);
    let mut first: Vec<TcpStream> = (0..3).map(|_| connect(&bootstrap)).collect();
    for stream in &mut first {
        assert!(answers(stream));
    }
    // KIP-402: the broker stops accepting; the connection waits in the listen backlog and
    // is neither answered nor closed.
    let mut waiting = connect(&bootstrap);
    waiting
        .write_all(&request_frame(&ApiVersionsRequest::default(), 3, 1))
        .unwrap();
    waiting
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let error = read_frame(&mut waiting).expect_err("answered beyond max.connections");
    assert!(
        matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{error}"
    );
    let from_elsewhere = timed({
        let bootstrap = bootstrap.clone();
        move || answers(&mut connect_from("127.0.0.2", &bootstrap))
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(!from_elsewhere.is_finished(), "the limit is broker-wide");
    drop(first.pop());
    waiting
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    read_frame(&mut waiting).expect("answered once a connection closed");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The one from 127.0.0.2 waits for the next place.
    drop(first.pop());
    let (answered, _) = from_elsewhere.join().unwrap();
    assert!(answered);
    for stream in &mut first {
        assert!(answers(stream));
    }
}

#[test]
fn idle_connections_are_closed_after_connections_max_idle_ms() {
    let node = Node::start(NodeOptions::default().property("connections.max.idle.ms", "1000"));
    let bootstrap = node.bootstrap();
    settle(&bootstrap);
    let mut idle = connect(&bootstrap);
    assert!(answers(&mut idle));
    let idle = timed(move || closed_by_server(&mut idle));
    // A connection that keeps sending requests stays open.
    let mut busy = connect(&bootstrap);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        assert!(answers(&mut busy), "an active connection was closed");
        std::thread::sleep(Duration::from_millis(300));
    }
    let (closed, after) = idle.join().unwrap();
    assert!(closed, "the idle connection stayed open");
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_secs(4),
        "closed after {after:?}"
    );
}

#[test]
fn a_request_that_stops_half_way_is_closed_within_request_receive_timeout() {
    let node = Node::start(NodeOptions::default().property("request.receive.timeout.ms", "1000"));
    let bootstrap = node.bootstrap();
    settle(&bootstrap);
    let stall = |sent: Vec<u8>| {
        let mut stream = connect(&bootstrap);
        stream.write_all(&sent).unwrap();
        timed(move || closed_by_server(&mut stream))
    };
    // A length and part of the body; half of a length.
    let mut partial_body = 1000i32.to_be_bytes().to_vec();
    partial_body.extend_from_slice(&[0u8; 10]);
    let stalled = [stall(partial_body), stall(vec![0, 0])];
    // A normal client is served meanwhile.
    let mut normal = connect(&bootstrap);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        assert!(answers(&mut normal));
        std::thread::sleep(Duration::from_millis(100));
    }
    for stalled in stalled {
        let (closed, after) = stalled.join().unwrap();
        assert!(closed, "a stalled request kept its connection");
        assert!(
            after >= Duration::from_millis(900) && after < Duration::from_secs(4),
            "closed after {after:?}"
        );
    }
    assert!(answers(&mut normal));
}

#[test]
fn queued_max_request_bytes_bounds_memory_when_clients_announce_huge_frames() {
    const CLIENTS: usize = 200;
    const SENT: usize = 1 << 20;
    // Defaults: socket.request.max.bytes and queued.max.request.bytes of 100 MiB.
    let node = Node::start_default();
    let bootstrap = node.bootstrap();
    settle(&bootstrap);
    run_bounded(Duration::from_secs(90), async {
        create_topic(&bootstrap, "limits-budget", 1, &[]).await;
        let before = node.rss_kib();
        // Each announces a 100 MiB produce and sends 1 MiB of it: unbounded, the broker would
        // buffer at least 200 MiB.
        let mut attackers = Vec::new();
        for _ in 0..CLIENTS {
            let bootstrap = bootstrap.clone();
            attackers.push(tokio::spawn(async move {
                let mut stream = tokio::net::TcpStream::connect(&bootstrap).await.unwrap();
                let mut sent = (100i32 << 20).to_be_bytes().to_vec();
                sent.extend_from_slice(&[0, 0, 0, 9, 0, 0, 0, 1]);
                sent.resize(4 + SENT, 7);
                // Writes to a connection the broker does not read stop once the socket
                // buffers are full.
                let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(&sent)).await;
                stream
            }));
        }
        let mut streams = Vec::new();
        for attacker in attackers {
            streams.push(attacker.await.unwrap());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let with_attackers = node.rss_kib();
        // A normal client still produces and consumes.
        let producer = producer(&bootstrap, &[]);
        for i in 0..10 {
            let value = format!("v{i}");
            producer
                .send(
                    FutureRecord::<(), _>::to("limits-budget").payload(&value),
                    Duration::from_secs(20),
                )
                .await
                .unwrap_or_else(|(e, _)| panic!("produce with attackers connected: {e}"));
        }
        let read = {
            let bootstrap = bootstrap.clone();
            tokio::task::spawn_blocking(move || {
                read_all(&bootstrap, "limits-budget", 1, 10, Duration::from_secs(20))
            })
            .await
            .unwrap()
        };
        assert_eq!(read.len(), 10);
        let growth_mib = with_attackers.max(node.rss_kib()).saturating_sub(before) / 1024;
        eprintln!("RSS growth with {CLIENTS} stalled 100 MiB frames: {growth_mib} MiB");
        assert!(
            growth_mib < 64,
            "RSS grew by {growth_mib} MiB (unbounded: at least {} MiB)",
            (CLIENTS * SENT) >> 20
        );
        drop(streams);
    });
}

#[test]
fn a_request_larger_than_queued_max_request_bytes_is_still_served() {
    const VALUE: usize = 3 << 20;
    let node = Node::start(
        NodeOptions::default()
            .property("queued.max.request.bytes", "1048576")
            .property("message.max.bytes", "8388608"),
    );
    let bootstrap = node.bootstrap();
    run_bounded(Duration::from_secs(60), async {
        create_topic(&bootstrap, "limits-large", 1, &[]).await;
        let producer = producer(
            &bootstrap,
            &[("message.max.bytes", "8388608"), ("batch.size", "8388608")],
        );
        let value = vec![b'x'; VALUE];
        for _ in 0..2 {
            producer
                .send(
                    FutureRecord::<(), _>::to("limits-large").payload(&value),
                    Duration::from_secs(20),
                )
                .await
                .unwrap_or_else(|(e, _)| panic!("a 3 MiB produce with a 1 MiB budget: {e}"));
        }
        let read = tokio::task::spawn_blocking(move || {
            read_all(&bootstrap, "limits-large", 1, 2, Duration::from_secs(20))
        })
        .await
        .unwrap();
        assert_eq!(read.len(), 2);
        assert!(read
            .iter()
            .all(|r| r.value.as_ref().map(Vec::len) == Some(VALUE)));
    });
}

#[test]
fn an_idle_connection_costs_at_most_16_kib() {
    const CONNECTIONS: usize = 2000;
    let (soft, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .expect("getrlimit");
    let wanted = (CONNECTIONS as u64 + 500).max(soft);
    assert!(
        hard >= wanted,
        "the open-file limit ({hard}) is below {wanted}"
    );
    // The node inherits the raised limit.
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, wanted, hard)
        .expect("setrlimit");
    let node = Node::start_default();
    let bootstrap = node.bootstrap();
    settle(&bootstrap);
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let before = node.rss_kib();
    let mut connections = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let mut stream = connect(&bootstrap);
        // Each has served a request, as a client's idle connection has.
        assert!(answers(&mut stream));
        connections.push(stream);
    }
    std::thread::sleep(Duration::from_secs(2));
    let after = node.rss_kib();
    let per_connection = (after.saturating_sub(before) * 1024) / CONNECTIONS as u64;
    eprintln!("{CONNECTIONS} idle connections: RSS {before} KiB -> {after} KiB, {per_connection} bytes each");
    assert!(
        per_connection <= 16 * 1024,
        "an idle connection costs {per_connection} bytes"
    );
    for stream in connections.iter_mut().step_by(97) {
        assert!(answers(stream), "an idle connection still works");
    }
    assert!(started.elapsed() < Duration::from_secs(60));
}
