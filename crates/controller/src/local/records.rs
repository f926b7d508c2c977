//! Framing of the command log: `[u32 length][u32 crc32c][payload]`, both integers
//! big-endian, the CRC over the payload, the payload the JSON of `(index, command)`.
//!
//! A record is only acknowledged after it is fsynced, so after a crash the log is a prefix
//! of valid records followed by at most one partial record. Scanning therefore stops at
//! the first record that is short or fails its CRC and reports where the valid prefix
//! ends; everything after it was never acknowledged.

use crate::command::Command;

/// Bytes before the payload: length and CRC.
pub(crate) const HEADER_LEN: usize = 8;

/// Larger claimed lengths are treated as garbage rather than allocated.
const MAX_PAYLOAD_LEN: usize = 64 << 20;

/// Encodes one log record.
pub(crate) fn encode(index: u64, command: &Command) -> Vec<u8> {
    let payload = serde_json::to_vec(&(index, command)).expect("commands serialize to JSON");
    let len = u32::try_from(payload.len()).expect("a command is far smaller than 4 GiB");
    let mut record = Vec::with_capacity(HEADER_LEN + payload.len());
    record.extend_from_slice(&len.to_be_bytes());
    record.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
    record.extend_from_slice(&payload);
    record
}

/// The result of scanning a log file's bytes.
#[derive(Debug)]
pub(crate) struct Scan {
    /// The valid records, in file order.
    pub(crate) records: Vec<(u64, Command)>,
    /// Length of the valid prefix; the file is cut here.
    pub(crate) valid_len: usize,
    /// Why scanning stopped before the end of the bytes, if it did.
    pub(crate) stopped: Option<String>,
}

/// Scans `bytes` record by record. A torn or CRC-failing record ends the scan (see the
/// module docs). A record whose CRC matches but whose payload does not decode is not a
/// torn write; it is returned as `Err` with the reason.
pub(crate) fn scan(bytes: &[u8]) -> Result<Scan, String> {
    let mut records = Vec::new();
    let mut pos = 0;
    let stopped = loop {
        let rest = &bytes[pos..];
        if rest.is_empty() {
            break None;
        }
        if rest.len() < HEADER_LEN {
            break Some(format!("partial header of {} bytes at {pos}", rest.len()));
        }
        let len = u32::from_be_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_be_bytes(rest[4..8].try_into().expect("4 bytes"));
        if len == 0 || len > MAX_PAYLOAD_LEN {
            break Some(format!("implausible record length {len} at {pos}"));
        }
        let Some(payload) = rest.get(HEADER_LEN..HEADER_LEN + len) else {
            break Some(format!(
                "record at {pos} claims {len} bytes, {} present",
                rest.len() - HEADER_LEN
            ));
        };
        if crc32c::crc32c(payload) != crc {
            break Some(format!("CRC mismatch in record at {pos}"));
        }
        let record: (u64, Command) = serde_json::from_slice(payload)
            .map_err(|e| format!("record at {pos} has a valid CRC but does not decode: {e}"))?;
        records.push(record);
        pos += HEADER_LEN + len;
    };
    Ok(Scan {
        records,
        valid_len: pos,
        stopped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(i: i32) -> Command {
        Command::DeleteTopic {
            name: format!("t{i}"),
        }
    }

    #[test]
    fn records_round_trip() {
        let mut bytes = Vec::new();
        for i in 1..=3 {
            bytes.extend(encode(i as u64, &command(i)));
        }
        let scan = scan(&bytes).unwrap();
        assert_eq!(scan.valid_len, bytes.len());
        assert!(scan.stopped.is_none());
        assert_eq!(
            scan.records,
            (1..=3).map(|i| (i as u64, command(i))).collect::<Vec<_>>()
        );
    }

    #[test]
    fn every_cut_yields_the_whole_records_before_it() {
        let one = encode(1, &command(1));
        let two = encode(2, &command(2));
        let bytes = [one.clone(), two].concat();
        for cut in 0..bytes.len() {
            let scan = scan(&bytes[..cut]).unwrap();
            let whole = usize::from(cut >= one.len());
            assert_eq!(scan.records.len(), whole, "cut at {cut}");
            assert_eq!(scan.valid_len, whole * one.len());
            assert_eq!(scan.stopped.is_some(), cut != 0 && cut != one.len());
        }
    }

    #[test]
    fn checksummed_garbage_is_an_error_not_a_torn_tail() {
        let payload = b"not json";
        let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
        bytes.extend(crc32c::crc32c(payload).to_be_bytes());
        bytes.extend(payload);
        assert!(scan(&bytes).is_err());
    }
}
