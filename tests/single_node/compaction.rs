//! Log compaction of compressed topics, seen by a librdkafka consumer reading from the start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use segment_store::BatchHeader;
use strata_tests::{run_bounded, Node, NodeOptions};

use crate::common::{create_topic, producer};

/// Sends `records` (key, value; `None` is a tombstone) all at once, so librdkafka batches
/// them; returns the offset of the last one.
async fn send_all(
    producer: &FutureProducer,
    topic: &str,
    records: &[(String, Option<String>)],
) -> i64 {
    let sends: Vec<_> = records
        .iter()
        .map(|(k, v)| {
            let mut record = FutureRecord::to(topic).key(k.as_str());
            if let Some(v) = v {
                record = record.payload(v.as_str());
            }
            producer.send_result(record).expect("queue")
        })
        .collect();
    let mut last = -1;
    for send in sends {
        let delivery = send.await.expect("delivery").expect("acknowledged");
        last = last.max(delivery.offset);
    }
    last
}

/// Reads partition 0 of `topic` from the beginning up to `last` (inclusive) with a fresh
/// librdkafka consumer: (offset, key, value) in order.
fn read_to(bootstrap: &str, topic: &str, last: i64) -> Vec<(i64, String, Option<String>)> {
    read_timestamps(bootstrap, topic, last)
        .into_iter()
        .map(|(offset, key, value, _)| (offset, key, value))
        .collect()
}

/// The partition directory `<topic>-0` under the node's data directory.
pub(crate) fn partition_dir(data: &Path, topic: &str) -> PathBuf {
    let name = format!("{topic}-0");
    let mut stack = vec![data.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("data directory").flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            if entry.file_name().to_str() == Some(name.as_str()) {
                return path;
            }
            stack.push(path);
        }
    }
    panic!("no {name} under {}", data.display());
}

/// Sizes of the `.log` files of a partition directory, by base offset.
pub(crate) fn segment_sizes(dir: &Path) -> BTreeMap<i64, u64> {
    std::fs::read_dir(dir)
        .expect("partition directory")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let base = name.strip_suffix(".log")?.parse().ok()?;
            Some((base, e.metadata().ok()?.len()))
        })
        .collect()
}

fn text_value(key: &str, round: u32) -> String {
    format!("{key}-round-{round}-{}", "compressible ".repeat(12))
}

/// Values that barely compress, so the filler rolls segments.
fn noise(i: u32) -> String {
    let mut x = u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..24)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            format!("{:016x}", x)[..8].to_owned()
        })
        .collect()
}

/// A node whose log cleaner looks for work every 200 ms.
pub(crate) fn cleaner_node() -> Node {
    Node::start(NodeOptions::default().property("log.cleaner.backoff.ms", "200"))
}

/// Creates `topic`, one partition compacted in 4096-byte segments, with the given
/// `min.cleanable.dirty.ratio` and `delete.retention.ms`.
pub(crate) async fn create_compacted(
    bootstrap: &str,
    topic: &str,
    dirty_ratio: &str,
    delete_retention_ms: &str,
) {
    create_topic(
        bootstrap,
        topic,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "4096"),
            ("min.cleanable.dirty.ratio", dirty_ratio),
            ("delete.retention.ms", delete_retention_ms),
        ],
    )
    .await;
}

/// The case: on an lz4 (and a zstd) topic, superseded values inside compressed
/// batches are removed, and a key deleted with a tombstone does not come back with its old
/// value once the tombstone itself is dropped after `delete.retention.ms`. Small cleaned
/// segments are merged, so no emptied segment is left behind.
#[test]
fn compressed_topics_are_compacted_and_deleted_keys_stay_deleted() {
    let node = cleaner_node();
    let bootstrap = node.bootstrap();
    for (codec, idempotent) in [("lz4", "true"), ("zstd", "false")] {
        let topic = format!("compacted-{codec}");
        let mut expected: BTreeMap<String, String> = BTreeMap::new();
        let mut last = -1;
        run_bounded(Duration::from_secs(60), async {
            create_compacted(&bootstrap, &topic, "0.01", "1000").await;
            let compressed = producer(
                &bootstrap,
                &[
                    ("compression.type", codec),
                    ("linger.ms", "100"),
                    // Batches stay below segment.bytes (larger ones are refused).
                    ("batch.size", "3000"),
                    ("enable.idempotence", idempotent),
                ],
            );
            let plain = producer(&bootstrap, &[("compression.type", "none")]);
            let key = |i: u32| format!("key-{i:02}");
            // Two rounds of 30 keys in compressed batches.
            for round in 1..=2 {
                let records: Vec<_> = (0..30)
                    .map(|i| (key(i), Some(text_value(&key(i), round))))
                    .collect();
                send_all(&compressed, &topic, &records).await;
                for (k, v) in records {
                    expected.insert(k, v.unwrap());
                }
            }
            // Tombstones: keys 0-4 through the compressing producer, 5-9 uncompressed.
            let deletes = |range: std::ops::Range<u32>| -> Vec<(String, Option<String>)> {
                range.map(|i| (key(i), None)).collect()
            };
            send_all(&compressed, &topic, &deletes(0..5)).await;
            send_all(&plain, &topic, &deletes(5..10)).await;
            // A third value for keys 15-19, uncompressed.
            let third: Vec<_> = (15..20)
                .map(|i| (key(i), Some(text_value(&key(i), 3))))
                .collect();
            send_all(&plain, &topic, &third).await;
            for i in 0..10 {
                expected.remove(&key(i));
            }
            for (k, v) in third {
                expected.insert(k, v.unwrap());
            }
            // Filler with keys of its own rolls the segments above.
            let filler: Vec<_> = (0..40)
                .map(|i| (format!("filler-{i:02}"), Some(noise(i))))
                .collect();
            last = send_all(&compressed, &topic, &filler).await;
            for (k, v) in filler {
                expected.insert(k, v.unwrap());
            }
        });
        // Wait for the cleaner: until a reader from the start sees each live key once, with
        // its latest value, and nothing of a deleted key.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = read_to(&bootstrap, &topic, last);
            let offsets: Vec<i64> = got.iter().map(|g| g.0).collect();
            assert!(
                offsets.windows(2).all(|w| w[0] < w[1]),
                "{codec}: offsets in order"
            );
            let mut seen: BTreeMap<String, String> = BTreeMap::new();
            let mut exact = true;
            for (_, k, v) in &got {
                match v {
                    Some(v) => exact &= seen.insert(k.clone(), v.clone()).is_none(),
                    None => exact = false,
                }
            }
            if exact && seen == expected {
                break;
            }
            if Instant::now() > deadline {
                let deleted: Vec<_> = got
                    .iter()
                    .filter(|(_, k, _)| !expected.contains_key(k))
                    .collect();
                panic!(
                    "{codec}: the log still holds {} records for {} live keys; of deleted keys: {deleted:?}",
                    got.len(),
                    expected.len(),
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        // Emptied segments were merged into their neighbours, not left behind: no sealed
        // segment is empty, and no two adjacent ones would fit in one.
        let sizes: Vec<(i64, u64)> = segment_sizes(&partition_dir(&node.data_dir(), &topic))
            .into_iter()
            .collect();
        let sealed = &sizes[..sizes.len() - 1];
        assert!(!sealed.is_empty(), "{codec}: nothing sealed: {sizes:?}");
        assert!(
            sealed.iter().all(|(_, size)| *size > 0),
            "{codec}: empty sealed segments: {sizes:?}"
        );
        assert!(
            sealed.windows(2).all(|w| w[0].1 + w[1].1 > 4096),
            "{codec}: adjacent segments left unmerged: {sizes:?}"
        );
    }
}

/// KIP-534 as a client sees it: the cleaner keeps a tombstone with a delete horizon written
/// into its batch (attributes bit 6, the horizon as base timestamp, record timestamp deltas
/// moved to it). Before `delete.retention.ms` (an hour here) the tombstone is still read, the
/// value it deletes is not, and librdkafka reads every record with the timestamp it was
/// produced with.
#[test]
fn a_kept_tombstone_carries_its_delete_horizon_and_records_keep_their_timestamps() {
    const TOPIC: &str = "horizon";
    let node = cleaner_node();
    let bootstrap = node.bootstrap();
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
        - 60_000;
    // (key, value, timestamp): a value, its tombstone, then filler that rolls segments.
    let mut sent: Vec<(String, Option<String>, i64)> = vec![
        ("k0".into(), Some("old".into()), t0),
        ("k0".into(), None, t0 + 7),
    ];
    sent.extend((0..40).map(|i| (format!("f{i:02}"), Some(noise(i)), t0 + 100 + i64::from(i))));
    let mut last = -1;
    let mut offsets = Vec::new();
    run_bounded(Duration::from_secs(60), async {
        create_compacted(&bootstrap, TOPIC, "0", "3600000").await;
        let p = producer(&bootstrap, &[("batch.size", "1000")]);
        for (k, v, ts) in &sent {
            let mut record = FutureRecord::to(TOPIC).key(k.as_str()).timestamp(*ts);
            if let Some(v) = v {
                record = record.payload(v.as_str());
            }
            let delivery = p
                .send(record, Duration::from_secs(10))
                .await
                .expect("acknowledged");
            offsets.push(delivery.offset);
            last = delivery.offset;
        }
    });
    let dir = partition_dir(&node.data_dir(), TOPIC);
    let tombstone_offset = offsets[1];
    let deadline = Instant::now() + Duration::from_secs(40);
    let horizon = loop {
        if let Some(h) = horizon_of(&dir, tombstone_offset) {
            break h;
        }
        assert!(
            Instant::now() < deadline,
            "the tombstone's batch never got a delete horizon; segments {:?}, batches {:?}",
            segment_sizes(&dir),
            batches_on_disk(&dir)
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let now = t0 + 60_000;
    assert!(
        (now + 3_600_000 - 5_000..now + 3_600_000 + 120_000).contains(&horizon),
        "horizon {horizon} is not about now + delete.retention.ms"
    );
    let read = read_timestamps(&bootstrap, TOPIC, last);
    let expected: Vec<(i64, String, Option<String>, i64)> = sent
        .iter()
        .zip(&offsets)
        .skip(1) // "old" is superseded by the tombstone
        .map(|((k, v, ts), o)| (*o, k.clone(), v.clone(), *ts))
        .collect();
    assert_eq!(read, expected);
}

/// Calls `f` with the header and the bytes (from the header on) of every whole v2 batch in
/// the `.log` files of a partition directory. A segment replaced meanwhile is read as empty.
pub(crate) fn for_each_batch(
    dir: &Path,
    mut f: impl FnMut(&BatchHeader, &[u8]),
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().into_string().unwrap_or_default();
        if !name.ends_with(".log") {
            continue;
        }
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        let mut rest = &bytes[..];
        while let Some(h) = BatchHeader::parse(rest) {
            if h.magic != 2 || h.total_size() > rest.len() || h.total_size() == 0 {
                break;
            }
            f(&h, rest);
            rest = &rest[h.total_size()..];
        }
    }
    Ok(())
}

/// (base offset, last offset, attributes, base timestamp) of every batch on disk.
fn batches_on_disk(dir: &Path) -> Vec<(i64, i64, i16, i64)> {
    let mut out = Vec::new();
    for_each_batch(dir, |h, _| {
        out.push((
            h.base_offset,
            h.last_offset(),
            h.attributes,
            h.base_timestamp,
        ));
    })
    .expect("partition directory");
    out.sort();
    out
}

/// The delete horizon of the on-disk batch holding `offset`, if it has one.
fn horizon_of(dir: &Path, offset: i64) -> Option<i64> {
    let mut found = None;
    for_each_batch(dir, |h, _| {
        if h.base_offset <= offset && offset <= h.last_offset() {
            found.get_or_insert(h.delete_horizon_ms());
        }
    })
    .ok()?;
    found.flatten()
}

/// Like [`read_to`], with each record's timestamp.
fn read_timestamps(
    bootstrap: &str,
    topic: &str,
    last: i64,
) -> Vec<(i64, String, Option<String>, i64)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "strata-tests-compaction")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("creating a consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .expect("assignment");
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut got = Vec::new();
    while Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.expect("consumer error");
        let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8(b.to_vec()).expect("utf-8"));
        got.push((
            message.offset(),
            text(message.key()).expect("a key"),
            text(message.payload()),
            message.timestamp().to_millis().expect("a timestamp"),
        ));
        if message.offset() >= last {
            return got;
        }
    }
    panic!("never read up to offset {last} of {topic}; read {got:?}");
}
