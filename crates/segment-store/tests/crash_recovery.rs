//! Crash tests: cut a segment at a random byte or flip a byte, then check that recovery
//! keeps exactly the intact prefix, and that what survives reopens identically.

mod common;

use common::{all_batches, leader, summary};
use proptest::prelude::*;
use segment_store::testing::BatchBuilder;
use segment_store::{BatchHeader, Log, LogConfig};

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 6 << 10,
        segment_index_bytes: 512,
        index_interval_bytes: 200,
        ..LogConfig::default()
    }
}

/// A log of `n` batches left without a clean close (reserved zero tail included), and the
/// batches as stored: (base offset, bytes).
fn crashed_log(dir: &std::path::Path, n: usize) -> Vec<(i64, Vec<u8>)> {
    let log = Log::open(dir, config(), 0, true).unwrap();
    for i in 0..n {
        let b = BatchBuilder::new(0)
            .timestamp(i as i64)
            .records(1 + i % 3, 50 + (i * 37) % 400)
            .seed(i as u8)
            .build();
        log.append(&b, &leader()).unwrap();
    }
    let batches = all_batches(&log);
    drop(log);
    batches
}

/// (path, base offset) of each segment, oldest first.
fn segment_files(dir: &std::path::Path) -> Vec<(std::path::PathBuf, i64)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .map(|p| {
            let base = p.file_stem().unwrap().to_str().unwrap().parse().unwrap();
            (p, base)
        })
        .collect();
    v.sort_by_key(|(_, b)| *b);
    v
}

/// Byte ranges of the batches in a segment file's intact content.
fn batch_spans(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut pos = 0;
    while let Some(h) =
        BatchHeader::parse(&bytes[pos..]).filter(|h| h.magic == 2 && h.batch_length > 0)
    {
        spans.push((pos, pos + h.total_size()));
        pos += h.total_size();
    }
    spans
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn cut_at_any_byte_keeps_exactly_the_whole_batches_before_it(n in 5usize..60, seg_pick in any::<prop::sample::Index>(), cut_pick in any::<prop::sample::Index>()) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c-0");
        let batches = crashed_log(&dir, n);
        let segs = segment_files(&dir);
        let (path, base) = &segs[seg_pick.index(segs.len())];
        let content = std::fs::read(path).unwrap();
        let spans = batch_spans(&content);
        let data_len = spans.last().map_or(0, |s| s.1);
        let cut = cut_pick.index(data_len + 1);
        std::fs::OpenOptions::new().write(true).open(path).unwrap().set_len(cut as u64).unwrap();
        // Batches that end at or before the cut survive; later segments are dropped. A cut
        // exactly between two batches of an older segment looks like a segment that ended
        // there (rolled segments are trimmed), so later segments stay, as in Kafka.
        let kept_in_seg = spans.iter().filter(|s| s.1 <= cut).count();
        let before_seg = batches.iter().take_while(|(b, _)| b < base).count();
        let on_boundary = cut == 0 || spans.iter().any(|s| s.1 == cut);
        let mut want: Vec<_> = batches[..before_seg + kept_in_seg].to_vec();
        if on_boundary {
            let in_seg = spans.len();
            want.extend_from_slice(&batches[before_seg + in_seg..]);
        }

        let log = Log::open(&dir, config(), 0, false).unwrap();
        prop_assert_eq!(summary(&all_batches(&log)), summary(&want));
        let last_base = segment_files(&dir).last().unwrap().1;
        let end = want.last().map_or(last_base, |(_, b)| BatchHeader::parse(b).unwrap().last_offset() + 1);
        prop_assert_eq!(log.log_end_offset(), end.max(last_base));
        // Recovery left a consistent log: appending continues and everything reopens.
        log.append(&BatchBuilder::new(0).build(), &leader()).unwrap();
        let after = all_batches(&log);
        log.close().unwrap();
        drop(log);
        let reopened = Log::open(&dir, config(), 0, true).unwrap();
        prop_assert_eq!(summary(&all_batches(&reopened)), summary(&after));
    }

    #[test]
    fn flipped_byte_truncates_from_the_damaged_batch(n in 5usize..60, seg_pick in any::<prop::sample::Index>(), at_pick in any::<prop::sample::Index>(), bit in 0u8..8) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c-0");
        let batches = crashed_log(&dir, n);
        let segs = segment_files(&dir);
        let (path, base) = &segs[seg_pick.index(segs.len())];
        let mut content = std::fs::read(path).unwrap();
        let spans = batch_spans(&content);
        // Only bytes the format protects: Kafka's v2 CRC does not cover the base offset
        // (0..8) or the leader epoch (12..16), which are rewritten on append.
        let protected: Vec<usize> = spans
            .iter()
            .flat_map(|&(s, e)| (s..e).filter(move |p| !(s..s + 8).contains(p) && !(s + 12..s + 16).contains(p)))
            .collect();
        let at = protected[at_pick.index(protected.len())];
        content[at] ^= 1 << bit;
        std::fs::write(path, &content).unwrap();
        let damaged = spans.iter().position(|&(s, e)| (s..e).contains(&at)).unwrap();
        let before_seg = batches.iter().take_while(|(b, _)| b < base).count();
        let want: Vec<_> = batches[..before_seg + damaged].to_vec();

        let log = Log::open(&dir, config(), 0, false).unwrap();
        prop_assert_eq!(summary(&all_batches(&log)), summary(&want));
        prop_assert_eq!(segment_files(&dir).last().unwrap().1, *base, "later segments deleted");
    }
}

#[test]
fn recovery_starts_at_the_recovery_point_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c-0");
    let batches = crashed_log(&dir, 60);
    let segs = segment_files(&dir);
    assert!(segs.len() >= 3);
    // Damage the first segment: below the recovery point it is trusted, not scanned.
    let mut first = std::fs::read(&segs[0].0).unwrap();
    first[100] ^= 0xff;
    std::fs::write(&segs[0].0, &first).unwrap();
    let log = Log::open(&dir, config(), segs[1].1, false).unwrap();
    assert_eq!(
        log.log_end_offset(),
        batches
            .last()
            .map(|(_, b)| BatchHeader::parse(b).unwrap().last_offset() + 1)
            .unwrap()
    );
}

#[test]
fn missing_or_garbage_index_is_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c-0");
    let log = Log::open(&dir, config(), 0, true).unwrap();
    for i in 0..80 {
        log.append(
            &BatchBuilder::new(0).timestamp(i).records(2, 120).build(),
            &leader(),
        )
        .unwrap();
    }
    let want = all_batches(&log);
    let ts = log.offset_for_timestamp(40).unwrap();
    log.close().unwrap();
    drop(log);
    let segs = segment_files(&dir);
    std::fs::remove_file(segs[0].0.with_extension("index")).unwrap();
    std::fs::write(segs[1].0.with_extension("index"), [0xffu8; 24]).unwrap();
    std::fs::write(segs[1].0.with_extension("timeindex"), [7u8; 36]).unwrap();
    let log = Log::open(&dir, config(), 0, true).unwrap();
    assert_eq!(all_batches(&log), want);
    assert_eq!(log.offset_for_timestamp(40).unwrap(), ts);
    assert!(segs[0].0.with_extension("index").exists());
}

#[test]
fn retention_roll_and_truncation_leave_a_log_that_reopens_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c-0");
    let log = Log::open(&dir, config(), 0, true).unwrap();
    for i in 0..120 {
        log.append(
            &BatchBuilder::new(0)
                .timestamp(i)
                .records(1 + (i as usize % 3), 150)
                .build(),
            &leader(),
        )
        .unwrap();
    }
    log.set_high_watermark(150);
    log.roll().unwrap();
    let mut c = log.config();
    c.retention_bytes = 12 << 10;
    c.retention_ms = -1;
    log.set_config(c);
    assert!(log.enforce_retention(0).unwrap() > 0);
    log.truncate_to(180).unwrap();
    log.append(&BatchBuilder::new(0).records(2, 10).build(), &leader())
        .unwrap();
    let state = |log: &Log| {
        (
            all_batches(log),
            log.segment_base_offsets(),
            log.log_start_offset(),
            log.log_end_offset(),
            log.max_timestamp(),
        )
    };
    let before = state(&log);
    // Unclean first (drop without close), then clean.
    drop(log);
    let log = Log::open(&dir, config(), 0, false).unwrap();
    assert_eq!(state(&log), before);
    log.close().unwrap();
    drop(log);
    let log = Log::open(&dir, config(), 0, true).unwrap();
    assert_eq!(state(&log), before);
}
