//! The promises a run keeps for any input, as checks that the fuzzers (fuzz/), the corpus replay
//! test (tests/fuzz_corpus.rs) and the span tests share, so all three judge by the same rules:
//!
//! - bad input gets an error that names the file, never a panic;
//! - a file that parses gets edits the tool accepts itself (in range, not overlapping, and a
//!   result that still parses);
//! - every byte outside the edited spans is kept, and so are the file's line endings;
//! - a second run changes nothing.

use std::path::Path;

use crate::config::Config;
use crate::fix::{self, Edit};
use crate::migrations;
use crate::models::{self, Schema};
use crate::parse::{self, SourceFile};

/// What the checks call the file in messages.
pub const FILE_NAME: &str = "fuzz.py";

/// Run a migration's bytes through parse -> scan -> plan -> fixed text and check every promise.
/// Ok for input the tool rejects with a proper error.
pub fn check_migration(bytes: &[u8], schema: &Schema, config: &Config) -> Result<(), String> {
    let Some(file) = parse_or_clean_error(bytes)? else {
        return Ok(());
    };
    let edits = plan_edits(&file, schema, config);
    let fixed = fix::fixed_text(&file, edits.clone())
        .map_err(|e| format!("the tool refused its own edits: {e:#}"))?;
    check_outside_edits(&file.text, &fixed, &edits)?;
    check_line_endings(&file.text, &fixed)?;
    let refixed = parse::parse_text(Path::new(FILE_NAME), fixed.clone())
        .map_err(|e| format!("the fixed text does not parse: {e:#}"))?;
    let again = fix::fixed_text(&refixed, plan_edits(&refixed, schema, config))
        .map_err(|e| format!("the second run refused its own edits: {e:#}"))?;
    if again != fixed {
        return Err(format!(
            "a second run changed the file again:\n--- first run\n{fixed}\n--- second run\n{again}"
        ));
    }
    Ok(())
}

/// Read a model file's bytes into a schema (no panic, errors name the file), then run each of
/// `migrations` through `check_migration` against that schema, so odd models reach the policy
/// and the fixer.
pub fn check_models(bytes: &[u8], migrations: &[&str]) -> Result<(), String> {
    let Some(file) = parse_or_clean_error(bytes)? else {
        return Ok(());
    };
    let schema = models::read_models(&[file]);
    for text in migrations {
        check_migration(text.as_bytes(), &schema, &Config::default())?;
    }
    Ok(())
}

/// The edits the tool would apply to a file.
pub fn plan_edits(file: &SourceFile, schema: &Schema, config: &Config) -> Vec<Edit> {
    fix::plan(file, &migrations::scan(file), schema, config).edits
}

/// The parsed file, None when the tool rejects it with an error naming the file, Err when the
/// rejection is not such an error.
fn parse_or_clean_error(bytes: &[u8]) -> Result<Option<SourceFile>, String> {
    match parse::parse_source(Path::new(FILE_NAME), bytes.to_vec()) {
        Ok(file) => Ok(Some(file)),
        Err(err) => {
            let message = format!("{err:#}");
            if message.starts_with(&format!("{FILE_NAME}:")) {
                Ok(None)
            } else {
                Err(format!("an error that does not name the file: {message}"))
            }
        }
    }
}

/// `fixed` is `original` with each edit's range replaced by its content, and nothing else: the
/// bytes between edits are the original's, in order.
pub fn check_outside_edits(original: &str, fixed: &str, edits: &[Edit]) -> Result<(), String> {
    let mut edits = edits.to_vec();
    edits.sort_by_key(|e| (e.range.start, e.range.end));
    edits.dedup();
    let mut cursor = 0; // in original
    let mut at = 0; // in fixed
    for edit in &edits {
        let range = &edit.range;
        if range.start < cursor || range.end < range.start || range.end > original.len() {
            return Err(format!(
                "edit {range:?} overlaps another or lies outside the file"
            ));
        }
        let kept = &original[cursor..range.start];
        if !fixed[at..].starts_with(kept) {
            return Err(format!(
                "bytes {cursor}..{} changed outside the edits",
                range.start
            ));
        }
        at += kept.len();
        if !fixed[at..].starts_with(edit.content.as_str()) {
            return Err(format!("edit {range:?} was not applied as planned"));
        }
        at += edit.content.len();
        cursor = range.end;
    }
    if fixed[at..] != original[cursor..] {
        return Err(format!(
            "bytes after offset {cursor} changed outside the edits"
        ));
    }
    Ok(())
}

/// A file whose lines all end in CRLF keeps doing so; a UTF-8 byte order mark stays first.
pub fn check_line_endings(original: &str, fixed: &str) -> Result<(), String> {
    let only_crlf = |text: &str| {
        text.contains("\r\n")
            && text
                .match_indices('\n')
                .all(|(i, _)| text[..i].ends_with('\r'))
    };
    if only_crlf(original) && !only_crlf(fixed) {
        return Err("a CRLF file got a bare LF line break".into());
    }
    if original.starts_with('\u{feff}') != fixed.starts_with('\u{feff}') {
        return Err("the byte order mark was added or lost".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(range: std::ops::Range<usize>, content: &str) -> Edit {
        Edit {
            range,
            content: content.into(),
        }
    }

    #[test]
    fn outside_edits_catches_a_stray_change() {
        let edits = [edit(2..3, "XY")];
        assert!(check_outside_edits("abcdef", "abXYdef", &edits).is_ok());
        assert!(check_outside_edits("abcdef", "abXYdeF", &edits).is_err());
        assert!(check_outside_edits("abcdef", "aXYdef", &edits).is_err());
        assert!(check_outside_edits("abcdef", "abcdef", &edits).is_err());
    }

    #[test]
    fn line_endings_catch_a_bare_lf() {
        assert!(check_line_endings("a\r\nb\r\n", "a\r\nx\r\nb\r\n").is_ok());
        assert!(check_line_endings("a\r\nb\r\n", "a\r\nx\nb\r\n").is_err());
        assert!(check_line_endings("\u{feff}a\n", "a\n").is_err());
    }

    #[test]
    fn a_parse_error_is_clean() {
        let schema = Schema::default();
        assert!(check_migration(b"def f(:\n", &schema, &Config::default()).is_ok());
        assert!(check_migration(b"x = '\xff'\n", &schema, &Config::default()).is_ok());
    }
}
