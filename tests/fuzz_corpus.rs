//! Replays the committed fuzz corpora (fuzz/corpus/<target>/, minimized with `cargo fuzz cmin`)
//! and the crash reproducers (fuzz/regressions/<target>/) under plain `cargo test` on stable,
//! through the same invariant checks the fuzz targets run (fix_migrations::invariants).

use std::fs;
use std::path::{Path, PathBuf};

use arbitrary::{Arbitrary, Unstructured};
use fix_migrations::config::Config;
use fix_migrations::invariants;
use fix_migrations::parse;

#[path = "../fuzz/shared.rs"]
mod shared;

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files: Vec<PathBuf> = ["corpus", "regressions"]
        .iter()
        .map(|kind| fuzz.join(kind).join(target))
        .filter(|dir| dir.is_dir())
        .flat_map(|dir| fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Run every input of `target` through `check`; fail with the list of broken ones.
fn replay(target: &str, check: impl Fn(&[u8]) -> Result<(), String>) {
    let files = inputs(target);
    assert!(
        files.len() >= 10,
        "{target}: only {} corpus files",
        files.len()
    );
    let broken: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let bytes = fs::read(path).unwrap();
            check(&bytes)
                .err()
                .map(|why| format!("{}: {why}", path.display()))
        })
        .collect();
    println!("{target}: {} inputs replayed", files.len());
    assert!(broken.is_empty(), "{}", broken.join("\n\n"));
}

#[test]
fn migration_corpus() {
    let schema = shared::fixture_schema();
    replay("migration", |bytes| {
        invariants::check_migration(bytes, &schema, &Config::default())
    });
}

#[test]
fn models_corpus() {
    replay("models", |bytes| {
        invariants::check_models(bytes, shared::MIGRATIONS)
    });
}

/// As libfuzzer-sys feeds a typed target: the whole input to `arbitrary_take_rest`, inputs it
/// can't build a value from skipped.
fn render(bytes: &[u8]) -> Option<String> {
    shared::Migration::arbitrary_take_rest(Unstructured::new(bytes))
        .ok()
        .map(|m| m.render())
}

#[test]
fn structured_corpus() {
    let schema = shared::fixture_schema();
    replay("structured", |bytes| {
        let Some(text) = render(bytes) else {
            return Ok(());
        };
        invariants::check_migration(text.as_bytes(), &schema, &Config::default())
            .map_err(|why| format!("{why}\n--- rendered input\n{text}"))
    });
}

/// The generator is only worth its keep if what it renders parses and gets edits.
#[test]
fn structured_corpus_reaches_the_fixer() {
    let schema = shared::fixture_schema();
    let (mut rendered, mut parsed, mut edited) = (0, 0, 0);
    for path in inputs("structured") {
        let Some(text) = render(&fs::read(path).unwrap()) else {
            continue;
        };
        rendered += 1;
        let Ok(file) = parse::parse_text(Path::new("m.py"), text) else {
            continue;
        };
        parsed += 1;
        if !invariants::plan_edits(&file, &schema, &Config::default()).is_empty() {
            edited += 1;
        }
    }
    println!("structured: {rendered} rendered, {parsed} parse, {edited} get edits");
    assert!(
        parsed * 2 > rendered,
        "most rendered migrations should parse"
    );
    assert!(edited * 5 > parsed, "too few rendered migrations get edits");
}
