//! Procedural macros for [ferrotp](https://docs.rs/ferrotp).
//!
//! This crate is re-exported by `ferrotp`; depend on `ferrotp` rather than on this crate directly.
//! The `#[gen_server]` and `#[install]` attributes arrive with the gen_server issue.
