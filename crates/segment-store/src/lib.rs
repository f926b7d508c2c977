//! The storage engine every partition lives in: Kafka's on-disk log layout.
//!
//! A [`LogDir`] is one data directory (a `log.dirs` entry) holding many partition logs, the
//! data-directory-wide checkpoint files and the clean-shutdown marker. A [`Log`] is one
//! partition directory `<topic>-<partition>/` of segments named by their 20-digit base offset
//! (`.log`, `.index`, `.timeindex`).
//!
//! The store knows Kafka's v2 record batch format (it validates and rewrites batch headers)
//! but nothing of sockets or Kafka APIs.
//!
//! ```
//! use segment_store::{AppendOptions, Log, LogConfig};
//! # let tmp = tempfile::tempdir().unwrap();
//! let log = Log::open(&tmp.path().join("orders-0"), LogConfig::default(), 0, true).unwrap();
//! # let batch = segment_store::testing::BatchBuilder::new(0).records(3, 10).build();
//! let info = log.append(&batch, &AppendOptions { assign_offsets: true, ..Default::default() }).unwrap();
//! assert_eq!((info.first_offset, info.last_offset), (0, 2));
//! let read = log.read(0, 1 << 20, log.log_end_offset(), true).unwrap();
//! assert_eq!(&read.records[..], &batch[..]);
//! ```
#![deny(missing_docs)]

mod batch;
mod budget;
mod checkpoint;
mod codec;
mod compaction;
mod compaction_txn;
mod config;
mod dir_lock;
mod epoch_cache;
mod error;
mod flush;
mod fsio;
mod index;
mod log;
mod log_dir;
mod log_txn;
mod maintenance;
mod mmap;
mod record_check;
mod recovery;
mod segment;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
mod txn_index;
mod txn_state;

use bytes::Bytes;

pub use batch::{compute_crc, BatchHeader, ValidatedRecords, BATCH_HEADER_LEN};
pub use budget::{
    budget, raise_open_files_limit, set_budget, usage, ResourceBudget, FILES_PER_PARTITION,
    MAPPINGS_PER_PARTITION,
};
pub use checkpoint::{
    CLEAN_SHUTDOWN_MARKER, LOG_START_OFFSET_CHECKPOINT, RECOVERY_POINT_CHECKPOINT,
    REPLICATION_OFFSET_CHECKPOINT,
};
pub use compaction::CompactionStats;
pub use config::{CleanupPolicy, LogConfig};
pub use dir_lock::{DirLock, LOCK_FILE};
pub use epoch_cache::{EpochEntry, LEADER_EPOCH_CHECKPOINT};
pub use error::{Error, Result};
pub use log::Log;
pub use log_dir::LogDir;
pub use record_check::{
    check_client_batch, CheckedBatch, ClientBatchPolicy, RecordCheckError, RecordError,
};
pub use txn_index::{
    marker_of, marker_record, AbortedTxn, MarkerType, TxnIndex, TxnMarker, TXN_INDEX_ENTRY,
};
pub use txn_state::PartitionTxns;

/// How [`Log::append`] rewrites incoming batches.
#[derive(Debug, Clone, Default)]
pub struct AppendOptions {
    /// Assign offsets from the log end offset (leader path). When false (replica path) the
    /// batches keep their offsets, which must start at the log end offset.
    pub assign_offsets: bool,
    /// Stamp this partition leader epoch into every batch.
    pub leader_epoch: Option<i32>,
    /// `message.timestamp.type=LogAppendTime`: set the timestamp type and max timestamp to
    /// this time (ms) and recompute the CRC.
    pub log_append_time: Option<i64>,
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record appended.
    pub first_offset: i64,
    /// Offset of the last record appended.
    pub last_offset: i64,
    /// Largest timestamp appended (after LogAppendTime stamping).
    pub max_timestamp: i64,
    /// Last offset of the batch holding `max_timestamp` (the first offset with
    /// LogAppendTime); records are not decoded on the append path.
    pub offset_of_max_timestamp: i64,
    /// The LogAppendTime used, or -1.
    pub log_append_time: i64,
    /// Number of batches appended.
    pub batches: usize,
    /// Number of records appended (sum of the batches' record counts).
    pub records: u64,
}

/// Batches read from one segment: whole batches only, a zero-copy slice of the mapping.
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// Whole batches, possibly empty.
    pub records: Bytes,
    /// Log start offset when the read happened.
    pub log_start_offset: i64,
    /// Log end offset when the read happened.
    pub log_end_offset: i64,
    /// High watermark when the read happened.
    pub high_watermark: i64,
}

/// Result of a time-index lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    /// The record's timestamp.
    pub timestamp: i64,
    /// The record's offset.
    pub offset: i64,
}

/// A topic name and partition number; the directory is `<topic>-<partition>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
}
