//! The crate's error type: every variant names what failed and where.

use std::path::PathBuf;

/// Errors of the storage engine; each says what failed and where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system call on `path` failed (disk full is `ErrorKind::StorageFull`).
    #[error("io error on {path}: {source}")]
    Io {
        /// The file or directory the call was about.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A batch handed to [`crate::Log::append`] is malformed (length, CRC, offsets).
    #[error("corrupt record batch at position {position} of the records set: {reason}")]
    CorruptBatch {
        /// Byte position of the batch inside the records set.
        position: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A batch handed to [`crate::Log::append`] is not a v2 batch.
    #[error("record batch magic {magic} at position {position} is not 2")]
    UnsupportedMagic {
        /// Byte position of the batch inside the records set.
        position: usize,
        /// The magic byte found.
        magic: i8,
    },
    /// The records set of one append is larger than `segment.bytes`.
    #[error("record batch of {size} bytes exceeds the segment size {segment_bytes}")]
    BatchTooLarge {
        /// Size of the records set in bytes.
        size: usize,
        /// The log's `segment.bytes`.
        segment_bytes: u64,
    },
    /// A read or lookup asked for an offset outside `[log_start, log_end]`.
    #[error("offset {offset} is out of range [{log_start}, {log_end}] in {path}")]
    OffsetOutOfRange {
        /// The log directory.
        path: PathBuf,
        /// The offset asked for.
        offset: i64,
        /// Log start offset at the time of the call.
        log_start: i64,
        /// Log end offset at the time of the call.
        log_end: i64,
    },
    /// A replica append whose offsets do not follow the log end offset.
    #[error("non-monotonic offsets appending at {offset} to {path}, log end is {log_end}")]
    NonMonotonicOffset {
        /// The log directory.
        path: PathBuf,
        /// The offending base offset.
        offset: i64,
        /// Log end offset at the time of the call.
        log_end: i64,
    },
    /// A directory name that is not `<topic>-<partition>`.
    #[error("invalid partition directory name {0}")]
    InvalidDirName(String),
    /// The log was closed or deleted; it takes no more writes.
    #[error("log {path} is closed")]
    Closed {
        /// The log directory.
        path: PathBuf,
    },
    /// `delete_records` asked to move the log start past the high watermark.
    #[error("cannot delete records up to {offset} in {path}: high watermark is {high_watermark}")]
    DeleteBeyondHighWatermark {
        /// The log directory.
        path: PathBuf,
        /// The offset asked for.
        offset: i64,
        /// The high watermark at the time of the call.
        high_watermark: i64,
    },
    /// Another process holds the data directory's `.lock`.
    #[error(
        "data directory {path} is in use by another process{}: only one strata process may use a data directory",
        holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
    )]
    DirectoryInUse {
        /// The data directory.
        path: PathBuf,
        /// The pid the holder wrote into the lock file, when readable.
        holder: Option<u32>,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Adds the path to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

impl<T> IoContext<T> for rustix::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e.into(),
        })
    }
}
