//! Every `coalesce` command shown in README.md and docs/*.md (in `sh` code
//! blocks, as `coalesce ...` or `cargo run ... -- ...`) parses with this
//! build's command line, so a renamed flag or a placeholder such as `...`
//! cannot hide in the docs. Parsing only: nothing runs, no build needed.

use super::Cli;
use clap::Parser;
use std::path::{Path, PathBuf};

/// The Markdown files whose commands are checked.
fn documents() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    let docs = std::fs::read_dir(root.join("docs")).expect("the docs directory");
    let mut pages: Vec<PathBuf> = docs
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    pages.sort();
    files.extend(pages);
    files
}

/// The command lines of the `sh` code blocks of a Markdown text, with
/// `\`-continued lines joined and `#` comments removed.
fn shell_lines(markdown: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for line in markdown.lines() {
        let trimmed = line.trim();
        if let Some(info) = trimmed.strip_prefix("```") {
            in_sh = !in_sh && matches!(info, "sh" | "bash" | "shell" | "console");
            continue;
        }
        if !in_sh {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(start) => {
                pending.push_str(start);
                pending.push(' ');
            }
            None => {
                pending.push_str(trimmed);
                lines.push(std::mem::take(&mut pending));
            }
        }
    }
    lines
}

/// Split a command line into words as `sh` does for the quoting the docs
/// use (single and double quotes); stops at an unquoted `#`.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_default().push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_default();
            }
            (None, '#') if word.is_none() => break,
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_default().push(c),
        }
    }
    words.extend(word);
    words
}

/// The arguments a line passes to the `coalesce` binary, if it runs it:
/// `coalesce ARGS` or `cargo run [flags] -- ARGS` (not `--example`), after
/// any `NAME=value` environment assignments.
fn coalesce_args(line: &str) -> Option<Vec<String>> {
    let words = words(line);
    let mut rest = words
        .iter()
        .skip_while(|w| w.contains('=') && !w.starts_with('-'));
    match rest.next()?.as_str() {
        "coalesce" => Some(rest.cloned().collect()),
        "cargo" if rest.next()? == "run" => {
            let before: Vec<&String> = rest.clone().take_while(|w| *w != "--").collect();
            if before.iter().any(|w| *w == "--example" || *w == "--bin") {
                return None;
            }
            Some(rest.skip_while(|w| *w != "--").skip(1).cloned().collect())
        }
        _ => None,
    }
}

#[test]
fn every_documented_command_parses() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for file in documents() {
        let text = std::fs::read_to_string(&file).expect("a readable document");
        for line in shell_lines(&text) {
            let Some(args) = coalesce_args(&line) else {
                continue;
            };
            checked += 1;
            let argv = std::iter::once("coalesce".to_owned()).chain(args);
            if let Err(error) = Cli::try_parse_from(argv) {
                let name = file.file_name().unwrap_or_default().to_string_lossy();
                let error = error.render().to_string();
                let first = error.lines().next().unwrap_or_default().to_owned();
                failures.push(format!("{name}: `{line}`: {first}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "documented commands that do not parse:\n{}",
        failures.join("\n")
    );
    // README's own commands alone are more than this; a lower count means the extraction broke.
    assert!(checked >= 8, "only {checked} commands found");
}

#[test]
fn commands_are_extracted_as_the_shell_would_split_them() {
    let markdown = "text\n```sh\ncargo run --release -- tool x --user-id u '{\"a\": 1}'  # comment\n\
        DATABASE_URL=postgres://h/d coalesce mcp \\\n  --user-id 1\ncargo run --example orders\n```\n\
        ```rust\ncoalesce not shell\n```\n";
    let lines = shell_lines(markdown);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(
        coalesce_args(&lines[0]),
        Some(vec![
            "tool".into(),
            "x".into(),
            "--user-id".into(),
            "u".into(),
            "{\"a\": 1}".into()
        ])
    );
    assert_eq!(
        coalesce_args(&lines[1]),
        Some(vec!["mcp".into(), "--user-id".into(), "1".into()])
    );
    assert_eq!(coalesce_args(&lines[2]), None);
}
