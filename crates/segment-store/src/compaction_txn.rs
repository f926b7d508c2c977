//! What log compaction decides about transactions, as Kafka's `Cleaner` and its
//! `CleanedTransactionMetadata` decide it. No I/O: the caller feeds batch headers in log
//! order.
//!
//! - [`TxnScan`] reads the headers below the high watermark once per pass: the first offset
//!   of the oldest transaction without a marker there (nothing from it on is cleaned, as
//!   Kafka cleans only below the last stable offset) and each producer's last batch (kept,
//!   emptied if need be, so the producer's epoch and last sequence survive).
//! - [`CleanedTxns`] follows transactions through the cleaned range in offset order: a data
//!   batch inside an aborted range (from the `.txnindex` entries) goes; a marker may go once
//!   no batch of its transaction was seen in this pass, and then only past the delete
//!   horizon, so a marker outlives its data by at least one pass (Kafka's two-pass marker
//!   removal). An ABORT marker whose data was seen keeps its `.txnindex` entry; the others'
//!   entries are dropped.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::batch::BatchHeader;
use crate::txn_index::{AbortedTxn, MarkerType, TxnMarker};

/// A producer's last batch below the high watermark.
#[derive(Debug, Clone, Copy, Default)]
struct ProducerLast {
    /// Last offset of its last data batch.
    last_data: Option<i64>,
    /// Epoch of its last batch, data or marker.
    epoch: i16,
}

/// Transactions and producers below the high watermark, from batch headers.
#[derive(Debug, Default)]
pub(crate) struct TxnScan {
    /// Producer id → first offset of its transaction without a marker yet.
    open: HashMap<i64, i64>,
    producers: HashMap<i64, ProducerLast>,
}

impl TxnScan {
    /// Takes the next batch of the log (`marker`: what a control batch says, if readable).
    pub(crate) fn on_batch(&mut self, h: &BatchHeader, marker: Option<TxnMarker>) {
        if h.producer_id < 0 {
            return;
        }
        let last = self.producers.entry(h.producer_id).or_default();
        last.epoch = h.producer_epoch;
        if h.is_control() {
            // As the producer state does: only a readable marker ends a transaction.
            if marker.is_some() {
                self.open.remove(&h.producer_id);
            }
            return;
        }
        last.last_data = Some(h.last_offset());
        if h.is_transactional() {
            self.open.entry(h.producer_id).or_insert(h.base_offset);
        }
    }

    /// Keeps the producer state of `active` producers only (those the partition's producer
    /// state still holds): the batches of the others are no longer retained for them, as
    /// Kafka's cleaner retains only `lastRecordsOfActiveProducers`. Their open
    /// transactions still bound the pass.
    pub(crate) fn retain_active(&mut self, active: &HashSet<i64>) {
        self.producers.retain(|id, _| active.contains(id));
    }

    /// The first offset of the oldest undecided transaction.
    pub(crate) fn first_unstable_offset(&self) -> Option<i64> {
        self.open.values().copied().min()
    }

    /// Whether `h` is kept (as a header without records if its records go) to preserve
    /// its producer's state: the producer's last data batch, or, for a producer with no
    /// data batch left, a marker of its latest epoch (Kafka's `isBatchLastRecordOfProducer`).
    pub(crate) fn retains(&self, h: &BatchHeader) -> bool {
        if h.producer_id < 0 {
            return false;
        }
        self.producers
            .get(&h.producer_id)
            .is_some_and(|last| match last.last_data {
                Some(offset) => !h.is_control() && h.last_offset() == offset,
                None => h.is_control() && h.producer_epoch == last.epoch,
            })
    }
}

/// An aborted transaction met in the cleaned range whose marker is still ahead.
#[derive(Debug, Clone, Copy)]
struct OngoingAbort {
    entry: AbortedTxn,
    /// Some batch of it was seen in this pass.
    seen_batch: bool,
}

/// Kafka's `CleanedTransactionMetadata`: transactions followed through one pass.
#[derive(Debug, Default)]
pub(crate) struct CleanedTxns {
    /// Aborted transactions not reached yet, by first offset.
    aborted: VecDeque<AbortedTxn>,
    ongoing_aborted: HashMap<i64, OngoingAbort>,
    /// Producers with a batch of a not aborted transaction seen since their last marker.
    ongoing_committed: HashSet<i64>,
    /// `.txnindex` entries of the ABORT markers kept so far (drained by [`Self::take_kept`]).
    kept: Vec<AbortedTxn>,
}

impl CleanedTxns {
    /// Follows the log with these aborted transactions (any order).
    pub(crate) fn new(mut aborted: Vec<AbortedTxn>) -> Self {
        aborted.sort_by_key(|e| e.first_offset);
        Self {
            aborted: aborted.into(),
            ..Self::default()
        }
    }

    fn reach(&mut self, offset: i64) {
        while let Some(e) = self.aborted.front().filter(|e| e.first_offset <= offset) {
            let entry = *e;
            self.aborted.pop_front();
            self.ongoing_aborted
                .entry(entry.producer_id)
                .or_insert(OngoingAbort {
                    entry,
                    seen_batch: false,
                });
        }
    }

    /// Takes the next data batch; true if it belongs to an aborted transaction (its
    /// records go).
    pub(crate) fn on_data_batch(&mut self, h: &BatchHeader) -> bool {
        self.reach(h.last_offset());
        if !h.is_transactional() {
            return false;
        }
        match self.ongoing_aborted.get_mut(&h.producer_id) {
            Some(abort) => {
                abort.seen_batch = true;
                true
            }
            None => {
                self.ongoing_committed.insert(h.producer_id);
                false
            }
        }
    }

    /// Takes the next control batch (`marker`: its marker, if readable); true if it may go
    /// once past the delete horizon: no batch of its transaction was seen in this pass.
    pub(crate) fn on_control_batch(&mut self, h: &BatchHeader, marker: Option<TxnMarker>) -> bool {
        self.reach(h.last_offset());
        let Some(marker) = marker else {
            // Emptied by an earlier pass: nothing left to mark. An unreadable one stays.
            return h.records_count == 0;
        };
        match marker.kind {
            MarkerType::Abort => match self.ongoing_aborted.remove(&h.producer_id) {
                Some(abort) if abort.seen_batch => {
                    self.kept.push(abort.entry);
                    false
                }
                _ => true,
            },
            MarkerType::Commit => !self.ongoing_committed.remove(&h.producer_id),
        }
    }

    /// The `.txnindex` entries of the ABORT markers kept since the last call, in log order.
    pub(crate) fn take_kept(&mut self) -> Vec<AbortedTxn> {
        std::mem::take(&mut self.kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::BatchBuilder;

    const TXN: i16 = 0x10;
    const CONTROL: i16 = 0x20;

    fn header(base: i64, records: usize, pid: i64, attributes: i16) -> BatchHeader {
        let b = BatchBuilder::new(base)
            .producer(pid, 0, if pid < 0 { -1 } else { 0 })
            .attributes(attributes)
            .records(records, 1)
            .build();
        BatchHeader::parse(&b).unwrap()
    }

    fn marker(kind: MarkerType) -> Option<TxnMarker> {
        Some(TxnMarker {
            kind,
            coordinator_epoch: 0,
        })
    }

    fn abort(pid: i64, first: i64, last: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: last + 1,
        }
    }

    #[test]
    fn the_scan_finds_the_oldest_undecided_transaction_and_producers_last_batches() {
        let mut scan = TxnScan::default();
        let data1 = header(0, 2, 1, TXN);
        let data2 = header(2, 1, 2, TXN);
        let commit1 = header(3, 1, 1, TXN | CONTROL);
        let idem = header(4, 1, 3, 0);
        let plain = header(5, 1, -1, 0);
        for (h, m) in [
            (data1, None),
            (data2, None),
            (commit1, marker(MarkerType::Commit)),
            (idem, None),
            (plain, None),
        ] {
            scan.on_batch(&h, m);
        }
        assert_eq!(scan.first_unstable_offset(), Some(2));
        assert!(scan.retains(&data1) && scan.retains(&data2) && scan.retains(&idem));
        assert!(!scan.retains(&commit1), "producer 1 has a data batch left");
        assert!(!scan.retains(&plain));
        // An emptied control batch does not end a transaction.
        let mut emptied = header(6, 1, 2, TXN | CONTROL);
        emptied.records_count = 0;
        scan.on_batch(&emptied, None);
        assert_eq!(scan.first_unstable_offset(), Some(2));
        scan.on_batch(&header(7, 1, 2, TXN | CONTROL), marker(MarkerType::Abort));
        assert_eq!(scan.first_unstable_offset(), None);
    }

    #[test]
    fn a_producer_with_only_markers_left_keeps_its_latest_epoch_marker() {
        let mut scan = TxnScan::default();
        let m = header(10, 1, 4, TXN | CONTROL);
        scan.on_batch(&m, marker(MarkerType::Commit));
        assert!(scan.retains(&m));
    }

    #[test]
    fn aborted_batches_go_and_markers_go_one_pass_after_their_data() {
        let entry = abort(1, 0, 4);
        let pass = |batches: &[(BatchHeader, Option<TxnMarker>)]| {
            let mut txns = CleanedTxns::new(vec![entry]);
            let out: Vec<bool> = batches
                .iter()
                .map(|(h, m)| match h.is_control() {
                    true => txns.on_control_batch(h, *m),
                    false => txns.on_data_batch(h),
                })
                .collect();
            (out, txns.take_kept())
        };
        let aborted = header(0, 2, 1, TXN);
        let committed = header(2, 1, 2, TXN);
        let idem = header(3, 1, 3, 0);
        let abort_marker = (header(4, 1, 1, TXN | CONTROL), marker(MarkerType::Abort));
        let commit_marker = (header(5, 1, 2, TXN | CONTROL), marker(MarkerType::Commit));
        let first = [
            (aborted, None),
            (committed, None),
            (idem, None),
            abort_marker,
            commit_marker,
        ];
        let (out, kept) = pass(&first);
        assert_eq!(out, vec![true, false, false, false, false]);
        assert_eq!(kept, vec![entry], "its data was still there");
        // Next pass: the aborted data is gone, so is the committed batch (compacted away).
        let (out, kept) = pass(&[(idem, None), abort_marker, commit_marker]);
        assert_eq!(out, vec![false, true, true]);
        assert!(kept.is_empty());
        // An emptied control batch may go; an unreadable one stays.
        let mut txns = CleanedTxns::new(vec![]);
        let mut emptied = header(6, 1, 1, TXN | CONTROL);
        emptied.records_count = 0;
        assert!(txns.on_control_batch(&emptied, None));
        assert!(!txns.on_control_batch(&header(7, 1, 1, TXN | CONTROL), None));
    }

    #[test]
    fn another_producers_batches_inside_an_aborted_range_stay() {
        let mut txns = CleanedTxns::new(vec![abort(1, 0, 3), abort(1, 10, 12)]);
        assert!(txns.on_data_batch(&header(0, 1, 1, TXN)));
        assert!(!txns.on_data_batch(&header(1, 1, 2, TXN)));
        assert!(!txns.on_data_batch(&header(2, 1, -1, 0)));
        assert!(!txns.on_control_batch(&header(3, 1, 1, TXN | CONTROL), marker(MarkerType::Abort)));
        // Producer 1's next transaction, committed, before its second abort.
        assert!(!txns.on_data_batch(&header(5, 1, 1, TXN)));
        assert!(!txns.on_control_batch(&header(6, 1, 1, TXN | CONTROL), marker(MarkerType::Commit)));
        assert!(txns.on_data_batch(&header(10, 2, 1, TXN)));
        assert!(!txns.on_control_batch(&header(12, 1, 1, TXN | CONTROL), marker(MarkerType::Abort)));
        assert_eq!(txns.take_kept(), vec![abort(1, 0, 3), abort(1, 10, 12)]);
    }
}
