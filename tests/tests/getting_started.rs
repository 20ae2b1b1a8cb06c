//! The Getting started chapter, followed as a new user would: its `Cargo.toml` and `main.rs` become
//! a crate of their own, outside this workspace, depending on ferrotp by path; it is built and run,
//! and what it prints must be what the chapter says it prints.

use std::{path::Path, process::Command};

const CHAPTER: &str = include_str!("../../guide/src/getting-started.md");

/// The body of the first fenced block whose info string is `info` and whose text contains `marker`.
fn block<'a>(info: &str, marker: &str) -> &'a str
where
    'static: 'a,
{
    let fence = format!("```{info}\n");
    CHAPTER
        .match_indices(&fence)
        .map(|(at, _)| {
            let body = &CHAPTER[at + fence.len()..];
            &body[..body.find("```").expect("an unclosed code block")]
        })
        .find(|body| body.contains(marker))
        .unwrap_or_else(|| panic!("no ```{info} block containing {marker:?} in the chapter"))
}

#[test]
fn the_chapter_project_builds_runs_and_prints_what_the_chapter_says() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let project = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hello-ferrotp");
    std::fs::create_dir_all(project.join("src")).expect("create the project");

    let manifest = block("toml", "[dependencies]");
    assert!(manifest.contains(r#"ferrotp = { path = "../ferrotp/runtime" }"#));
    let runtime = workspace.join("runtime");
    let manifest = manifest.replace(
        "../ferrotp/runtime",
        runtime.to_str().expect("a UTF-8 path"),
    );
    // The project sits under this workspace's target directory: an empty [workspace] keeps cargo
    // from taking it for a member. The workspace's lock file pins the same dependency versions,
    // so the build needs no network and reuses nothing it should not.
    std::fs::write(project.join("Cargo.toml"), manifest + "\n[workspace]\n").expect("write");
    std::fs::copy(workspace.join("Cargo.lock"), project.join("Cargo.lock")).expect("copy the lock");
    std::fs::write(
        project.join("src/main.rs"),
        block("rust,no_run", "fn main()"),
    )
    .expect("write");

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["run", "--quiet", "--offline"])
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", project.join("target"))
        .env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE")
        .env("NO_COLOR", "1")
        .output()
        .expect("run cargo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the project failed: {}\n{stdout}\n{stderr}",
        output.status
    );

    assert_eq!(
        stdout,
        block("text", "client: 10 + 5"),
        "stdout differs from the chapter's"
    );

    // Log lines start with a timestamp the chapter leaves out; everything after it must match,
    // line for line and in order, and nothing else may be printed.
    let logs: Vec<&str> = stderr
        .lines()
        .map(|line| {
            line.split_once(' ')
                .map_or(line, |(_, rest)| rest)
                .trim_start()
        })
        .collect();
    let expected: Vec<&str> = block("text", "WARN").lines().collect();
    assert_eq!(
        logs, expected,
        "the logs differ from the chapter's:\n{stderr}"
    );
}
