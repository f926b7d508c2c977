//! A client's byte stream through framing, request decoding and record validation.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    broker::fuzz::client_stream(data);
});
