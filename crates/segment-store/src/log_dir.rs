//! A data directory (`log.dirs` entry): many partition logs, the directory-wide checkpoint
//! files, the clean-shutdown marker and a background flusher.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use crate::checkpoint::{
    self, CLEAN_SHUTDOWN_MARKER, LOG_START_OFFSET_CHECKPOINT, RECOVERY_POINT_CHECKPOINT,
    REPLICATION_OFFSET_CHECKPOINT,
};
use crate::config::LogConfig;
use crate::error::{Error, IoContext, Result};
use crate::fsio;
use crate::log::Log;
use crate::TopicPartition;

/// How often the flusher looks for logs due a `flush.ms` sync or a post-roll sync.
const FLUSH_TICK: Duration = Duration::from_millis(100);

/// The KRaft metadata log shares the data directory but is not a partition of ours.
const METADATA_TOPIC: &str = "__cluster_metadata";

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    logs: RwLock<BTreeMap<TopicPartition, Arc<Log>>>,
}

/// A data directory of many logs.
#[derive(Debug)]
pub struct LogDir {
    inner: Arc<Inner>,
    flusher: Mutex<Option<(mpsc::Sender<()>, JoinHandle<()>)>>,
}

impl TopicPartition {
    /// A topic-partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    /// The directory name `<topic>-<partition>`.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }

    /// Parses `<topic>-<partition>`, splitting at the last '-' (topics may contain '-').
    /// Fails with [`Error::InvalidDirName`] without a non-empty topic and a partition >= 0.
    pub fn parse_dir_name(name: &str) -> Result<TopicPartition> {
        let invalid = || Error::InvalidDirName(name.to_string());
        let (topic, partition) = name.rsplit_once('-').ok_or_else(invalid)?;
        let partition: i32 = partition.parse().map_err(|_| invalid())?;
        if topic.is_empty()
            || partition < 0
            || partition.to_string().len() != name.len() - topic.len() - 1
        {
            return Err(invalid());
        }
        Ok(TopicPartition {
            topic: topic.to_string(),
            partition,
        })
    }
}

impl LogDir {
    /// Opens `path` (creating it), loading every `<topic>-<partition>` directory with
    /// `default_config` and the checkpoints. Removes the clean-shutdown marker.
    ///
    /// The checkpoint files are read once for all logs. With the marker present no log is
    /// scanned; without it each log recovers from its checkpointed recovery point (0 if
    /// absent). Directories that do not parse (`metadata/`, `*-delete`, `*-future`) are
    /// skipped; leftover `*-delete` directories are removed. Starts the flusher thread that
    /// serves `flush.ms` and post-roll syncs; it stops when the `LogDir` is dropped.
    pub fn open(path: &Path, default_config: LogConfig) -> Result<LogDir> {
        let started = std::time::Instant::now();
        std::fs::create_dir_all(path).at(path)?;
        let marker = path.join(CLEAN_SHUTDOWN_MARKER);
        let clean = marker.exists();
        let recovery = checkpoint::read(path, RECOVERY_POINT_CHECKPOINT)?;
        let starts = checkpoint::read(path, LOG_START_OFFSET_CHECKPOINT)?;
        let hws = checkpoint::read(path, REPLICATION_OFFSET_CHECKPOINT)?;
        let mut logs = BTreeMap::new();
        for entry in std::fs::read_dir(path).at(path)? {
            let entry = entry.at(path)?;
            if !entry.file_type().at(&entry.path())?.is_dir() {
                continue;
            }
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.ends_with("-delete") {
                if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                    tracing::warn!(dir = %entry.path().display(), error = %e, "could not remove deleted log");
                }
                continue;
            }
            let Ok(tp) = TopicPartition::parse_dir_name(&name) else {
                continue;
            };
            if tp.topic == METADATA_TOPIC {
                continue;
            }
            let rp = recovery.get(&tp).copied().unwrap_or(0);
            let log = Log::open(&entry.path(), default_config.clone(), rp, clean)?;
            log.restore_offsets(starts.get(&tp).copied(), hws.get(&tp).copied());
            logs.insert(tp, Arc::new(log));
        }
        if clean {
            std::fs::remove_file(&marker).at(&marker)?;
            // The marker must be gone for good before anything is appended, or a crash would
            // be mistaken for a clean stop.
            fsio::sync_dir(path)?;
        }
        tracing::info!(dir = %path.display(), logs = logs.len(), clean,
            elapsed_ms = started.elapsed().as_millis() as u64, "opened log directory");
        let inner = Arc::new(Inner {
            path: path.to_path_buf(),
            logs: RwLock::new(logs),
        });
        let (tx, rx) = mpsc::channel::<()>();
        let weak = Arc::downgrade(&inner);
        let handle = std::thread::Builder::new()
            .name("log-flusher".into())
            .spawn(move || loop {
                match rx.recv_timeout(FLUSH_TICK) {
                    Err(RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
                let Some(inner) = weak.upgrade() else { return };
                let logs: Vec<Arc<Log>> = inner.logs.read().values().cloned().collect();
                for log in logs {
                    if let Err(e) = log.flush_if_due() {
                        tracing::warn!(dir = %log.dir().display(), error = %e, "scheduled flush failed");
                    }
                }
            })
            .at(path)?;
        Ok(LogDir {
            inner,
            flusher: Mutex::new(Some((tx, handle))),
        })
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The size of the file system holding the directory and the bytes an unprivileged
    /// writer may still use there (`statvfs`: blocks × fragment size, available blocks ×
    /// fragment size), as Kafka's DescribeLogDirs reports them.
    pub fn space(&self) -> std::io::Result<(u64, u64)> {
        let stat = rustix::fs::statvfs(&self.inner.path)?;
        Ok((
            stat.f_blocks.saturating_mul(stat.f_frsize),
            stat.f_bavail.saturating_mul(stat.f_frsize),
        ))
    }

    /// The logs found or created, by topic-partition.
    pub fn logs(&self) -> Vec<(TopicPartition, Arc<Log>)> {
        self.inner
            .logs
            .read()
            .iter()
            .map(|(tp, l)| (tp.clone(), l.clone()))
            .collect()
    }

    /// The log of `tp`, if present.
    pub fn get(&self, tp: &TopicPartition) -> Option<Arc<Log>> {
        self.inner.logs.read().get(tp).cloned()
    }

    /// Returns the log, creating its directory if needed (with `config`; an existing log
    /// keeps its config).
    pub fn get_or_create(&self, tp: &TopicPartition, config: LogConfig) -> Result<Arc<Log>> {
        if let Some(log) = self.get(tp) {
            return Ok(log);
        }
        let mut logs = self.inner.logs.write();
        if let Some(log) = logs.get(tp) {
            return Ok(log.clone());
        }
        let dir = self.inner.path.join(tp.dir_name());
        let existed = dir.exists();
        let log = Arc::new(Log::open(&dir, config, 0, !existed)?);
        logs.insert(tp.clone(), log.clone());
        Ok(log)
    }

    /// Removes the log and its directory. The directory is first renamed to
    /// `<topic>-<partition>.<uuid>-delete` (so a crash leaves nothing that loads as a log),
    /// then removed. Readers holding slices keep them; the log takes no more writes.
    pub fn delete(&self, tp: &TopicPartition) -> Result<()> {
        let Some(log) = self.inner.logs.write().remove(tp) else {
            return Ok(());
        };
        log.mark_closed();
        let doomed = self.inner.path.join(format!(
            "{}.{}-delete",
            tp.dir_name(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::rename(log.dir(), &doomed).at(log.dir())?;
        fsio::sync_dir(&self.inner.path)?;
        std::fs::remove_dir_all(&doomed).at(&doomed)
    }

    /// Runs one compaction pass ([`Log::compact`]) over every log whose cleanup policy
    /// compacts; returns the stats summed over the logs. A log that fails is logged and
    /// skipped (the others still run); the first error is returned after the pass.
    pub fn compact_all(&self, now_ms: i64) -> Result<crate::CompactionStats> {
        self.compact_all_retaining(now_ms, |_| None)
    }

    /// [`LogDir::compact_all`] with each log's active producers from `active`, taken just
    /// before its pass ([`Log::compact_retaining`]).
    pub fn compact_all_retaining(
        &self,
        now_ms: i64,
        active: impl Fn(&TopicPartition) -> Option<std::collections::HashSet<i64>>,
    ) -> Result<crate::CompactionStats> {
        let mut total = crate::CompactionStats::default();
        let mut first_err = None;
        for (tp, log) in self.logs() {
            let producers = active(&tp);
            match log.compact_retaining(now_ms, producers.as_ref()) {
                Ok(s) => total.add(&s),
                Err(e) => {
                    tracing::warn!(topic = %tp.topic, partition = tp.partition, error = %e, "compaction failed");
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(total), Err)
    }

    /// Writes the recovery-point, log-start-offset and high-watermark checkpoint files.
    pub fn checkpoint(&self) -> Result<()> {
        let logs = self.logs();
        let collect = |f: &dyn Fn(&Log) -> i64| -> Vec<(TopicPartition, i64)> {
            logs.iter().map(|(tp, l)| (tp.clone(), f(l))).collect()
        };
        let dir = &self.inner.path;
        checkpoint::write(
            dir,
            RECOVERY_POINT_CHECKPOINT,
            &collect(&|l| l.recovery_point()),
        )?;
        checkpoint::write(
            dir,
            LOG_START_OFFSET_CHECKPOINT,
            &collect(&|l| l.log_start_offset()),
        )?;
        checkpoint::write(
            dir,
            REPLICATION_OFFSET_CHECKPOINT,
            &collect(&|l| l.high_watermark()),
        )?;
        fsio::sync_dir(dir)
    }

    /// Flushes, closes every log, writes checkpoints and the clean-shutdown marker.
    /// The data is made durable by one `syncfs` of the data directory's filesystem.
    pub fn shutdown(&self) -> Result<()> {
        self.stop_flusher();
        let logs = self.logs();
        for (_, log) in &logs {
            log.seal_for_close()?;
        }
        // One filesystem-wide sync covers every log's data, trims and directory entries:
        // ~3.5 ms instead of several fsyncs per partition.
        let dir = std::fs::File::open(&self.inner.path).at(&self.inner.path)?;
        rustix::fs::syncfs(&dir).at(&self.inner.path)?;
        for (_, log) in &logs {
            log.mark_synced();
        }
        self.checkpoint()?;
        let marker = self.inner.path.join(CLEAN_SHUTDOWN_MARKER);
        std::fs::File::create(&marker)
            .and_then(|f| f.sync_all())
            .at(&marker)?;
        fsio::sync_dir(&self.inner.path)
    }

    fn stop_flusher(&self) {
        if let Some((tx, handle)) = self.flusher.lock().take() {
            drop(tx);
            let _ = handle.join();
        }
    }
}

impl Drop for LogDir {
    fn drop(&mut self) {
        self.stop_flusher();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_names_split_at_the_last_dash() {
        assert_eq!(
            TopicPartition::parse_dir_name("a-b-7").unwrap(),
            TopicPartition::new("a-b", 7)
        );
        for bad in [
            "metadata",
            "t-",
            "-1",
            "t-x",
            "t-0.abc-delete",
            "t-01",
            "t-+1",
        ] {
            assert!(TopicPartition::parse_dir_name(bad).is_err(), "{bad}");
        }
        assert_eq!(TopicPartition::new("x", 3).dir_name(), "x-3");
    }
}
