//! The batch scanner recovery runs over a segment's bytes. Pure: it reads a byte slice and
//! reports how much of it is an intact sequence of batches; the caller truncates the file.

use crate::batch::{complete_batch_at, compute_crc, BatchHeader};

/// Why a scan stopped before the end of the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// Every byte belongs to an intact batch.
    End,
    /// A header is cut off, its length runs past the end, or the magic is wrong (a torn
    /// write, or zeroed reserved space).
    Incomplete,
    /// The CRC32C does not match.
    Crc,
    /// Offsets go backwards, precede the segment, or overflow a relative offset.
    Offsets,
}

/// Result of scanning one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scan {
    /// Length of the intact prefix.
    pub(crate) valid_len: u64,
    /// Offset after the last intact batch, `None` if there is none.
    pub(crate) next_offset: Option<i64>,
    pub(crate) stop: StopReason,
}

/// Walks the batches of `buf` (a segment based at `base_offset`) from `start` while they
/// are complete, checksummed (when `check_crc`) and in offset order, calling `on_batch` with
/// each intact batch's position and header.
pub(crate) fn scan_batches(
    buf: &[u8],
    base_offset: i64,
    start: usize,
    check_crc: bool,
    mut on_batch: impl FnMut(u64, &BatchHeader),
) -> Scan {
    let mut pos = start;
    let mut next: Option<i64> = None;
    let stop = loop {
        if pos == buf.len() {
            break StopReason::End;
        }
        let Some(h) = complete_batch_at(buf, pos) else {
            break StopReason::Incomplete;
        };
        let end = pos + h.total_size();
        if check_crc && compute_crc(&buf[pos..end]) != h.crc {
            break StopReason::Crc;
        }
        let min_base = next.unwrap_or(base_offset);
        if h.base_offset < min_base
            || h.records_count < 0
            || h.last_offset() - base_offset > i64::from(i32::MAX)
        {
            break StopReason::Offsets;
        }
        on_batch(pos as u64, &h);
        next = Some(h.last_offset() + 1);
        pos = end;
    };
    Scan {
        valid_len: pos as u64,
        next_offset: next,
        stop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::BatchBuilder;

    fn three_batches() -> (Vec<u8>, Vec<usize>) {
        let mut buf = Vec::new();
        let mut ends = Vec::new();
        for (i, base) in [100i64, 103, 110].into_iter().enumerate() {
            buf.extend(BatchBuilder::new(base).records(3, 10 + i).build());
            ends.push(buf.len());
        }
        (buf, ends)
    }

    #[test]
    fn intact_segment_scans_to_end() {
        let (buf, ends) = three_batches();
        let mut seen = Vec::new();
        let s = scan_batches(&buf, 100, 0, true, |p, h| seen.push((p, h.base_offset)));
        assert_eq!(
            s,
            Scan {
                valid_len: ends[2] as u64,
                next_offset: Some(113),
                stop: StopReason::End
            }
        );
        assert_eq!(
            seen,
            vec![(0, 100), (ends[0] as u64, 103), (ends[1] as u64, 110)]
        );
    }

    #[test]
    fn torn_tail_and_zeroed_reservation_stop_at_last_intact_batch() {
        let (mut buf, ends) = three_batches();
        let s = scan_batches(&buf[..ends[2] - 1], 100, 0, true, |_, _| {});
        assert_eq!(
            (s.valid_len, s.stop),
            (ends[1] as u64, StopReason::Incomplete)
        );
        buf.extend([0u8; 4096]);
        let s = scan_batches(&buf, 100, 0, true, |_, _| {});
        assert_eq!((s.valid_len, s.next_offset), (ends[2] as u64, Some(113)));
    }

    #[test]
    fn flipped_byte_stops_at_crc_and_offsets_must_increase() {
        let (mut buf, ends) = three_batches();
        buf[ends[0] + 70] ^= 0x40;
        let s = scan_batches(&buf, 100, 0, true, |_, _| {});
        assert_eq!((s.valid_len, s.stop), (ends[0] as u64, StopReason::Crc));
        let s = scan_batches(&buf, 101, 0, false, |_, _| {});
        assert_eq!((s.valid_len, s.stop), (0, StopReason::Offsets));
    }
}
