//! Kafka's offset checkpoint files: `0` (version), the entry count, then one
//! `topic partition offset` line per entry. Written atomically: temp file, fsync, rename,
//! directory fsync.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use crate::error::{IoContext, Result};
use crate::TopicPartition;

/// Recovery points of every log.
pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
/// Log start offsets of every log.
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
/// High watermarks of every log.
pub const REPLICATION_OFFSET_CHECKPOINT: &str = "replication-offset-checkpoint";
/// Present after a clean shutdown, removed on open.
pub const CLEAN_SHUTDOWN_MARKER: &str = ".kafka_cleanshutdown";

/// Why a checkpoint file did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed {
    pub(crate) line: usize,
    pub(crate) reason: &'static str,
}

/// Parses checkpoint text.
pub(crate) fn parse(text: &str) -> std::result::Result<HashMap<TopicPartition, i64>, Malformed> {
    let mut lines = text.lines();
    let bad = |line, reason| Malformed { line, reason };
    if lines.next().map(str::trim) != Some("0") {
        return Err(bad(1, "unknown version"));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or(bad(2, "bad entry count"))?;
    let mut out = HashMap::with_capacity(count);
    for i in 0..count {
        let line = lines
            .next()
            .ok_or(bad(3 + i, "fewer entries than the count"))?;
        let mut parts = line.split(' ');
        let (Some(topic), Some(partition), Some(offset), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad(3 + i, "expected `topic partition offset`"));
        };
        let partition = partition.parse().map_err(|_| bad(3 + i, "bad partition"))?;
        let offset = offset.parse().map_err(|_| bad(3 + i, "bad offset"))?;
        out.insert(
            TopicPartition {
                topic: topic.to_string(),
                partition,
            },
            offset,
        );
    }
    if lines.any(|l| !l.trim().is_empty()) {
        return Err(bad(3 + count, "more entries than the count"));
    }
    Ok(out)
}

/// Renders checkpoint text.
pub(crate) fn render(entries: &[(TopicPartition, i64)]) -> String {
    let mut s = format!("0\n{}\n", entries.len());
    for (tp, off) in entries {
        s.push_str(&format!("{} {} {}\n", tp.topic, tp.partition, off));
    }
    s
}

/// Reads `dir/name`; a missing file is empty, a malformed one is reported and treated as
/// empty (every consumer of these values falls back to a safe default: full recovery, the
/// first segment's base, the log start).
pub(crate) fn read(dir: &Path, name: &str) -> Result<HashMap<TopicPartition, i64>> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(parse(&text).unwrap_or_else(|m| {
            tracing::warn!(file = %path.display(), line = m.line, reason = m.reason, "ignoring malformed checkpoint");
            HashMap::new()
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashMap::new()),
        Err(e) => Err(e).at(&path),
    }
}

/// Writes `dir/name` atomically (the directory fsync is the caller's, once for all files).
pub(crate) fn write(dir: &Path, name: &str, entries: &[(TopicPartition, i64)]) -> Result<()> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = std::fs::File::create(&tmp).at(&tmp)?;
    f.write_all(render(entries).as_bytes()).at(&tmp)?;
    f.sync_all().at(&tmp)?;
    std::fs::rename(&tmp, &path).at(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition {
            topic: t.into(),
            partition: p,
        }
    }

    #[test]
    fn render_parse_round_trip_with_dashed_topic() {
        let entries = vec![(tp("a-b-c", 3), 42), (tp("x", 0), 0)];
        let text = render(&entries);
        assert_eq!(text, "0\n2\na-b-c 3 42\nx 0 0\n");
        let back = parse(&text).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[&tp("a-b-c", 3)], 42);
    }

    #[test]
    fn malformed_files_are_rejected_with_the_line() {
        assert_eq!(parse("1\n0\n").unwrap_err().line, 1);
        assert_eq!(parse("0\n2\nx 0 1\n").unwrap_err().line, 4);
        assert_eq!(
            parse("0\n1\nx zero 1\n").unwrap_err().reason,
            "bad partition"
        );
        assert!(parse("0\n0\n").unwrap().is_empty());
    }
}
