//! The open transactions of one partition: which producers have transactional records past
//! their last marker, from which offset. They give the last stable offset (LSO), below
//! which every transaction is decided, and turn each ABORT marker into the
//! [`AbortedTxn`] entry the segment's `.txnindex` keeps.
//!
//! Invariant: a producer has at most one open transaction, opened by its first
//! transactional batch after a marker (or ever) and closed by its next marker.

use std::collections::BTreeMap;

use crate::txn_index::{AbortedTxn, MarkerType};

/// The open transactions of a partition, by producer id: their first offset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionTxns {
    open: BTreeMap<i64, i64>,
}

impl PartitionTxns {
    /// No transaction open.
    pub fn new() -> Self {
        Self::default()
    }

    /// A transactional data batch of `producer_id` was appended from `first_offset`: its
    /// transaction is open from there, unless it already was.
    pub fn on_data(&mut self, producer_id: i64, first_offset: i64) {
        self.open.entry(producer_id).or_insert(first_offset);
    }

    /// A marker of `producer_id` was appended at `offset`: its transaction is decided. For an
    /// abort, the `.txnindex` entry (with the LSO right after the marker). A marker with no
    /// open transaction (a retried marker, or an abort of a producer that wrote nothing here)
    /// changes nothing and records nothing.
    pub fn on_marker(
        &mut self,
        producer_id: i64,
        kind: MarkerType,
        offset: i64,
    ) -> Option<AbortedTxn> {
        let first_offset = self.open.remove(&producer_id)?;
        (kind == MarkerType::Abort).then(|| AbortedTxn {
            producer_id,
            first_offset,
            last_offset: offset,
            last_stable_offset: self
                .first_unstable_offset()
                .unwrap_or(offset + 1)
                .min(offset + 1),
        })
    }

    /// The first offset of the oldest open transaction.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.open.values().copied().min()
    }

    /// The last stable offset given the high watermark: nothing at or past it may be read
    /// by a read_committed consumer.
    pub fn last_stable_offset(&self, high_watermark: i64) -> i64 {
        self.first_unstable_offset()
            .map_or(high_watermark, |fuo| fuo.min(high_watermark))
    }

    /// The open transactions, as (producer id, first offset).
    pub fn open(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.open.iter().map(|(p, o)| (*p, *o))
    }

    /// Forgets transactions opened at or after `offset` (the log was truncated there).
    /// Transactions opened before it stay open: their markers, if any were past `offset`,
    /// are gone too.
    pub fn truncate_to(&mut self, offset: i64) {
        self.open.retain(|_, first| *first < offset);
    }

    /// How many transactions are open.
    pub fn open_count(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lso_stops_at_the_oldest_open_transaction() {
        let mut txns = PartitionTxns::new();
        assert_eq!(txns.last_stable_offset(10), 10);
        txns.on_data(1, 10);
        txns.on_data(2, 12);
        txns.on_data(1, 14); // a later batch of the same transaction
        assert_eq!(txns.last_stable_offset(20), 10);
        assert_eq!(
            txns.last_stable_offset(5),
            5,
            "never past the high watermark"
        );
        assert_eq!(txns.on_marker(1, MarkerType::Commit, 16), None);
        assert_eq!(txns.last_stable_offset(20), 12);
        let aborted = txns.on_marker(2, MarkerType::Abort, 17).unwrap();
        assert_eq!(
            aborted,
            AbortedTxn {
                producer_id: 2,
                first_offset: 12,
                last_offset: 17,
                last_stable_offset: 18
            }
        );
        assert_eq!(txns.last_stable_offset(20), 20);
    }

    #[test]
    fn an_abort_records_the_lso_of_the_transactions_still_open() {
        let mut txns = PartitionTxns::new();
        txns.on_data(1, 5);
        txns.on_data(2, 7);
        let aborted = txns.on_marker(2, MarkerType::Abort, 9).unwrap();
        assert_eq!(
            aborted.last_stable_offset, 5,
            "producer 1 still holds the LSO"
        );
        // A second marker for the same producer (a retry) records nothing.
        assert_eq!(txns.on_marker(2, MarkerType::Abort, 10), None);
    }

    #[test]
    fn truncation_forgets_transactions_opened_past_it() {
        let mut txns = PartitionTxns::new();
        txns.on_data(1, 5);
        txns.on_data(2, 9);
        txns.truncate_to(8);
        assert_eq!(txns.open().collect::<Vec<_>>(), vec![(1, 5)]);
        assert_eq!(txns.open_count(), 1);
    }
}
