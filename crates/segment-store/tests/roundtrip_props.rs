//! Property tests: appended batches read back byte-identical at their offsets, index
//! lookups agree with a linear scan, and reopening yields the same state.

mod common;

use common::{all_batches, leader, small_config};
use proptest::prelude::*;
use segment_store::testing::BatchBuilder;
use segment_store::{BatchHeader, Log, LogConfig};

/// What the log must hold: each batch's base offset and stored bytes.
fn expected(sent: &[Vec<u8>]) -> Vec<(i64, Vec<u8>)> {
    let mut next = 0i64;
    sent.iter()
        .map(|b| {
            let mut b = b.clone();
            b[..8].copy_from_slice(&next.to_be_bytes());
            let base = next;
            next += i64::from(BatchHeader::parse(&b).unwrap().last_offset_delta) + 1;
            (base, b)
        })
        .collect()
}

fn shape() -> impl Strategy<Value = Vec<(usize, usize)>> {
    prop::collection::vec((1usize..6, 0usize..1500), 1..80)
}

fn build(shape: &[(usize, usize)]) -> Vec<Vec<u8>> {
    shape
        .iter()
        .enumerate()
        .map(|(i, &(n, len))| {
            BatchBuilder::new(0)
                .timestamp(i as i64 * 7)
                .records(n, len)
                .seed(i as u8)
                .build()
        })
        .collect()
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 8 << 10,
        segment_index_bytes: 256,
        index_interval_bytes: 128,
        ..small_config()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn every_batch_reads_back_byte_identical_at_its_offset(shape in shape()) {
        let tmp = tempfile::tempdir().unwrap();
        let log = Log::open(&tmp.path().join("p-0"), config(), 0, true).unwrap();
        let sent = build(&shape);
        for b in &sent {
            log.append(b, &leader()).unwrap();
        }
        let want = expected(&sent);
        prop_assert_eq!(all_batches(&log), want.clone());
        // Every offset inside a batch finds that batch (index + scan vs. linear truth).
        for (base, bytes) in &want {
            let last = BatchHeader::parse(bytes).unwrap().last_offset();
            for offset in [*base, (base + last) / 2, last] {
                let r = log.read(offset, 1, i64::MAX, true).unwrap();
                prop_assert_eq!(&r.records[..], &bytes[..]);
            }
        }
        let total: usize = want.iter().map(|(_, b)| b.len()).sum();
        prop_assert_eq!(log.size_in_bytes(), total as u64);
    }

    #[test]
    fn reopen_clean_or_unclean_yields_the_same_state(shape in shape(), clean in any::<bool>()) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("p-0");
        let log = Log::open(&dir, config(), 0, true).unwrap();
        for b in &build(&shape) {
            log.append(b, &leader()).unwrap();
        }
        let state = |log: &Log| (all_batches(log), log.segment_base_offsets(), log.log_end_offset(),
            log.max_timestamp(), log.offset_for_timestamp(100).unwrap());
        let before = state(&log);
        if clean {
            log.close().unwrap();
        }
        drop(log);
        let log = Log::open(&dir, config(), 0, clean).unwrap();
        prop_assert_eq!(state(&log), before);
    }
}
