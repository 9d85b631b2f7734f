//! The benchmark's floor: read and tree-sitter-parse only the files the tool has to parse (the
//! migrations holding a foreign key marker and the model files), with rayon on every core, and
//! nothing else. `cargo bench --bench parse_floor -- PROJECT` prints one JSON line.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;

use fix_migrations::{discover, migrations, parse};

// The tool's allocator (src/main.rs), so that the floor is the tool's parse and nothing else.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    parse::use_mimalloc_for_tree_sitter();
    let project = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .expect("usage: parse_floor PROJECT");
    let start = Instant::now();
    let versions = project.join("migrations").join("versions");
    let mut migration_files: Vec<PathBuf> = std::fs::read_dir(&versions)
        .expect("a versions directory")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
        .collect();
    migration_files.sort();
    let model_files =
        discover::model_files(&project, &[], &[versions]).expect("model files to be found");
    let parse_all = |files: &[PathBuf], keep: fn(&[u8]) -> bool| -> (usize, usize) {
        files
            .par_iter()
            .map(|path| parse_one(path, keep))
            .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    };
    let (migrations_parsed, migration_bytes) =
        parse_all(&migration_files, migrations::may_hold_keys);
    let (models_parsed, model_bytes) = parse_all(&model_files, |_| true);
    let seconds = start.elapsed().as_secs_f64();
    let bytes = migration_bytes + model_bytes;
    println!(
        "{{\"migrations_parsed\": {migrations_parsed}, \"models_parsed\": {models_parsed}, \"bytes_parsed\": {bytes}, \"seconds\": {seconds:.3}, \"mb_per_s\": {:.1}}}",
        bytes as f64 / 1e6 / seconds
    );
}

/// (1, bytes) when the file passed `keep` and parsed, else (0, 0).
fn parse_one(path: &Path, keep: fn(&[u8]) -> bool) -> (usize, usize) {
    let bytes = std::fs::read(path).expect("a readable file");
    if !keep(&bytes) {
        return (0, 0);
    }
    let len = bytes.len();
    let text = String::from_utf8(bytes).expect("UTF-8 source");
    let tree = parse::parse_python(&text, None).expect("a tree");
    assert!(
        !tree.root_node().has_error(),
        "{}: syntax error",
        path.display()
    );
    (1, len)
}
