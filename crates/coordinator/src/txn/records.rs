//! Kafka's `__transaction_state` record formats, so that the log Strata writes there is the
//! log Kafka's tools and Kafka itself read.
//!
//! Key: TransactionLogKey version 0 (int16 version, string transactional id). Value:
//! TransactionLogValue; version 0 is classic (int16-length strings, int32-count arrays),
//! version 1 is flexible (compact strings and arrays) and carries PreviousProducerId (tag 0),
//! NextProducerId (tag 1) and ClientTransactionVersion (tag 2) as tagged fields, written only
//! when they differ from their defaults (-1, -1, 0). Strata writes version 1 and reads both.
//! A null value is a tombstone: the transactional id expired.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::state::TxnState;

/// The partitions of a transaction, by topic name.
pub type TxnPartitions = BTreeMap<String, BTreeSet<i32>>;

/// One transactional id's state as TransactionLogValue stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTransaction {
    pub producer_id: i64,
    /// The producer id of the last committed transaction (KIP-360); -1 when none.
    pub previous_producer_id: i64,
    /// The producer id handed out for the epoch after an exhausted one (KIP-890); -1 when none.
    pub next_producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    /// Empty in `Empty`, `CompleteCommit`, `CompleteAbort` and `Dead`.
    pub partitions: TxnPartitions,
    pub last_update_ms: i64,
    /// -1 until a transaction starts.
    pub start_ms: i64,
    /// 0 or 1 for the classic protocol, 2 for KIP-890's (an epoch bump per transaction).
    pub client_transaction_version: i16,
}

/// The record key of `transactional_id`.
pub fn encode_key(transactional_id: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(4 + transactional_id.len());
    buf.put_i16(0);
    put_str(&mut buf, transactional_id);
    buf.freeze()
}

/// The transactional id of a record key; `None` for a key of another version or malformed.
pub fn decode_key(key: &[u8]) -> Option<String> {
    let mut buf = key;
    if take_i16(&mut buf)? != 0 {
        return None;
    }
    let id = take_str(&mut buf)?;
    buf.is_empty().then_some(id)
}

/// The record value of `txn`, as version 1.
pub fn encode_value(txn: &StoredTransaction) -> Bytes {
    let mut buf = BytesMut::with_capacity(64 + txn.partitions.len() * 32);
    buf.put_i16(1);
    buf.put_i64(txn.producer_id);
    buf.put_i16(txn.producer_epoch);
    buf.put_i32(txn.timeout_ms);
    buf.put_i8(txn.state.id());
    if txn.state == TxnState::Empty {
        // Kafka writes no partition list for an empty transaction.
        put_uvarint(&mut buf, 0);
    } else {
        put_uvarint(&mut buf, txn.partitions.len() as u64 + 1);
        for (topic, partitions) in &txn.partitions {
            put_uvarint(&mut buf, topic.len() as u64 + 1);
            buf.put_slice(topic.as_bytes());
            put_uvarint(&mut buf, partitions.len() as u64 + 1);
            for p in partitions {
                buf.put_i32(*p);
            }
            put_uvarint(&mut buf, 0);
        }
    }
    buf.put_i64(txn.last_update_ms);
    buf.put_i64(txn.start_ms);
    let tagged: Vec<(u64, Vec<u8>)> = [
        (txn.previous_producer_id != -1)
            .then(|| (0, txn.previous_producer_id.to_be_bytes().to_vec())),
        (txn.next_producer_id != -1).then(|| (1, txn.next_producer_id.to_be_bytes().to_vec())),
        (txn.client_transaction_version != 0)
            .then(|| (2, txn.client_transaction_version.to_be_bytes().to_vec())),
    ]
    .into_iter()
    .flatten()
    .collect();
    put_uvarint(&mut buf, tagged.len() as u64);
    for (tag, data) in tagged {
        put_uvarint(&mut buf, tag);
        put_uvarint(&mut buf, data.len() as u64);
        buf.put_slice(&data);
    }
    buf.freeze()
}

/// A record value of version 0 or 1; `None` when malformed or of an unknown version or state.
pub fn decode_value(value: &[u8]) -> Option<StoredTransaction> {
    let mut buf = value;
    let version = take_i16(&mut buf)?;
    let flexible = match version {
        0 => false,
        1 => true,
        _ => return None,
    };
    let producer_id = take_i64(&mut buf)?;
    let producer_epoch = take_i16(&mut buf)?;
    let timeout_ms = take_i32(&mut buf)?;
    let state = TxnState::from_id(take_i8(&mut buf)?)?;
    let topics = if flexible {
        take_uvarint(&mut buf)?.checked_sub(1)
    } else {
        u64::try_from(take_i32(&mut buf)?).ok()
    };
    let mut partitions = TxnPartitions::new();
    for _ in 0..topics.unwrap_or(0) {
        let topic = if flexible {
            take_compact_str(&mut buf)?
        } else {
            take_str(&mut buf)?
        };
        let count = if flexible {
            take_uvarint(&mut buf)?.checked_sub(1)?
        } else {
            u64::try_from(take_i32(&mut buf)?).ok()?
        };
        if count > buf.len() as u64 / 4 {
            return None;
        }
        let ids = partitions.entry(topic).or_default();
        for _ in 0..count {
            ids.insert(take_i32(&mut buf)?);
        }
        if flexible {
            skip_tagged_fields(&mut buf, |_, _| Some(()))?;
        }
    }
    let last_update_ms = take_i64(&mut buf)?;
    let start_ms = take_i64(&mut buf)?;
    let mut txn = StoredTransaction {
        producer_id,
        previous_producer_id: -1,
        next_producer_id: -1,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        last_update_ms,
        start_ms,
        client_transaction_version: 0,
    };
    if flexible {
        skip_tagged_fields(&mut buf, |tag, mut data| {
            match tag {
                0 => txn.previous_producer_id = take_i64(&mut data)?,
                1 => txn.next_producer_id = take_i64(&mut data)?,
                2 => txn.client_transaction_version = take_i16(&mut data)?,
                _ => {}
            }
            Some(())
        })?;
    }
    Some(txn)
}

fn put_str(buf: &mut BytesMut, s: &str) {
    buf.put_i16(s.len() as i16);
    buf.put_slice(s.as_bytes());
}

fn put_uvarint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn take_i8(buf: &mut &[u8]) -> Option<i8> {
    (buf.remaining() >= 1).then(|| buf.get_i8())
}

fn take_i16(buf: &mut &[u8]) -> Option<i16> {
    (buf.remaining() >= 2).then(|| buf.get_i16())
}

fn take_i32(buf: &mut &[u8]) -> Option<i32> {
    (buf.remaining() >= 4).then(|| buf.get_i32())
}

fn take_i64(buf: &mut &[u8]) -> Option<i64> {
    (buf.remaining() >= 8).then(|| buf.get_i64())
}

fn take_uvarint(buf: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.first()?;
        buf.advance(1);
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn take_bytes<'a>(buf: &mut &'a [u8], len: usize) -> Option<&'a [u8]> {
    let (head, tail) = (buf.len() >= len).then(|| buf.split_at(len))?;
    *buf = tail;
    Some(head)
}

fn take_str(buf: &mut &[u8]) -> Option<String> {
    let len = usize::try_from(take_i16(buf)?).ok()?;
    String::from_utf8(take_bytes(buf, len)?.to_vec()).ok()
}

fn take_compact_str(buf: &mut &[u8]) -> Option<String> {
    let len = usize::try_from(take_uvarint(buf)?.checked_sub(1)?).ok()?;
    String::from_utf8(take_bytes(buf, len)?.to_vec()).ok()
}

/// Walks a tagged-field section, handing each field's tag and data to `field`.
fn skip_tagged_fields(
    buf: &mut &[u8],
    mut field: impl FnMut(u64, &[u8]) -> Option<()>,
) -> Option<()> {
    let count = take_uvarint(buf)?;
    for _ in 0..count {
        let tag = take_uvarint(buf)?;
        let len = usize::try_from(take_uvarint(buf)?).ok()?;
        field(tag, take_bytes(buf, len)?)?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ongoing() -> StoredTransaction {
        StoredTransaction {
            producer_id: 4000,
            previous_producer_id: 3999,
            next_producer_id: -1,
            producer_epoch: 7,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: [
                ("orders".to_owned(), BTreeSet::from([0, 2])),
                ("__consumer_offsets".to_owned(), BTreeSet::from([17])),
            ]
            .into(),
            last_update_ms: 1_700_000_000_500,
            start_ms: 1_700_000_000_000,
            client_transaction_version: 2,
        }
    }

    #[test]
    fn values_round_trip_with_their_tagged_fields() {
        let txn = ongoing();
        assert_eq!(decode_value(&encode_value(&txn)), Some(txn));
        let empty = StoredTransaction {
            state: TxnState::Empty,
            partitions: TxnPartitions::new(),
            previous_producer_id: -1,
            client_transaction_version: 0,
            start_ms: -1,
            ..ongoing()
        };
        let bytes = encode_value(&empty);
        // No tagged field at their defaults: the section is one zero byte at the end.
        assert_eq!(bytes.last(), Some(&0));
        assert_eq!(decode_value(&bytes), Some(empty));
    }

    #[test]
    fn keys_round_trip_and_other_versions_are_refused() {
        assert_eq!(decode_key(&encode_key("app-1")).as_deref(), Some("app-1"));
        let mut other = encode_key("app-1").to_vec();
        other[1] = 1;
        assert_eq!(decode_key(&other), None);
        assert_eq!(decode_key(&[0, 0, 0, 9, b'x']), None);
    }

    #[test]
    fn version_0_values_are_read() {
        // ProducerId 12, epoch 3, timeout 1000, PrepareCommit, topic "t" partitions [1],
        // last update 5, start 4: the classic (non-flexible) layout.
        let mut v = BytesMut::new();
        v.put_i16(0);
        v.put_i64(12);
        v.put_i16(3);
        v.put_i32(1000);
        v.put_i8(2);
        v.put_i32(1);
        put_str(&mut v, "t");
        v.put_i32(1);
        v.put_i32(1);
        v.put_i64(5);
        v.put_i64(4);
        let txn = decode_value(&v).expect("version 0 decodes");
        assert_eq!(txn.state, TxnState::PrepareCommit);
        assert_eq!(
            txn.partitions,
            [("t".to_owned(), BTreeSet::from([1]))].into()
        );
        assert_eq!(
            (txn.producer_id, txn.producer_epoch, txn.start_ms),
            (12, 3, 4)
        );
        assert_eq!(txn.previous_producer_id, -1);
    }

    #[test]
    fn malformed_values_decode_to_none_without_panicking() {
        let good = encode_value(&ongoing());
        for cut in 0..good.len() {
            assert_eq!(decode_value(&good[..cut]), None, "cut at {cut}");
        }
        let mut bad_state = good.to_vec();
        bad_state[2 + 8 + 2 + 4] = 42;
        assert_eq!(decode_value(&bad_state), None);
        // A partition count far beyond the bytes present is refused before allocating.
        let mut v = BytesMut::new();
        v.put_i16(0);
        v.put_i64(1);
        v.put_i16(0);
        v.put_i32(1);
        v.put_i8(1);
        v.put_i32(1);
        put_str(&mut v, "t");
        v.put_i32(i32::MAX);
        assert_eq!(decode_value(&v), None);
    }
}
