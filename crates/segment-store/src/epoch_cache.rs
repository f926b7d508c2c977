//! The leader epoch cache: for each leader epoch of a partition, the first offset written in
//! it, as Kafka's `LeaderEpochFileCache` keeps it in the `leader-epoch-checkpoint` file.
//!
//! A follower (or a restarted former leader) asks the leader where its latest epoch ends
//! (OffsetsForLeaderEpoch) and truncates whatever it holds beyond that: the tail written by a
//! leader that lost its leadership before the records were committed.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};

/// The checkpoint file in the partition directory (Kafka's name and text format).
pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

/// One epoch and the first offset written in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    /// The leader epoch.
    pub epoch: i32,
    /// The first offset of that epoch.
    pub start_offset: i64,
}

/// Epoch entries in increasing epoch and start offset, mirrored to the checkpoint file on
/// every change.
#[derive(Debug)]
pub(crate) struct EpochCache {
    path: PathBuf,
    entries: Vec<EpochEntry>,
}

impl EpochCache {
    /// Loads the checkpoint in `dir`; a missing or malformed file gives an empty cache (the
    /// epochs are then learned again from the batches appended next).
    pub(crate) fn load(dir: &Path) -> Self {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT);
        let entries = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| parse(&text))
            .unwrap_or_default();
        Self { path, entries }
    }

    pub(crate) fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// The latest epoch, if any.
    pub(crate) fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset`, when it is newer than the latest epoch.
    pub(crate) fn assign(&mut self, epoch: i32, start_offset: i64) -> Result<()> {
        if epoch < 0 || self.latest_epoch().is_some_and(|latest| latest >= epoch) {
            return Ok(());
        }
        // An earlier epoch that ends up with no records keeps no entry.
        self.entries.retain(|e| e.start_offset < start_offset);
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        self.write()
    }

    /// Forgets epochs that start at or after `end_offset` (the log was truncated there).
    pub(crate) fn truncate_from_end(&mut self, end_offset: i64) -> Result<()> {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end_offset);
        if self.entries.len() == before {
            return Ok(());
        }
        self.write()
    }

    /// Forgets everything (the whole log was discarded).
    pub(crate) fn clear(&mut self) -> Result<()> {
        self.entries.clear();
        self.write()
    }

    /// Kafka's `endOffsetFor`: the largest epoch at or below `requested` and the offset where
    /// it ends (the start of the next epoch, or `log_end` for the latest). `(-1, -1)` when
    /// `requested` is undefined or newer than every epoch known; `(requested, start of the
    /// first epoch)` when it is older than all of them.
    pub(crate) fn end_offset_for(&self, requested: i32, log_end: i64) -> (i32, i64) {
        if requested < 0 {
            return (-1, -1);
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, log_end);
        }
        let Some(higher) = self.entries.iter().find(|e| e.epoch > requested) else {
            return (-1, -1);
        };
        match self.entries.iter().rev().find(|e| e.epoch <= requested) {
            Some(floor) => (floor.epoch, higher.start_offset),
            None => (requested, higher.start_offset),
        }
    }

    fn write(&self) -> Result<()> {
        let tmp = self.path.with_extension("tmp");
        let mut text = format!("0\n{}\n", self.entries.len());
        for e in &self.entries {
            text.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
        }
        let mut f = std::fs::File::create(&tmp).at(&tmp)?;
        f.write_all(text.as_bytes()).at(&tmp)?;
        f.sync_all().at(&tmp)?;
        std::fs::rename(&tmp, &self.path).at(&self.path)
    }
}

fn parse(text: &str) -> Option<Vec<EpochEntry>> {
    let mut lines = text.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    let entries: Vec<EpochEntry> = lines
        .take(count)
        .map(|line| {
            let (epoch, offset) = line.trim().split_once(' ')?;
            Some(EpochEntry {
                epoch: epoch.parse().ok()?,
                start_offset: offset.parse().ok()?,
            })
        })
        .collect::<Option<_>>()?;
    (entries.len() == count).then_some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> EpochCache {
        EpochCache {
            path: PathBuf::from("/nonexistent"),
            entries: entries
                .iter()
                .map(|&(epoch, start_offset)| EpochEntry {
                    epoch,
                    start_offset,
                })
                .collect(),
        }
    }

    #[test]
    fn end_offsets_follow_kafka() {
        let c = cache(&[(1, 0), (3, 10), (6, 25)]);
        assert_eq!(c.end_offset_for(6, 40), (6, 40));
        assert_eq!(c.end_offset_for(3, 40), (3, 25));
        assert_eq!(c.end_offset_for(4, 40), (3, 25));
        assert_eq!(c.end_offset_for(1, 40), (1, 10));
        assert_eq!(c.end_offset_for(0, 40), (0, 0));
        assert_eq!(c.end_offset_for(7, 40), (-1, -1));
        assert_eq!(c.end_offset_for(-1, 40), (-1, -1));
    }

    #[test]
    fn checkpoint_round_trips_and_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = EpochCache::load(dir.path());
        c.assign(0, 0).unwrap();
        c.assign(2, 5).unwrap();
        c.assign(1, 7).unwrap(); // older epoch: ignored
        c.assign(4, 9).unwrap();
        let text = std::fs::read_to_string(dir.path().join(LEADER_EPOCH_CHECKPOINT)).unwrap();
        assert_eq!(text, "0\n3\n0 0\n2 5\n4 9\n");
        c.truncate_from_end(9).unwrap();
        let back = EpochCache::load(dir.path());
        assert_eq!(back.latest_epoch(), Some(2));
        assert_eq!(back.end_offset_for(0, 8), (0, 5));
        assert!(parse("0\n2\n1 0\n").is_none());
    }
}
