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
//! API CONTRACT STUB: bodies are `todo!()` until the implementation lands; signatures are the
//! contract the broker codes against.
#![allow(clippy::todo, unused_variables, missing_docs)]

use std::path::{Path, PathBuf};

use bytes::Bytes;

/// Length of a v2 record batch header (base offset through records count).
pub const BATCH_HEADER_LEN: usize = 61;

/// Errors of the storage engine; each says what failed and where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("io error on {path}: {source}")]
    Io { path: PathBuf, #[source] source: std::io::Error },
    #[error("corrupt record batch at position {position} of the records set: {reason}")]
    CorruptBatch { position: usize, reason: &'static str },
    #[error("record batch magic {magic} at position {position} is not 2")]
    UnsupportedMagic { position: usize, magic: i8 },
    #[error("record batch of {size} bytes exceeds the segment size {segment_bytes}")]
    BatchTooLarge { size: usize, segment_bytes: u64 },
    #[error("offset {offset} is out of range [{log_start}, {log_end}] in {path}")]
    OffsetOutOfRange { path: PathBuf, offset: i64, log_start: i64, log_end: i64 },
    #[error("non-monotonic offsets appending at {offset} to {path}, log end is {log_end}")]
    NonMonotonicOffset { path: PathBuf, offset: i64, log_end: i64 },
    #[error("invalid partition directory name {0}")]
    InvalidDirName(String),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// What happens to old data: deletion by retention, or compaction by key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CleanupPolicy {
    #[default]
    Delete,
    Compact,
    CompactDelete,
}

/// Per-log configuration, named after Kafka's topic configs.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes` (1 GiB).
    pub segment_bytes: u64,
    /// `segment.ms` (7 days).
    pub segment_ms: i64,
    /// `segment.index.bytes` (10 MiB).
    pub segment_index_bytes: u64,
    /// `index.interval.bytes` (4096).
    pub index_interval_bytes: u64,
    /// `retention.ms` (7 days); -1 keeps forever.
    pub retention_ms: i64,
    /// `retention.bytes` (-1, unlimited).
    pub retention_bytes: i64,
    /// `flush.messages`: fsync after this many records; `None` (default) leaves it to the OS.
    pub flush_messages: Option<u64>,
    /// `flush.ms`: fsync when the oldest unflushed append is this old; `None` by default.
    pub flush_ms: Option<u64>,
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// `delete.retention.ms` (1 day): how long compaction keeps tombstones.
    pub delete_retention_ms: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            segment_index_bytes: 10 << 20,
            index_interval_bytes: 4096,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            flush_messages: None,
            flush_ms: None,
            cleanup_policy: CleanupPolicy::Delete,
            delete_retention_ms: 24 * 3600 * 1000,
        }
    }
}

/// The fixed 61-byte header of a v2 record batch, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Bytes after the length field (whole batch = 12 + batch_length).
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Decodes the header at the start of `buf`; `None` if `buf` is shorter than 61 bytes.
    pub fn parse(buf: &[u8]) -> Option<BatchHeader> {
        todo!()
    }
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }
    /// Whole batch size in bytes, length field included.
    pub fn total_size(&self) -> usize {
        12 + self.batch_length as usize
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }
    pub fn compression(&self) -> i16 {
        self.attributes & 0x07
    }
    pub fn timestamp_type_is_log_append(&self) -> bool {
        self.attributes & 0x08 != 0
    }
}

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
    pub first_offset: i64,
    pub last_offset: i64,
    /// Largest timestamp appended (after LogAppendTime stamping).
    pub max_timestamp: i64,
    pub offset_of_max_timestamp: i64,
    /// The LogAppendTime used, or -1.
    pub log_append_time: i64,
    pub batches: usize,
    pub records: u64,
}

/// Batches read from one segment: whole batches only, a zero-copy slice of the mapping.
#[derive(Debug, Clone)]
pub struct ReadResult {
    pub records: Bytes,
    /// Log start and end offsets and high watermark when the read happened.
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
}

/// Result of a time-index lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    pub timestamp: i64,
    pub offset: i64,
}

/// A topic name and partition number; the directory is `<topic>-<partition>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

/// One partition's log. One writer and many concurrent readers; `&self` everywhere.
#[derive(Debug)]
pub struct Log {}

impl Log {
    /// Opens (or creates) the log in `dir`. `clean` says the previous shutdown was clean;
    /// `recovery_point` is where unflushed data may begin (from the directory checkpoint).
    pub fn open(dir: &Path, config: LogConfig, recovery_point: i64, clean: bool) -> Result<Log> {
        todo!()
    }
    pub fn dir(&self) -> &Path {
        todo!()
    }
    pub fn config(&self) -> LogConfig {
        todo!()
    }
    /// Replaces the config; takes effect from the next append/roll/retention pass.
    pub fn set_config(&self, config: LogConfig) {
        todo!()
    }
    /// Validates (magic 2, CRC32C, lengths) and appends whole batches; nothing is appended if
    /// any batch is invalid.
    pub fn append(&self, records: &[u8], options: &AppendOptions) -> Result<AppendInfo> {
        todo!()
    }
    /// Whole batches starting with the one that holds `offset`, up to `max_bytes` (but at least
    /// one batch when `min_one_batch`), and only batches whose last offset is below
    /// `upper_bound` (exclusive; the high watermark for consumers, the log end for replicas).
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        upper_bound: i64,
        min_one_batch: bool,
    ) -> Result<ReadResult> {
        todo!()
    }
    /// Headers of the batches from `offset` to the log end, in order (for state rebuilds).
    pub fn batch_headers_from(&self, offset: i64) -> Result<Vec<BatchHeader>> {
        todo!()
    }
    /// The first offset whose timestamp is >= `timestamp`, with that record's timestamp.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<TimestampOffset>> {
        todo!()
    }
    /// The largest timestamp in the log and the offset of its record (ListOffsets -3).
    pub fn max_timestamp(&self) -> Option<TimestampOffset> {
        todo!()
    }
    pub fn log_start_offset(&self) -> i64 {
        todo!()
    }
    pub fn log_end_offset(&self) -> i64 {
        todo!()
    }
    pub fn high_watermark(&self) -> i64 {
        todo!()
    }
    /// Set by the broker; clamped to [log start, log end].
    pub fn set_high_watermark(&self, offset: i64) {
        todo!()
    }
    /// Bytes on disk across segments.
    pub fn size_in_bytes(&self) -> u64 {
        todo!()
    }
    /// Rolls a new active segment now.
    pub fn roll(&self) -> Result<()> {
        todo!()
    }
    /// Deletes whole segments past `retention.ms` / `retention.bytes`; returns how many.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<usize> {
        todo!()
    }
    /// Moves the log start offset to `offset` (DeleteRecords); returns the new log start.
    pub fn delete_records(&self, offset: i64) -> Result<i64> {
        todo!()
    }
    /// Drops every batch at or after `offset` (a replica's divergent tail).
    pub fn truncate_to(&self, offset: i64) -> Result<()> {
        todo!()
    }
    /// Fsyncs everything appended; returns the new recovery point.
    pub fn flush(&self) -> Result<i64> {
        todo!()
    }
    /// The offset below which everything is known to be on disk.
    pub fn recovery_point(&self) -> i64 {
        todo!()
    }
    /// Closes the log: flush, trim files and indexes.
    pub fn close(&self) -> Result<()> {
        todo!()
    }
}

/// A data directory of many logs.
#[derive(Debug)]
pub struct LogDir {}

impl LogDir {
    /// Opens `path` (creating it), loading every `<topic>-<partition>` directory with
    /// `default_config` and the checkpoints. Removes the clean-shutdown marker.
    pub fn open(path: &Path, default_config: LogConfig) -> Result<LogDir> {
        todo!()
    }
    pub fn path(&self) -> &Path {
        todo!()
    }
    /// The logs found or created, by topic-partition.
    pub fn logs(&self) -> Vec<(TopicPartition, std::sync::Arc<Log>)> {
        todo!()
    }
    pub fn get(&self, tp: &TopicPartition) -> Option<std::sync::Arc<Log>> {
        todo!()
    }
    /// Returns the log, creating its directory if needed.
    pub fn get_or_create(&self, tp: &TopicPartition, config: LogConfig) -> Result<std::sync::Arc<Log>> {
        todo!()
    }
    /// Removes the log and its directory.
    pub fn delete(&self, tp: &TopicPartition) -> Result<()> {
        todo!()
    }
    /// Writes the recovery-point, log-start-offset and high-watermark checkpoint files.
    pub fn checkpoint(&self) -> Result<()> {
        todo!()
    }
    /// Flushes, closes every log, writes checkpoints and the clean-shutdown marker.
    pub fn shutdown(&self) -> Result<()> {
        todo!()
    }
}
