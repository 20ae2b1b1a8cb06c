//! The runtime's layers stay visible: the process core (`runtime/src/process/`) names nothing of
//! the layers above it, and the call layer (`runtime/src/calls/`) nothing of the behaviours above
//! it. Distribution will plug into the core's send, link and monitor through one seam; a stray
//! `use crate::gen_server` in the core would undo that silently, so this test reads the sources.

use std::path::Path;

/// The crate's top-level modules and public items of each layer, as the code names them after
/// `crate::`.
const CALLS: &[&str] = &[
    "calls",
    "call_timer",
    "dispatch",
    "reply",
    "reply_slot",
    "request",
    "CallError",
    "Request",
    "ReplyTo",
    "Caller",
    "Reply",
    "Encoded",
    "call",
    "call_timeout",
    "cast",
    "request_timeout",
    "DEFAULT_TIMEOUT",
    "INFINITY",
];
const BEHAVIOURS: &[&str] = &[
    "gen_server",
    "supervisor",
    "application",
    "node",
    "GenServer",
    "ServerRef",
    "NamedRef",
    "Start",
    "StartError",
    "Starting",
    "LookupError",
];

/// Process groups sit above the core and above distribution.
const GROUPS: &[&str] = &["pg"];

/// The first path segment of everything `text` names after `crate::`, including each item of a
/// `use crate::{a::b, c, d::{e, f}}` group.
fn crate_paths(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group: split on commas at brace depth 0.
            let (mut depth, mut start) = (0usize, 0usize);
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        names.push(first_segment(&group[start..i]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        names.push(first_segment(&group[start..i]));
                        start = i + 1;
                    }
                    _ => {}
                }
            }
        } else {
            names.push(first_segment(rest));
        }
    }
    names.retain(|name| !name.is_empty());
    names
}

fn first_segment(path: &str) -> String {
    path.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Every `crate::` name in the `.rs` files under `folder` that is one of `forbidden`, as
/// `file: name`.
fn violations(folder: &str, forbidden: &[&str]) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../runtime/src")
        .join(folder);
    let mut found = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no sources in {}", dir.display());
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a readable source");
        for name in crate_paths(&text) {
            if forbidden.contains(&name.as_str()) {
                found.push(format!("{}: crate::{name}", file.display()));
            }
        }
    }
    found
}

#[test]
fn the_parser_sees_groups_nested_groups_and_single_paths() {
    let text = "use crate::{a::b, c, d::{e, f}};\nuse crate::g::H;\n/// [`x`](crate::ReplyTo)";
    assert_eq!(crate_paths(text), ["a", "c", "d", "g", "ReplyTo"]);
}

#[test]
fn the_process_core_names_no_layer_above_it() {
    let forbidden = [CALLS, BEHAVIOURS, GROUPS].concat();
    let found = violations("process", &forbidden);
    assert!(
        found.is_empty(),
        "the process core names a layer above it; give that layer a hook in the core instead \
         (as Tag and ExitWatch are):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_call_layer_names_no_behaviour() {
    let found = violations("calls", BEHAVIOURS);
    assert!(
        found.is_empty(),
        "the call layer names a behaviour above it:\n{}",
        found.join("\n")
    );
}

#[test]
fn distribution_names_no_process_group() {
    let found = violations("dist", GROUPS);
    assert!(
        found.is_empty(),
        "distribution names the process groups above it:\n{}",
        found.join("\n")
    );
}
