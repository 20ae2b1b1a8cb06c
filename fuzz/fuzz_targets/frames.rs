//! A connection's byte stream, as the fuzzer makes it, cut into frames under the handshake's cap
//! and then the authenticated one: it must never panic, and no frame may exceed the cap in force
//! (`ferrotp::__fuzz::frames` has the oracle).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferrotp::__fuzz::frames(data));
