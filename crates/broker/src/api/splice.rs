//! Zero-copy record bytes in responses.
//!
//! kafka-protocol encodes a response into one buffer, which would copy every fetched batch out
//! of the segment mapping. Instead a handler puts a 16-byte marker where each partition's
//! records go; after encoding, [`splice`] cuts the buffer at the markers and puts the mapped
//! record bytes themselves in their place, so the socket write reads straight from the page
//! cache.

use bytes::{BufMut, Bytes, BytesMut};

/// Length of a marker: 8 bytes unique to the response, then the index of the records.
const MARKER_LEN: usize = 16;

/// Markers for the record slices of one response.
#[derive(Debug)]
pub(crate) struct Splicer {
    salt: [u8; 8],
    records: Vec<Bytes>,
}

impl Splicer {
    pub(crate) fn new() -> Self {
        Self {
            salt: uuid::Uuid::new_v4().as_bytes()[..8]
                .try_into()
                .expect("8 of 16 bytes"),
            records: Vec::new(),
        }
    }

    /// The value to encode in place of `records`: the bytes themselves when small, else a
    /// marker that [`splice`] later replaces.
    pub(crate) fn placeholder(&mut self, records: Bytes) -> Bytes {
        if records.len() <= 4096 {
            return records;
        }
        let mut marker = BytesMut::with_capacity(MARKER_LEN);
        marker.put_slice(&self.salt);
        marker.put_u64(self.records.len() as u64);
        self.records.push(records);
        marker.freeze()
    }

    /// Swaps every partition's records in a Fetch response for placeholders.
    pub(crate) fn detach_fetch_records(
        response: &mut kafka_protocol::messages::FetchResponse,
    ) -> Self {
        let mut splicer = Self::new();
        for topic in &mut response.responses {
            for partition in &mut topic.partitions {
                if let Some(records) = partition.records.take() {
                    partition.records = Some(splicer.placeholder(records));
                }
            }
        }
        splicer
    }

    /// Replaces the markers in `frame` (a whole length-prefixed response) with the record
    /// bytes, fixing each length prefix (`compact`: unsigned varint of length + 1, else i32)
    /// and the frame length. Returns the pieces to write in order.
    pub(crate) fn splice(self, frame: Bytes, compact: bool) -> Vec<Bytes> {
        if self.records.is_empty() {
            return vec![frame];
        }
        let old_prefix = if compact { 1 } else { 4 };
        let mut pieces = Vec::with_capacity(self.records.len() * 3 + 1);
        let mut rest = frame.slice(4..);
        let mut total = 0usize;
        for (index, records) in self.records.into_iter().enumerate() {
            let mut marker = [0u8; MARKER_LEN];
            marker[..8].copy_from_slice(&self.salt);
            marker[8..].copy_from_slice(&(index as u64).to_be_bytes());
            let at = find(&rest, &marker).expect("every placeholder was encoded into the response");
            let before = rest.slice(..at - old_prefix);
            let mut prefix = BytesMut::with_capacity(5);
            if compact {
                put_uvarint(&mut prefix, records.len() as u64 + 1);
            } else {
                prefix.put_i32(records.len() as i32);
            }
            total += before.len() + prefix.len() + records.len();
            pieces.push(before);
            pieces.push(prefix.freeze());
            pieces.push(records);
            rest = rest.slice(at + MARKER_LEN..);
        }
        total += rest.len();
        pieces.push(rest);
        pieces.insert(0, Bytes::copy_from_slice(&(total as i32).to_be_bytes()));
        pieces
    }
}

fn find(haystack: &[u8], needle: &[u8; MARKER_LEN]) -> Option<usize> {
    haystack.windows(MARKER_LEN).position(|w| w == needle)
}

fn put_uvarint(buf: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{FetchResponse, ResponseHeader};
    use kafka_protocol::protocol::Encodable;

    fn encode(response: &FetchResponse, version: i16) -> Bytes {
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        ResponseHeader::default()
            .with_correlation_id(9)
            .encode(&mut buf, if version >= 12 { 1 } else { 0 })
            .unwrap();
        response.encode(&mut buf, version).unwrap();
        let len = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        buf.freeze()
    }

    fn response(records: &[Bytes]) -> FetchResponse {
        let partitions = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                PartitionData::default()
                    .with_partition_index(i as i32)
                    .with_records(Some(r.clone()))
            })
            .collect();
        FetchResponse::default().with_responses(vec![
            FetchableTopicResponse::default().with_partitions(partitions)
        ])
    }

    #[test]
    fn spliced_response_equals_the_plainly_encoded_one() {
        let records: Vec<Bytes> = [10usize, 5000, 0, 300_000, 70_000]
            .iter()
            .enumerate()
            .map(|(i, n)| Bytes::from(vec![i as u8 + 1; *n]))
            .collect();
        for version in [4, 11, 12, 16] {
            let plain = encode(&response(&records), version);
            let mut splicer = Splicer::new();
            let placeholders: Vec<Bytes> = records
                .iter()
                .map(|r| splicer.placeholder(r.clone()))
                .collect();
            let pieces = splicer.splice(encode(&response(&placeholders), version), version >= 12);
            let joined: Vec<u8> = pieces.iter().flat_map(|p| p.iter().copied()).collect();
            assert_eq!(joined, plain.to_vec(), "version {version}");
        }
    }
}
