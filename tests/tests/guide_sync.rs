//! The guide shows some examples whole; this keeps the copies identical to the files they claim
//! to be.

/// The Rust code of the first fenced ```` ```rust ```` block in `chapter` that contains `marker`.
fn block_with(chapter: &str, marker: &str) -> String {
    fenced_with(chapter, "rust", marker)
}

/// The code of the first block fenced as ```` ```{info} ```` in `chapter` that contains `marker`.
fn fenced_with(chapter: &str, info: &str, marker: &str) -> String {
    chapter
        .split(&format!("```{info}\n"))
        .skip(1)
        .map(|rest| rest.split("\n```").next().unwrap_or_default())
        .find(|code| code.contains(marker))
        .unwrap_or_else(|| panic!("no block with {marker:?}"))
        .to_string()
}

/// `source` without its leading `//!` lines (the example's header, which the guide replaces with
/// prose).
fn without_header(source: &str) -> String {
    source
        .lines()
        .skip_while(|line| line.starts_with("//!") || line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_applications_chapter_shows_echo_app_as_it_is() {
    let chapter = include_str!("../../guide/src/applications.md");
    let example = include_str!("../../examples/echo_app.rs");
    assert_eq!(
        block_with(chapter, "fn main() -> NodeExit").trim(),
        without_header(example).trim()
    );
}

#[test]
fn the_getting_started_chapter_shows_the_calculator_example_as_it_is() {
    let chapter = include_str!("../../guide/src/getting-started.md");
    let example = include_str!("../../examples/calculator.rs");
    assert_eq!(
        fenced_with(chapter, "rust,no_run", "fn main() -> NodeExit").trim(),
        without_header(example).trim()
    );
}

/// Every chapter the book's table of contents names exists and is compiled as a doc-test by this
/// crate, so no chapter's code can rot unnoticed.
#[test]
fn every_chapter_in_the_summary_exists_and_is_doc_tested() {
    let summary = include_str!("../../guide/src/SUMMARY.md");
    let doc_tests = include_str!("../src/lib.rs");
    let chapters: Vec<&str> = summary
        .lines()
        .filter_map(|line| line.split("](").nth(1)?.split(')').next())
        .collect();
    assert!(chapters.len() >= 7, "{chapters:?}");
    let guide = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../guide/src");
    for chapter in chapters {
        assert!(
            guide.join(chapter).is_file(),
            "SUMMARY.md names {chapter}, which does not exist"
        );
        let included = format!("include_str!(\"../../guide/src/{chapter}\")");
        assert!(
            doc_tests.contains(&included),
            "{chapter} is not compiled as a doc-test in tests/src/lib.rs"
        );
    }
}
