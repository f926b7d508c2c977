//! Per-log configuration, named after Kafka's topic configs.

/// What happens to old data: deletion by retention, or compaction by key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CleanupPolicy {
    /// `delete`: retention removes whole old segments.
    #[default]
    Delete,
    /// `compact`: keep the last record per key ([`crate::Log::compact`]); no retention.
    Compact,
    /// `compact,delete`: both.
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
