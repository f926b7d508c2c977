//! The data directory: checkpoints, clean-shutdown marker, fast clean open, deletion.

mod common;

use std::time::{Duration, Instant};

use common::{all_batches, batch, leader, summary};
use segment_store::{
    LogConfig, LogDir, TopicPartition, CLEAN_SHUTDOWN_MARKER, RECOVERY_POINT_CHECKPOINT,
};

#[test]
fn shutdown_writes_checkpoints_and_marker_and_reopen_restores_offsets() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = LogDir::open(tmp.path(), LogConfig::default()).unwrap();
    let tp = TopicPartition::new("orders-eu", 3);
    let log = dir.get_or_create(&tp, LogConfig::default()).unwrap();
    for i in 0..10 {
        log.append(&batch(2, 10, i, 0), &leader()).unwrap();
    }
    log.set_high_watermark(12);
    log.delete_records(4).unwrap();
    std::fs::create_dir(tmp.path().join("metadata")).unwrap();
    std::fs::create_dir(tmp.path().join("x-0.0123abc-delete")).unwrap();
    dir.shutdown().unwrap();
    drop(dir);
    assert!(tmp.path().join(CLEAN_SHUTDOWN_MARKER).exists());
    let text = std::fs::read_to_string(tmp.path().join(RECOVERY_POINT_CHECKPOINT)).unwrap();
    assert_eq!(text, "0\n1\norders-eu 3 20\n");

    let dir = LogDir::open(tmp.path(), LogConfig::default()).unwrap();
    assert!(!tmp.path().join(CLEAN_SHUTDOWN_MARKER).exists());
    assert!(!tmp.path().join("x-0.0123abc-delete").exists());
    assert_eq!(dir.logs().len(), 1);
    let log = dir.get(&tp).unwrap();
    assert_eq!(
        (
            log.log_start_offset(),
            log.high_watermark(),
            log.log_end_offset(),
            log.recovery_point()
        ),
        (4, 12, 20, 20)
    );
}

#[test]
fn unclean_stop_recovers_torn_tail_through_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let tp = TopicPartition::new("t", 0);
    let dir = LogDir::open(tmp.path(), LogConfig::default()).unwrap();
    let log = dir.get_or_create(&tp, LogConfig::default()).unwrap();
    for i in 0..5 {
        log.append(&batch(1, 100, i, 0), &leader()).unwrap();
    }
    let want = all_batches(&log);
    let seg = log.dir().join("00000000000000000000.log");
    drop((log, dir));
    // A torn sixth batch after the reserved, zeroed tail began.
    let mut bytes = std::fs::read(&seg).unwrap();
    let data: usize = want.iter().map(|(_, b)| b.len()).sum();
    bytes[data..data + 30].copy_from_slice(&batch(1, 100, 9, 0)[..30]);
    std::fs::write(&seg, &bytes).unwrap();
    let dir = LogDir::open(tmp.path(), LogConfig::default()).unwrap();
    let log = dir.get(&tp).unwrap();
    assert_eq!(summary(&all_batches(&log)), summary(&want));
    assert_eq!(
        std::fs::metadata(&seg).unwrap().len() as usize,
        data,
        "torn and reserved tail truncated"
    );
}

#[test]
fn delete_removes_the_directory_while_readers_keep_their_slices() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = LogDir::open(tmp.path(), LogConfig::default()).unwrap();
    let tp = TopicPartition::new("gone", 1);
    let log = dir.get_or_create(&tp, LogConfig::default()).unwrap();
    let b = batch(3, 1000, 0, 7);
    log.append(&b, &leader()).unwrap();
    let held = log.read(0, 1 << 20, 3, true).unwrap().records;
    dir.delete(&tp).unwrap();
    assert!(dir.get(&tp).is_none());
    let names: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.to_str().unwrap().starts_with("gone-1")),
        "{names:?}"
    );
    assert_eq!(&held[..], &b[..]);
    assert!(log.append(&b, &leader()).is_err());
}

#[test]
fn flush_ms_is_served_by_the_directory_flusher() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = LogDir::open(tmp.path(), LogConfig::default()).unwrap();
    let config = LogConfig {
        flush_ms: Some(50),
        ..LogConfig::default()
    };
    let log = dir
        .get_or_create(&TopicPartition::new("f", 0), config)
        .unwrap();
    log.append(&batch(1, 1, 0, 0), &leader()).unwrap();
    let t = Instant::now();
    while log.recovery_point() < 1 {
        assert!(t.elapsed() < Duration::from_secs(5), "flusher never synced");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn ten_thousand_partitions_open_quickly_after_a_clean_shutdown() {
    // Creating and removing 30,000 files can take tens of seconds on a busy ext4 (and is
    // not what is measured), so the test runs on tmpfs when there is one;
    // STRATA_TEST_TMPDIR overrides it (benches/RESULTS.md has both figures).
    let base = std::env::var_os("STRATA_TEST_TMPDIR")
        .map(std::path::PathBuf::from)
        .or_else(|| Some(std::path::PathBuf::from("/dev/shm")).filter(|p| p.is_dir()))
        .unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::tempdir_in(base).unwrap();
    let n = 10_000;
    let t0 = Instant::now();
    {
        let dir = LogDir::open(tmp.path(), LogConfig::default()).unwrap();
        let b = batch(1, 20, 1, 0);
        for p in 0..n {
            let log = dir
                .get_or_create(&TopicPartition::new("many-parts", p), LogConfig::default())
                .unwrap();
            if p % 10 == 0 {
                log.append(&b, &leader()).unwrap();
            }
        }
        eprintln!("created in {:?}", t0.elapsed());
        dir.shutdown().unwrap();
        eprintln!("shut down in {:?}", t0.elapsed());
    }
    let start = Instant::now();
    let dir = LogDir::open(tmp.path(), LogConfig::default()).unwrap();
    let took = start.elapsed();
    eprintln!("opened {n} partitions after a clean shutdown in {took:?}");
    assert_eq!(dir.logs().len(), n as usize);
    assert_eq!(
        dir.get(&TopicPartition::new("many-parts", 20))
            .unwrap()
            .log_end_offset(),
        1
    );
    let bound = if cfg!(debug_assertions) { 3 } else { 1 };
    assert!(took < Duration::from_secs(bound), "took {took:?}");
}
