//! The record codecs of a v2 batch (attributes bits 0-2: 1 gzip, 2 snappy, 3 lz4, 4 zstd):
//! bounded decompression, used by the produce-time record walk (`record_check.rs`, as a
//! stream) and by the log cleaner (`compaction.rs`, whole), and compression in the framing
//! Kafka's Java clients write, used by the cleaner when it rewrites a compressed batch.
//!
//! Every decoder stops with an error once more than `max` bytes come out, so a zip bomb
//! costs at most `max` bytes of decoding.

use std::io::{Read, Write};

/// Names by codec id, as Kafka's `CompressionType` spells them.
pub(crate) const CODEC_NAMES: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

/// xerial snappy framing: magic, version 1, compatible version 1.
const SNAPPY_XERIAL_HEADER: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
/// Uncompressed bytes per xerial snappy block (`SnappyOutputStream`'s default).
const SNAPPY_BLOCK: usize = 32 * 1024;

/// A streaming decoder for gzip (1), lz4 (3) or zstd (4) over `payload`, failing once more
/// than `max` bytes came out. Snappy (2) is not a stream here: see [`snappy_decompress`].
pub(crate) fn stream_decoder<'a>(
    codec: i16,
    payload: &'a [u8],
    max: usize,
) -> std::io::Result<Bounded<Box<dyn Read + 'a>>> {
    let inner: Box<dyn Read + 'a> = match codec {
        // Java's GZIPInputStream reads concatenated members too.
        1 => Box::new(flate2::read::MultiGzDecoder::new(payload)),
        3 => Box::new(lz4::Decoder::new(payload)?),
        4 => Box::new(zstd::stream::read::Decoder::with_buffer(payload)?),
        other => {
            return Err(std::io::Error::other(format!(
                "codec {other} has no stream decoder"
            )))
        }
    };
    Ok(Bounded::new(inner, max))
}

/// xerial-framed snappy (`\x82SNAPPY\0` + versions, then `u32` length + raw block repeated),
/// or one raw snappy block without the header (as xerial's `SnappyInputStream` falls back
/// to, and as librdkafka writes); at most `max` bytes.
pub(crate) fn snappy_decompress(payload: &[u8], max: usize) -> Result<Vec<u8>, String> {
    let block = |raw: &[u8], out: &mut Vec<u8>| -> Result<(), String> {
        let len = snap::raw::decompress_len(raw).map_err(|e| e.to_string())?;
        if out.len().saturating_add(len) > max {
            return Err(format!("decompressed records exceed {max} bytes"));
        }
        let at = out.len();
        out.resize(at + len, 0);
        let n = snap::raw::Decoder::new()
            .decompress(raw, &mut out[at..])
            .map_err(|e| e.to_string())?;
        out.truncate(at + n);
        Ok(())
    };
    let mut out = Vec::new();
    if payload.len() < SNAPPY_XERIAL_HEADER.len()
        || !payload.starts_with(&SNAPPY_XERIAL_HEADER[..8])
    {
        block(payload, &mut out)?;
        return Ok(out);
    }
    let mut rest = &payload[SNAPPY_XERIAL_HEADER.len()..];
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            return Err("truncated snappy block length".into());
        };
        let len = u32::from_be_bytes(*len) as usize;
        if len > tail.len() {
            return Err("snappy block past the end of the batch".into());
        }
        block(&tail[..len], &mut out)?;
        rest = &tail[len..];
    }
    Ok(out)
}

/// The whole decompressed payload of a batch compressed with `codec` (1-4), at most `max`
/// bytes; the error says why not (including an unknown codec).
pub(crate) fn decompress(codec: i16, payload: &[u8], max: usize) -> Result<Vec<u8>, String> {
    if codec == 2 {
        return snappy_decompress(payload, max);
    }
    let mut decoder = stream_decoder(codec, payload, max).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(payload.len().saturating_mul(4).min(max));
    decoder.read_to_end(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// `records` compressed with `codec` (1-4) as Kafka's Java producer frames them: gzip at the
/// default level; snappy in xerial framing with 32 KiB blocks; lz4 frames of independent
/// 64 KiB blocks without checksums (Kafka's `KafkaLZ4BlockInputStream` refuses dependent
/// blocks); zstd at level 3.
pub(crate) fn compress(codec: i16, records: &[u8]) -> std::io::Result<Vec<u8>> {
    match codec {
        1 => {
            let mut e = flate2::write::GzEncoder::new(
                Vec::with_capacity(records.len() / 2),
                flate2::Compression::default(),
            );
            e.write_all(records)?;
            e.finish()
        }
        2 => {
            let mut out = SNAPPY_XERIAL_HEADER.to_vec();
            let mut encoder = snap::raw::Encoder::new();
            for chunk in records.chunks(SNAPPY_BLOCK) {
                let block = encoder.compress_vec(chunk).map_err(std::io::Error::other)?;
                out.extend_from_slice(&(block.len() as u32).to_be_bytes());
                out.extend_from_slice(&block);
            }
            Ok(out)
        }
        3 => {
            let mut e = lz4::EncoderBuilder::new()
                .block_size(lz4::BlockSize::Max64KB)
                .block_mode(lz4::BlockMode::Independent)
                .block_checksum(lz4::liblz4::BlockChecksum::NoBlockChecksum)
                .checksum(lz4::ContentChecksum::NoChecksum)
                .build(Vec::with_capacity(records.len() / 2))?;
            e.write_all(records)?;
            let (out, result) = e.finish();
            result.map(|()| out)
        }
        4 => zstd::encode_all(records, 3),
        other => Err(std::io::Error::other(format!(
            "unknown compression codec {other}"
        ))),
    }
}

/// A reader that fails once more than `max` bytes came out of `inner`.
pub(crate) struct Bounded<R> {
    inner: R,
    left: usize,
    max: usize,
}

impl<R> Bounded<R> {
    pub(crate) fn new(inner: R, max: usize) -> Self {
        Self {
            inner,
            left: max,
            max,
        }
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // One byte more tells "exactly at the bound" from "past it".
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(std::io::Error::other(format!(
                    "decompressed records exceed {} bytes",
                    self.max
                ))),
            };
        }
        let want = buf.len().min(self.left);
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i % 251) as u8 ^ (i / 1000) as u8)
            .collect()
    }

    #[test]
    fn every_codec_round_trips_across_block_boundaries() {
        for len in [0, 1, 1000, 70_000, 200_000] {
            let raw = sample(len);
            for codec in 1..=4 {
                let packed = compress(codec, &raw).unwrap();
                assert_eq!(
                    decompress(codec, &packed, 1 << 20).unwrap(),
                    raw,
                    "codec {codec}"
                );
            }
        }
    }

    #[test]
    fn lz4_frames_use_independent_blocks_without_checksums() {
        let packed = compress(3, &sample(10)).unwrap();
        assert_eq!(&packed[..4], &[0x04, 0x22, 0x4d, 0x18], "lz4 frame magic");
        // FLG: version 01, block independence set, no block or content checksum, no size.
        assert_eq!(packed[4], 0b0110_0000);
        // BD: 64 KiB blocks.
        assert_eq!(packed[5], 4 << 4);
    }

    #[test]
    fn decompression_stops_at_the_bound() {
        let raw = vec![7u8; 100_000];
        for codec in 1..=4 {
            let packed = compress(codec, &raw).unwrap();
            assert!(decompress(codec, &packed, 99_999).is_err(), "codec {codec}");
            assert_eq!(decompress(codec, &packed, 100_000).unwrap().len(), 100_000);
        }
        assert!(decompress(5, &raw, 1 << 20).is_err());
        assert!(compress(5, &raw).is_err());
    }
}
