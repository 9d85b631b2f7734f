//! The benchmark's floor: read and tree-sitter-parse only the files the tool has to parse (the
//! migrations holding a foreign key marker and the model files), with rayon on every core, and
//! nothing else. `cargo bench --bench parse_floor -- PROJECT` prints one JSON line.
//!
//! With `--read`, the same files go through the tool's own readers and nothing after them: each
//! migration parsed with the syntax checks a fix relies on and scanned for its foreign keys,
//! the model files read into one schema. No decision, edit, diff or output. Set beside the
//! floor, it shows how much of a cold run's gap to the floor the reading alone takes.
//!
//! With `--walk`, each tree is also walked once, every node visited and nothing done with it:
//! what any reader that looks at the whole tree pays before doing anything.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;

use fix_migrations::{discover, migrations, models, parse};

// The tool's allocator (src/main.rs), so that the floor is the tool's parse and nothing else.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    parse::use_mimalloc_for_tree_sitter();
    let read = std::env::args().any(|a| a == "--read");
    let walk = std::env::args().any(|a| a == "--walk");
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
            .map(|path| parse_one(path, keep, walk))
            .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    };
    let ((migrations_parsed, migration_bytes), (models_parsed, model_bytes)) = if read {
        (read_migrations(&migration_files), read_models(&model_files))
    } else {
        (
            parse_all(&migration_files, migrations::may_hold_keys),
            parse_all(&model_files, |_| true),
        )
    };
    let seconds = start.elapsed().as_secs_f64();
    let bytes = migration_bytes + model_bytes;
    println!(
        "{{\"read\": {read}, \"walk\": {walk}, \"migrations_parsed\": {migrations_parsed}, \"models_parsed\": {models_parsed}, \"bytes_parsed\": {bytes}, \"seconds\": {seconds:.3}, \"mb_per_s\": {:.1}}}",
        bytes as f64 / 1e6 / seconds
    );
}

/// (1, bytes) when the file passed `keep` and parsed, else (0, 0).
fn parse_one(path: &Path, keep: fn(&[u8]) -> bool, walk: bool) -> (usize, usize) {
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
    if walk {
        std::hint::black_box(parse::walk(tree.root_node()).count());
    }
    (1, len)
}

/// (files, bytes) of the migrations holding a marker, each parsed as the tool parses it (syntax
/// checks included) and scanned for its foreign keys.
fn read_migrations(files: &[PathBuf]) -> (usize, usize) {
    files
        .par_iter()
        .map(|path| {
            let bytes = std::fs::read(path).expect("a readable file");
            if !migrations::may_hold_keys(&bytes) {
                return (0, 0);
            }
            let len = bytes.len();
            let file = parse::parse_source(path, bytes).expect("a clean migration");
            let migration = migrations::scan(&file);
            std::hint::black_box(&migration);
            (1, len)
        })
        .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

/// (files, bytes) of the model files that define a table or a key, read into one schema as
/// the tool reads them.
fn read_models(files: &[PathBuf]) -> (usize, usize) {
    let contents: Vec<(PathBuf, Vec<u8>)> = files
        .par_iter()
        .map(|path| (path.clone(), std::fs::read(path).expect("a readable file")))
        .filter(|(_, bytes)| discover::has_table_marker(bytes))
        .collect();
    let bytes = contents.iter().map(|(_, b)| b.len()).sum();
    let contents_len = contents.len();
    let schema = models::read_models_streamed(contents).expect("clean model files");
    std::hint::black_box(&schema);
    (contents_len, bytes)
}
