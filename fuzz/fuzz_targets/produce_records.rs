//! One partition's records of a Produce request through the append path's validation.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    broker::fuzz::produce_records(data);
});
