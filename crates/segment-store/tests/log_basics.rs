//! Behaviour of one log: append, read, lookups, roll, retention, truncation, reopen.

mod common;

use common::{all_batches, batch, leader, small_config};
use segment_store::testing::BatchBuilder;
use segment_store::{
    AppendOptions, BatchHeader, Error, Log, LogConfig, TimestampOffset, ValidatedRecords,
};

#[test]
fn append_assigns_offsets_and_reads_back_whole_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(&tmp.path().join("t-0"), small_config(), 0, true).unwrap();
    let a = batch(3, 10, 100, 1);
    let b = batch(2, 10, 200, 2);
    let ia = log.append(&a, &leader()).unwrap();
    let ib = log.append(&b, &leader()).unwrap();
    assert_eq!((ia.first_offset, ia.last_offset, ia.records), (0, 2, 3));
    assert_eq!((ib.first_offset, ib.last_offset), (3, 4));
    assert_eq!(log.log_end_offset(), 5);
    let r = log.read(0, 1 << 20, 5, false).unwrap();
    assert_eq!(r.records.len(), a.len() + b.len());
    assert_eq!(&r.records[..a.len()], &a[..]);
    let hb = BatchHeader::parse(&r.records[a.len()..]).unwrap();
    assert_eq!(hb.base_offset, 3);
    // Offset inside the second batch returns the whole second batch.
    let r = log.read(4, 1 << 20, 5, false).unwrap();
    assert_eq!(BatchHeader::parse(&r.records).unwrap().base_offset, 3);
}

#[test]
fn read_limits_bytes_but_returns_one_batch_when_asked_and_respects_upper_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(&tmp.path().join("t-0"), LogConfig::default(), 0, true).unwrap();
    for i in 0..4 {
        log.append(&batch(2, 100, i, i as u8), &leader()).unwrap();
    }
    let one = log.read(0, 1, 8, true).unwrap();
    assert_eq!(
        BatchHeader::parse(&one.records).unwrap().total_size(),
        one.records.len()
    );
    assert!(log.read(0, 1, 8, false).unwrap().records.is_empty());
    let upto = log.read(0, 1 << 20, 3, false).unwrap();
    assert_eq!(
        upto.records.len(),
        one.records.len(),
        "batch 2..3 crosses the upper bound"
    );
    assert!(log.read(8, 100, 8, true).unwrap().records.is_empty());
    assert!(matches!(
        log.read(9, 100, 9, true),
        Err(Error::OffsetOutOfRange { offset: 9, .. })
    ));
}

#[test]
fn replica_append_keeps_offsets_and_rejects_going_backwards() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(&tmp.path().join("t-0"), LogConfig::default(), 0, true).unwrap();
    let replica = AppendOptions::default();
    log.append(&BatchBuilder::new(0).records(5, 1).build(), &replica)
        .unwrap();
    let err = log
        .append(&BatchBuilder::new(3).build(), &replica)
        .unwrap_err();
    assert!(matches!(
        err,
        Error::NonMonotonicOffset {
            offset: 3,
            log_end: 5,
            ..
        }
    ));
    let info = log
        .append(&BatchBuilder::new(10).build(), &replica)
        .unwrap();
    assert_eq!((info.first_offset, log.log_end_offset()), (10, 11));
}

#[test]
fn invalid_batch_appends_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(&tmp.path().join("t-0"), LogConfig::default(), 0, true).unwrap();
    let good = batch(1, 5, 0, 0);
    let mut bad = batch(1, 5, 0, 0);
    let n = bad.len();
    bad[n - 1] ^= 0xff;
    let set = [good.clone(), bad].concat();
    assert!(
        matches!(log.append(&set, &leader()), Err(Error::CorruptBatch { position, .. }) if position == good.len())
    );
    assert_eq!((log.log_end_offset(), log.size_in_bytes()), (0, 0));
}

#[test]
fn leader_epoch_and_log_append_time_are_stamped_with_a_valid_crc() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(&tmp.path().join("t-0"), LogConfig::default(), 0, true).unwrap();
    let opts = AppendOptions {
        assign_offsets: true,
        leader_epoch: Some(9),
        log_append_time: Some(777),
    };
    log.append(&batch(2, 5, 1, 0), &leader()).unwrap();
    let info = log.append(&batch(3, 5, 1, 0), &opts).unwrap();
    assert_eq!(
        (
            info.max_timestamp,
            info.log_append_time,
            info.offset_of_max_timestamp
        ),
        (777, 777, 2)
    );
    let r = log.read(2, 1 << 20, 5, false).unwrap();
    let h = BatchHeader::parse(&r.records).unwrap();
    assert_eq!(
        (h.base_offset, h.partition_leader_epoch, h.max_timestamp),
        (2, 9, 777)
    );
    assert!(h.timestamp_type_is_log_append());
    assert_eq!(h.crc, segment_store::compute_crc(&r.records));
}

#[test]
fn offset_for_timestamp_finds_the_exact_record() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(&tmp.path().join("t-0"), small_config(), 0, true).unwrap();
    // 200 batches of 4 records at timestamps 10k, 10k+1, ... across several segments.
    for i in 0..200i64 {
        let ts: Vec<i64> = (0..4).map(|j| 1000 + i * 10 + j).collect();
        log.append(
            &BatchBuilder::new(0).timestamps(&ts).value_len(40).build(),
            &leader(),
        )
        .unwrap();
    }
    assert!(log.segment_count() > 2);
    assert_eq!(
        log.offset_for_timestamp(0).unwrap(),
        Some(TimestampOffset {
            timestamp: 1000,
            offset: 0
        })
    );
    assert_eq!(
        log.offset_for_timestamp(1502).unwrap(),
        Some(TimestampOffset {
            timestamp: 1502,
            offset: 202
        })
    );
    assert_eq!(
        log.offset_for_timestamp(1505).unwrap(),
        Some(TimestampOffset {
            timestamp: 1510,
            offset: 204
        })
    );
    assert_eq!(log.offset_for_timestamp(1000 + 1993 + 1).unwrap(), None);
    assert_eq!(
        log.max_timestamp(),
        Some(TimestampOffset {
            timestamp: 1000 + 1993,
            offset: 799
        })
    );
}

#[test]
fn rolls_on_segment_bytes_and_reads_across_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(&tmp.path().join("t-0"), small_config(), 0, true).unwrap();
    let mut sent = Vec::new();
    for i in 0..100u8 {
        let b = batch(1 + i as usize % 3, 300, i as i64, i);
        log.append(&b, &leader()).unwrap();
        sent.push(b);
    }
    assert!(
        log.segment_count() >= 2,
        "segments: {}",
        log.segment_count()
    );
    let got = all_batches(&log);
    assert_eq!(got.len(), 100);
    for (sent, (_, got)) in sent.iter().zip(&got) {
        assert_eq!(
            sent[12..],
            got[12..],
            "bytes after the offset field are stored as sent"
        );
    }
    let files: Vec<_> = std::fs::read_dir(log.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(files
        .iter()
        .any(|f| f.to_str() == Some("00000000000000000000.timeindex")));
    assert_eq!(files.len(), 3 * log.segment_count());
}

#[test]
fn grouped_appends_take_consecutive_offsets_and_roll_between_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(&tmp.path().join("t-0"), small_config(), 0, true).unwrap();
    // 60 sets of ~1.2 KiB: several runs of one 16 KiB segment each.
    let sent: Vec<Vec<u8>> = (0..60u8)
        .map(|i| batch(1 + i as usize % 4, 300, i as i64, i))
        .collect();
    let sets: Vec<ValidatedRecords<'_>> = sent
        .iter()
        .map(|b| ValidatedRecords::new(b).unwrap())
        .collect();
    let infos = log.append_validated(&sets, &leader()).unwrap();
    assert_eq!(infos.len(), sent.len());
    let mut next = 0;
    for (info, set) in infos.iter().zip(&sets) {
        assert_eq!(info.first_offset, next);
        next += set.offset_count();
        assert_eq!(info.last_offset, next - 1);
    }
    assert_eq!(log.log_end_offset(), next);
    assert!(
        log.segment_count() >= 3,
        "segments: {}",
        log.segment_count()
    );
    let got = all_batches(&log);
    assert_eq!(got.len(), sent.len());
    for ((sent, info), (base, got)) in sent.iter().zip(&infos).zip(&got) {
        assert_eq!(*base, info.first_offset);
        assert_eq!(sent[12..], got[12..]);
    }
}

#[test]
fn batch_larger_than_a_segment_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(&tmp.path().join("t-0"), small_config(), 0, true).unwrap();
    let big = batch(1, 20 << 10, 0, 0);
    assert!(matches!(
        log.append(&big, &leader()),
        Err(Error::BatchTooLarge { .. })
    ));
}

#[test]
fn segment_ms_rolls_by_first_batch_timestamp() {
    let tmp = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_ms: 1000,
        ..LogConfig::default()
    };
    let log = Log::open(&tmp.path().join("t-0"), config, 0, true).unwrap();
    log.append(&batch(1, 1, 10_000, 0), &leader()).unwrap();
    log.append(&batch(1, 1, 10_500, 0), &leader()).unwrap();
    assert_eq!(log.segment_count(), 1);
    log.append(&batch(1, 1, 11_001, 0), &leader()).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);
}

#[test]
fn retention_by_size_and_time_deletes_whole_segments_below_the_high_watermark() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(&tmp.path().join("t-0"), small_config(), 0, true).unwrap();
    for i in 0..100 {
        log.append(&batch(1, 300, 1_000 + i, 0), &leader()).unwrap();
    }
    let segs = log.segment_count();
    assert_eq!(
        log.enforce_retention(i64::MAX / 2).unwrap(),
        0,
        "nothing below the high watermark"
    );
    log.set_high_watermark(log.log_end_offset());
    let mut c = log.config();
    c.retention_ms = -1;
    c.retention_bytes = 20 << 10;
    log.set_config(c.clone());
    let deleted = log.enforce_retention(0).unwrap();
    assert!(
        deleted > 0 && log.size_in_bytes() >= 20 << 10 && log.segment_count() == segs - deleted
    );
    assert_eq!(log.log_start_offset(), log.segment_base_offsets()[0]);
    c.retention_bytes = -1;
    c.retention_ms = 10;
    log.set_config(c);
    let end = log.log_end_offset();
    log.enforce_retention(10_000).unwrap();
    assert_eq!(log.segment_count(), 1);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (end, end));
    assert!(log.read(end, 100, end, true).unwrap().records.is_empty());
    log.append(&batch(1, 1, 0, 0), &leader()).unwrap();
    assert_eq!(log.log_end_offset(), end + 1);
}

#[test]
fn delete_records_moves_the_log_start_up_to_the_high_watermark() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(&tmp.path().join("t-0"), small_config(), 0, true).unwrap();
    for _ in 0..50 {
        log.append(&batch(2, 300, 5, 0), &leader()).unwrap();
    }
    assert!(matches!(
        log.delete_records(10),
        Err(Error::DeleteBeyondHighWatermark { .. })
    ));
    log.set_high_watermark(60);
    assert_eq!(log.delete_records(59).unwrap(), 59);
    assert_eq!(log.delete_records(3).unwrap(), 59);
    assert!(matches!(
        log.read(58, 10, 100, true),
        Err(Error::OffsetOutOfRange { .. })
    ));
    let r = log.read(59, 10, 100, true).unwrap();
    assert_eq!(
        BatchHeader::parse(&r.records).unwrap().base_offset,
        58,
        "the batch holding 59"
    );
    let before = log.segment_count();
    let deleted = log.enforce_retention(0).unwrap();
    assert!(deleted > 0 && log.segment_count() == before - deleted);
    assert!(log.segment_base_offsets()[0] <= 59);
}

#[test]
fn truncate_to_drops_the_tail_and_appends_continue() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(&tmp.path().join("t-0"), small_config(), 0, true).unwrap();
    for i in 0..100 {
        log.append(&batch(2, 300, i, 0), &leader()).unwrap();
    }
    log.set_high_watermark(200);
    log.truncate_to(101).unwrap();
    assert_eq!(log.log_end_offset(), 100, "the batch 100..=101 goes whole");
    assert_eq!(log.high_watermark(), 100);
    assert!(log.recovery_point() <= 100);
    assert_eq!(all_batches(&log).len(), 50);
    let info = log.append(&batch(1, 1, 0, 0), &leader()).unwrap();
    assert_eq!(info.first_offset, 100);
    log.truncate_to(0).unwrap();
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.segment_count()
        ),
        (0, 0, 1)
    );
}

#[test]
fn reopen_after_close_restores_the_same_state_without_scanning() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    let log = Log::open(&dir, small_config(), 0, true).unwrap();
    for i in 0..120 {
        log.append(&batch(1 + i % 4, 200, i as i64 * 3, i as u8), &leader())
            .unwrap();
    }
    let before = (
        all_batches(&log),
        log.segment_base_offsets(),
        log.max_timestamp(),
        log.offset_for_timestamp(150).unwrap(),
    );
    log.close().unwrap();
    assert!(matches!(
        log.append(&batch(1, 1, 0, 0), &leader()),
        Err(Error::Closed { .. })
    ));
    drop(log);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let e = entry.unwrap();
        let len = e.metadata().unwrap().len();
        let name = e.file_name().into_string().unwrap();
        if name.ends_with(".index") {
            assert_eq!(len % 8, 0);
            assert!(len < 4096, "trimmed: {name} {len}");
        }
    }
    let log = Log::open(&dir, small_config(), 0, true).unwrap();
    let after = (
        all_batches(&log),
        log.segment_base_offsets(),
        log.max_timestamp(),
        log.offset_for_timestamp(150).unwrap(),
    );
    assert_eq!(before, after);
    log.append(&batch(1, 1, 0, 0), &leader()).unwrap();
}

#[test]
fn flush_advances_the_recovery_point_and_flush_messages_syncs_in_groups() {
    let tmp = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush_messages: Some(1),
        ..LogConfig::default()
    };
    let log = std::sync::Arc::new(Log::open(&tmp.path().join("t-0"), config, 0, true).unwrap());
    log.append(&batch(1, 1, 0, 0), &leader()).unwrap();
    assert_eq!(log.recovery_point(), 1);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let log = log.clone();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    log.append(&batch(1, 10, 0, 0), &leader()).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(log.recovery_point(), 101);
    assert_eq!(log.flush().unwrap(), 101);
}

#[test]
fn concurrent_readers_only_see_whole_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let log =
        std::sync::Arc::new(Log::open(&tmp.path().join("t-0"), small_config(), 0, true).unwrap());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (log, stop) = (log.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let end = log.log_end_offset();
                    if end == 0 {
                        continue;
                    }
                    let r = log.read(end / 2, 1 << 16, i64::MAX, true).unwrap();
                    let mut pos = 0;
                    while pos < r.records.len() {
                        let h = BatchHeader::parse(&r.records[pos..]).unwrap();
                        let size = h.total_size();
                        assert_eq!(
                            h.crc,
                            segment_store::compute_crc(&r.records[pos..pos + size])
                        );
                        pos += size;
                    }
                    assert_eq!(pos, r.records.len());
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for i in 0..2000 {
        log.append(&batch(1 + i % 5, 100, i as i64, i as u8), &leader())
            .unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
}
