//! ferrotp's integration test crate. Its library holds the guide's chapters as doc-tests, so that
//! `cargo test` compiles and runs every code block of the guide; the tests proper are in `tests/`.

#[doc = include_str!("../../guide/src/processes.md")]
mod processes {}
