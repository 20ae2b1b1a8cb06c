//! The distribution handshake, fed whatever the fuzzer makes: it must never panic, and never
//! let a peer in without the cookie (`ferrotp::__fuzz::handshake` has the oracle).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferrotp::__fuzz::handshake(data));
