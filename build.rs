//! Names the build for `fix-migrations --version`: the package version, plus the git commit and
//! its date when the source is a git checkout of this project. An sdist, a wheel built from one,
//! or a crate tarball has no .git: the version then says so instead of failing the build.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let build = match git_commit(&manifest_dir) {
        Some(commit) => format!("{version} (git {} {})", commit.hash, commit.date),
        None => format!("{version} (no git metadata)"),
    };
    println!("cargo:rustc-env=FIX_MIGRATIONS_BUILD_VERSION={build}");
    println!(
        "cargo:rustc-env=FIX_MIGRATIONS_SOURCE_HASH={:016x}",
        source_hash(&manifest_dir)
    );
}

/// A hash of the sources and the locked dependencies: the cache keeps each build's facts
/// apart, since a build with the same version number (a git checkout between releases, an
/// edited tree) may decide differently.
fn source_hash(manifest_dir: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut files = vec![manifest_dir.join("Cargo.lock")];
    let mut dirs = vec![manifest_dir.join("src")];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for file in &files {
        file.strip_prefix(manifest_dir)
            .unwrap_or(file)
            .hash(&mut hasher);
        std::fs::read(file).unwrap_or_default().hash(&mut hasher);
    }
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=Cargo.lock");
    hasher.finish()
}

struct Commit {
    hash: String,
    date: String,
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// The checked-out commit, only when `dir` is the top of its own git work tree: an unpacked
/// sdist that happens to sit inside some other repository must not borrow that one's commit.
fn git_commit(dir: &Path) -> Option<Commit> {
    let top = git(dir, &["rev-parse", "--show-toplevel"])?;
    let same_dir = match (Path::new(&top).canonicalize(), dir.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same_dir {
        return None;
    }
    let hash = git(dir, &["rev-parse", "--short=7", "HEAD"])?;
    let date = git(dir, &["log", "-1", "--format=%cd", "--date=short", "HEAD"])?;
    watch_head(dir);
    Some(Commit { hash, date })
}

/// Rebuild when HEAD moves: HEAD itself, the branch it points at, and packed-refs.
/// Only existing files are named; cargo would rerun forever for a missing one.
fn watch_head(dir: &Path) {
    let mut refs = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        refs.push(branch);
    }
    for r in refs {
        if let Some(path) = git(
            dir,
            &["rev-parse", "--path-format=absolute", "--git-path", &r],
        ) && Path::new(&path).is_file()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
