//! The macro's compile errors, pinned by `.stderr` snapshots; regenerate with
//! `TRYBUILD=overwrite cargo test -p ferrotp-tests --test ui` and read the diff.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("ui/pass/*.rs");
    cases.compile_fail("ui/fail/*.rs");
}
