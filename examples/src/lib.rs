//! Holder crate for the runnable examples in this folder; see `cargo run --example NAME`.
