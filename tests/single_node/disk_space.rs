//! A small disk: a node whose data directory is a 64 MiB tmpfs with 40% of it free takes
//! writes until the disk is truly full (a segment's preallocation steps down instead of
//! failing), then answers KAFKA_STORAGE_ERROR without losing an acknowledged record, and
//! takes writes again once space is freed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use segment_store::testing::BatchBuilder;
use strata_tests::{run_bounded, Node, NodeOptions};

use crate::common::{create_topic, raw_produce, read_all};

const DISK: u64 = 64 << 20;
const KAFKA_STORAGE_ERROR: i16 = 56;
/// Records per batch and value size: batches of about 256 KiB.
const BATCH_RECORDS: usize = 256;
const VALUE_LEN: usize = 1000;

/// Free bytes of the filesystem holding `dir` (`df`).
fn free_bytes(dir: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .expect("running df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df prints the free bytes")
}

/// Fills `dir`'s filesystem with a file until about `keep` bytes are free.
fn fill_until(dir: &Path, keep: u64) -> PathBuf {
    let filler = dir.join("filler.bin");
    let mut left = free_bytes(dir).saturating_sub(keep);
    let mut writer =
        std::io::BufWriter::new(std::fs::File::create(&filler).expect("creating the filler"));
    let chunk = vec![0xa5u8; 1 << 20];
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        writer.write_all(&chunk[..n]).expect("writing the filler");
        left -= n as u64;
    }
    writer.flush().expect("flushing the filler");
    filler
}

#[test]
fn a_nearly_full_disk_takes_writes_until_full_then_refuses_cleanly_and_recovers() {
    let node = Node::start(NodeOptions {
        data_dir_bytes: Some(DISK),
        ..NodeOptions::default()
    });
    let bootstrap = node.bootstrap();
    let data = node.data_dir();
    run_bounded(Duration::from_secs(60), async {
        // Default segment.bytes (1 GiB): a segment could reserve far more than is free.
        create_topic(&bootstrap, "small-disk", 1, &[]).await;
    });
    let filler = fill_until(&data, DISK * 2 / 5);
    let batch = bytes::Bytes::from(
        BatchBuilder::new(0)
            .records(BATCH_RECORDS, VALUE_LEN)
            .build(),
    );
    // 40% of the disk free: 8 MiB goes in without a storage error.
    let mut acknowledged = 0usize;
    for i in 0..32 {
        let (code, _) = raw_produce(&bootstrap, "small-disk", 0, batch.clone());
        assert_eq!(code, 0, "batch {i} refused with 40% of the disk free");
        acknowledged += BATCH_RECORDS;
    }
    // Filling the disk with records: the first refusal is a storage error, not a crash.
    let mut refused = None;
    for _ in 0..200 {
        let (code, _) = raw_produce(&bootstrap, "small-disk", 0, batch.clone());
        if code != 0 {
            refused = Some(code);
            break;
        }
        acknowledged += BATCH_RECORDS;
    }
    let free = free_bytes(&data);
    assert_eq!(
        refused,
        Some(KAFKA_STORAGE_ERROR),
        "a full disk answers KAFKA_STORAGE_ERROR ({free} bytes free)"
    );
    // Refused only when the disk is really full: less than a few batches left, not a
    // preallocation step's worth.
    assert!(
        free < 1 << 20,
        "refused with {free} bytes still free: the reservation did not step down"
    );
    // Space freed: writes resume.
    std::fs::remove_file(&filler).expect("removing the filler");
    let resumed = (0..50).any(|_| {
        let (code, _) = raw_produce(&bootstrap, "small-disk", 0, batch.clone());
        if code != 0 {
            std::thread::sleep(Duration::from_millis(100));
        }
        code == 0
    });
    assert!(resumed, "writes did not resume once space was freed");
    acknowledged += BATCH_RECORDS;
    // Every acknowledged record reads back, in order, without gaps.
    let got = read_all(
        &bootstrap,
        "small-disk",
        1,
        acknowledged,
        Duration::from_secs(60),
    );
    assert_eq!(got.len(), acknowledged);
    for (i, record) in got.iter().enumerate() {
        assert_eq!(record.offset, i as i64, "record {i} is at the wrong offset");
    }
}
