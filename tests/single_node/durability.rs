//! Acknowledged records, topics and configs outlive clean stops and kill -9.

use std::time::Duration;

use rdkafka::producer::FutureRecord;
use strata_tests::{free_port, run_bounded, strata_bin, Node};

use crate::common::{create_topic, producer, read_all};

fn produce_numbered(bootstrap: &str, topic: &str, from: usize, count: usize) {
    run_bounded(Duration::from_secs(60), async {
        let producer = producer(bootstrap, &[("acks", "all")]);
        let sends: Vec<_> = (from..from + count)
            .map(|i| {
                let fut = producer
                    .send_result(
                        FutureRecord::to(topic)
                            .key(&format!("k{}", i % 7))
                            .payload(&format!("v{i}")),
                    )
                    .expect("queue");
                async move { fut.await.expect("delivery").expect("acknowledged") }
            })
            .collect();
        for send in sends {
            send.await;
        }
    });
}

fn values(bootstrap: &str, topic: &str, partitions: i32, expected: usize) -> Vec<String> {
    let mut v: Vec<String> = read_all(
        bootstrap,
        topic,
        partitions,
        expected,
        Duration::from_secs(30),
    )
    .into_iter()
    .map(|g| String::from_utf8(g.value.unwrap()).unwrap())
    .collect();
    v.sort();
    v
}

fn expected(count: usize) -> Vec<String> {
    let mut v: Vec<String> = (0..count).map(|i| format!("v{i}")).collect();
    v.sort();
    v
}

#[test]
fn records_survive_a_clean_restart_and_stop_is_prompt() {
    let mut node = Node::start_default();
    let bootstrap = node.bootstrap();
    run_bounded(
        Duration::from_secs(20),
        create_topic(&bootstrap, "durable", 3, &[]),
    );
    produce_numbered(&bootstrap, "durable", 0, 1000);
    let took = node.stop();
    assert!(took < Duration::from_secs(5), "SIGTERM stop took {took:?}");
    assert!(node.log().contains("stopped cleanly"));
    node.restart();
    produce_numbered(&bootstrap, "durable", 1000, 500);
    assert_eq!(values(&bootstrap, "durable", 3, 1500), expected(1500));
}

#[test]
fn acknowledged_records_survive_kill_9_and_appends_continue() {
    let mut node = Node::start_default();
    let bootstrap = node.bootstrap();
    run_bounded(
        Duration::from_secs(20),
        create_topic(&bootstrap, "crash", 2, &[]),
    );
    produce_numbered(&bootstrap, "crash", 0, 2000);
    node.kill();
    node.restart();
    assert_eq!(values(&bootstrap, "crash", 2, 2000), expected(2000));
    produce_numbered(&bootstrap, "crash", 2000, 100);
    node.kill();
    node.restart();
    assert_eq!(values(&bootstrap, "crash", 2, 2100), expected(2100));
}

#[test]
fn topics_and_configs_survive_kill_9() {
    let mut node = Node::start_default();
    let bootstrap = node.bootstrap();
    run_bounded(
        Duration::from_secs(20),
        create_topic(&bootstrap, "configured", 5, &[("retention.ms", "123456")]),
    );
    node.kill();
    node.restart();
    run_bounded(Duration::from_secs(20), async {
        let mut cluster = client::Cluster::connect(&bootstrap).await.unwrap();
        let topics = cluster
            .metadata(Some(&["configured"]), false)
            .await
            .unwrap();
        assert_eq!(topics[0].partitions.len(), 5);
        let configs = cluster.describe_topic_configs("configured").await.unwrap();
        let retention = configs
            .iter()
            .find(|(k, _, _)| k == "retention.ms")
            .unwrap();
        assert_eq!(retention.1.as_deref(), Some("123456"));
        assert_eq!(retention.2, 1, "source is the topic");
    });
}

/// Several producers on one partition with `flush.messages=1`: their requests are written and
/// synced in shared groups, and every acknowledged record is there once, at consecutive
/// offsets, in each producer's order, after kill -9.
#[test]
fn concurrent_producers_grouped_into_synced_writes_lose_reorder_and_duplicate_nothing() {
    const PRODUCERS: usize = 6;
    const EACH: usize = 400;
    let mut node = Node::start_default();
    let bootstrap = node.bootstrap();
    run_bounded(
        Duration::from_secs(20),
        create_topic(&bootstrap, "grouped", 1, &[("flush.messages", "1")]),
    );
    run_bounded(Duration::from_secs(60), async {
        let runs = (0..PRODUCERS).map(|p| {
            let producer = producer(
                &bootstrap,
                &[("enable.idempotence", "true"), ("linger.ms", "0")],
            );
            async move {
                let sends: Vec<_> = (0..EACH)
                    .map(|i| {
                        producer
                            .send_result(
                                FutureRecord::<(), _>::to("grouped").payload(&format!("p{p}-{i}")),
                            )
                            .expect("queue")
                    })
                    .collect();
                for send in sends {
                    send.await.expect("delivery").expect("acknowledged");
                }
            }
        });
        futures::future::join_all(runs).await;
    });
    node.kill();
    node.restart();
    let got = read_all(
        &bootstrap,
        "grouped",
        1,
        PRODUCERS * EACH,
        Duration::from_secs(30),
    );
    assert_eq!(got.len(), PRODUCERS * EACH);
    let mut next = vec![0usize; PRODUCERS];
    for (offset, record) in got.iter().enumerate() {
        assert_eq!(record.offset, offset as i64, "offsets are consecutive");
        let value = String::from_utf8(record.value.clone().unwrap()).unwrap();
        let (p, i) = value[1..].split_once('-').unwrap();
        let (p, i): (usize, usize) = (p.parse().unwrap(), i.parse().unwrap());
        assert_eq!(i, next[p], "producer {p}'s records in order, once each");
        next[p] += 1;
    }
    assert_eq!(next, vec![EACH; PRODUCERS]);
}

/// A second `strata serve` on a data directory in use refuses to start, names the process
/// that holds it, and leaves the first one's records alone.
#[test]
fn a_second_process_on_a_data_directory_in_use_is_refused() {
    let node = Node::start_default();
    let bootstrap = node.bootstrap();
    run_bounded(
        Duration::from_secs(20),
        create_topic(&bootstrap, "owned", 1, &[]),
    );
    produce_numbered(&bootstrap, "owned", 0, 200);
    let data_dir = node.data_dir();
    let mut second = std::process::Command::new(strata_bin())
        .args(["serve", "--data-dir"])
        .arg(&data_dir)
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--voters", &format!("1@127.0.0.1:{}", free_port())])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("strata runs");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = second.kill();
            panic!("a second process on {} kept running", data_dir.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "refused: {stderr}");
    assert!(
        stderr.contains("is in use by another process") && stderr.contains("pid"),
        "the message names the holder: {stderr}"
    );
    produce_numbered(&bootstrap, "owned", 200, 100);
    assert_eq!(values(&bootstrap, "owned", 1, 300), expected(300));
}
