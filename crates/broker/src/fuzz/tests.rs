//! The bounded fuzz run for CI (stable Rust): real client frames from `fuzz/seeds/`, mutated,
//! through [`client_stream`] and [`produce_records`]. It stops after
//! `STRATA_FUZZ_ITERATIONS` inputs (default 200,000) or 20 seconds, whichever comes first;
//! `STRATA_FUZZ_SEED` replays a run (the seed is printed). A panicking input is saved and
//! named in the failure.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kafka_protocol::messages::RequestKind;

use super::{client_stream, produce_records};

const TIME_LIMIT: Duration = Duration::from_secs(20);
const DEFAULT_ITERATIONS: u64 = 200_000;

fn seed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds")
}

/// Every seed file (one length-prefixed request frame each), by name.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds: Vec<_> = std::fs::read_dir(seed_dir())
        .expect("fuzz/seeds exists")
        .map(|entry| entry.expect("seed entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "bin"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).expect("reading a seed"))
        })
        .collect();
    seeds.sort();
    seeds
}

/// The record sets of the Produce seeds.
fn seed_records(seeds: &[(String, Vec<u8>)]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (_, seed) in seeds {
        let frame = bytes::Bytes::copy_from_slice(&seed[4..]);
        if let Some(RequestKind::Produce(produce)) = crate::api::decode_without_broker(frame) {
            for topic in &produce.topic_data {
                for partition in &topic.partition_data {
                    out.extend(partition.records.as_ref().map(|r| r.to_vec()));
                }
            }
        }
    }
    out
}

#[test]
fn every_seed_is_a_served_request_and_the_seeds_cover_the_main_apis() {
    let seeds = seeds();
    let mut keys = std::collections::BTreeSet::new();
    for (name, seed) in &seeds {
        assert_eq!(client_stream(seed), 1, "{name} decodes to one request");
        keys.insert(i16::from_be_bytes([seed[4], seed[5]]));
    }
    // Produce, Fetch, ListOffsets, Metadata, OffsetCommit, OffsetFetch, FindCoordinator,
    // JoinGroup, Heartbeat, SyncGroup, ApiVersions.
    for key in [0, 1, 2, 3, 8, 9, 10, 11, 12, 14, 18] {
        assert!(keys.contains(&key), "no seed of api key {key}: {keys:?}");
    }
    let records = seed_records(&seeds);
    assert!(!records.is_empty(), "the Produce seeds carry records");
    for set in &records {
        assert!(
            produce_records(set),
            "a real producer's records pass validation"
        );
    }
}

/// xorshift64*: small, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Values at the edges of Kafka's integer fields: lengths, counts, versions.
const INTERESTING: &[i64] = &[
    0,
    1,
    -1,
    2,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    0x8000,
    0xffff,
    0x10000,
    1 << 20,
    i32::MAX as i64,
    i32::MIN as i64,
];

/// One to four random edits: bit flips, edge values, truncation, insertion, deletion,
/// duplication, and splices from `other`.
fn mutate(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..1 + rng.below(4) {
        let len = data.len();
        match rng.below(8) {
            0 if len > 0 => {
                let at = rng.below(len);
                data[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                data[at] = INTERESTING[rng.below(INTERESTING.len())] as u8;
            }
            2 if len >= 2 => {
                let at = rng.below(len - 1);
                let v = INTERESTING[rng.below(INTERESTING.len())] as i16;
                data[at..at + 2].copy_from_slice(&v.to_be_bytes());
            }
            3 if len >= 4 => {
                let at = rng.below(len - 3);
                let v = INTERESTING[rng.below(INTERESTING.len())] as i32;
                data[at..at + 4].copy_from_slice(&v.to_be_bytes());
            }
            4 => data.truncate(rng.below(len + 1)),
            5 => {
                let at = rng.below(len + 1);
                let count = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..count).map(|_| rng.next() as u8).collect();
                data.splice(at..at, bytes);
            }
            6 if len > 0 => {
                let at = rng.below(len);
                let end = at + 1 + rng.below((len - at).min(32));
                data.drain(at..end);
            }
            7 if !other.is_empty() => {
                let at = rng.below(len + 1);
                let from = rng.below(other.len());
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            _ if len > 0 => {
                let at = rng.below(len);
                let end = at + 1 + rng.below((len - at).min(64));
                let copy = data[at..end].to_vec();
                data.splice(at..at, copy);
            }
            _ => {}
        }
    }
}

/// Makes a mutated frame's length prefix true again, so the decoder sees it.
fn fix_frame_length(data: &mut [u8]) {
    if data.len() >= 4 {
        let len = (data.len() - 4) as i32;
        data[..4].copy_from_slice(&len.to_be_bytes());
    }
}

/// Makes a mutated v2 batch's length and CRC32C true again, so validation goes past them.
fn fix_batch(data: &mut [u8]) {
    if data.len() >= 61 {
        let len = (data.len() - 12) as i32;
        data[8..12].copy_from_slice(&len.to_be_bytes());
        let crc = crc32c::crc32c(&data[21..]);
        data[17..21].copy_from_slice(&crc.to_be_bytes());
    }
}

/// Runs `f` on `input`; on a panic, saves the input and fails naming it.
fn survive(what: &str, seed: u64, iteration: u64, input: &[u8], f: impl FnOnce(&[u8])) {
    if catch_unwind(AssertUnwindSafe(|| f(input))).is_err() {
        let path = std::env::temp_dir().join(format!("strata-fuzz-{what}-{seed}-{iteration}.bin"));
        let _ = std::fs::write(&path, input);
        panic!(
            "{what} panicked on input {iteration} of seed {seed} (STRATA_FUZZ_SEED={seed}), \
             saved to {}",
            path.display()
        );
    }
}

#[test]
fn mutated_client_frames_and_records_never_panic() {
    let seeds = seeds();
    let records = seed_records(&seeds);
    let seed = std::env::var("STRATA_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
        | 1;
    let iterations = std::env::var("STRATA_FUZZ_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_ITERATIONS);
    eprintln!("fuzzing with STRATA_FUZZ_SEED={seed}, up to {iterations} inputs or {TIME_LIMIT:?}");
    let mut rng = Rng(seed);
    let started = Instant::now();
    let (mut done, mut decoded, mut valid_records) = (0u64, 0usize, 0usize);
    while done < iterations && started.elapsed() < TIME_LIMIT {
        let (_, base) = &seeds[rng.below(seeds.len())];
        let (_, other) = &seeds[rng.below(seeds.len())];
        let mut input = base.clone();
        mutate(&mut rng, &mut input, other);
        if rng.below(2) == 0 {
            fix_frame_length(&mut input);
        }
        if rng.below(8) == 0 {
            // Pipelined: a second frame behind the first.
            input.extend_from_slice(other);
        }
        survive("client_stream", seed, done, &input, |i| {
            decoded += client_stream(i);
        });
        if !records.is_empty() {
            let mut set = records[rng.below(records.len())].clone();
            let other = &records[rng.below(records.len())];
            mutate(&mut rng, &mut set, other);
            if rng.below(2) == 0 {
                fix_batch(&mut set);
            }
            survive("produce_records", seed, done, &set, |r| {
                valid_records += usize::from(produce_records(r));
            });
        }
        done += 1;
    }
    eprintln!(
        "{done} inputs in {:?}: {decoded} frames decoded to requests, {valid_records} mutated \
         record sets passed validation",
        started.elapsed()
    );
    assert!(done >= 1000 || iterations < 1000, "only {done} inputs ran");
    assert!(
        decoded > 0,
        "no mutated input decoded: the mutations never reach the decoder"
    );
}
