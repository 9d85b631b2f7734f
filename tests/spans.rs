//! Every fixture and example migration, as written, with CRLF line breaks and with a UTF-8 byte
//! order mark: the fixed text is the original with the plan's edits applied and nothing else
//! (every byte outside the edited spans equal), the line breaks and the mark are kept, and a
//! second run changes nothing.

use std::fs;
use std::path::{Path, PathBuf};

use fix_migrations::config::Config;
use fix_migrations::invariants;
use fix_migrations::models::{self, Schema};
use fix_migrations::parse;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn schema(models_file: &Path) -> Schema {
    let file = parse::parse_source(models_file, fs::read(models_file).unwrap()).unwrap();
    models::read_models(&[file])
}

fn python_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
        .collect();
    files.sort();
    files
}

/// (migration, the schema of its models): the shape fixtures and every example.
fn migrations() -> Vec<(PathBuf, Schema)> {
    let mut out = Vec::new();
    let shapes = root().join("tests/fixtures/shapes");
    let shapes_schema = schema(&shapes.join("models.py"));
    for file in python_files(&shapes.join("migrations")) {
        out.push((file, shapes_schema.clone()));
    }
    for example in fs::read_dir(root().join("examples")).unwrap() {
        let example = example.unwrap().path();
        if !example.is_dir() {
            continue;
        }
        let example_schema = schema(&example.join("models.py"));
        for file in python_files(&example.join("migrations/versions")) {
            out.push((file, example_schema.clone()));
        }
    }
    out
}

/// The fixed text of `text`, checked against every invariant.
fn fixed(text: &str, schema: &Schema, what: &str) -> String {
    invariants::check_migration(text.as_bytes(), schema, &Config::default())
        .unwrap_or_else(|why| panic!("{what}: {why}"));
    let file = parse::parse_text(Path::new(what), text.to_string()).unwrap();
    let edits = invariants::plan_edits(&file, schema, &Config::default());
    fix_migrations::fix::fixed_text(&file, edits).unwrap()
}

#[test]
fn every_fixture_and_example_is_edited_only_inside_its_spans() {
    let all = migrations();
    assert!(all.len() >= 11, "found only {} migrations", all.len());
    let mut changed = 0;
    for (path, schema) in &all {
        let name = path.strip_prefix(root()).unwrap().display().to_string();
        let original = fs::read_to_string(path).unwrap();
        let lf = original.replace("\r\n", "\n");
        let crlf = lf.replace('\n', "\r\n");

        let fixed_original = fixed(&original, schema, &name);
        let fixed_lf = fixed(&lf, schema, &format!("{name} (LF)"));
        let fixed_crlf = fixed(&crlf, schema, &format!("{name} (CRLF)"));
        let fixed_bom = fixed(
            &format!("\u{feff}{original}"),
            schema,
            &format!("{name} (BOM)"),
        );
        let fixed_bom_crlf = fixed(
            &format!("\u{feff}{crlf}"),
            schema,
            &format!("{name} (BOM, CRLF)"),
        );

        // The same edits whatever the line breaks and the mark: only the breaks differ.
        assert_eq!(fixed_crlf.replace("\r\n", "\n"), fixed_lf, "{name}: CRLF");
        assert_eq!(
            fixed_bom,
            format!("\u{feff}{fixed_original}"),
            "{name}: BOM"
        );
        assert_eq!(
            fixed_bom_crlf,
            format!("\u{feff}{fixed_crlf}"),
            "{name}: BOM, CRLF"
        );
        if fixed_original != original {
            changed += 1;
        }
    }
    println!(
        "{} migrations, {changed} with edits, each in 5 variants",
        all.len()
    );
    assert!(changed >= 8, "only {changed} migrations were edited at all");
}
