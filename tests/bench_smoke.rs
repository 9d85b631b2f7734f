//! The benchmark's generator and the cache, at a tiny size: a correctness test, never a timing
//! one. The generated project must be read as the generator wrote it (every foreign key site
//! reported), and a run from the cache must print exactly what a run without it prints.

use std::path::{Path, PathBuf};
use std::process::Command;

fn python() -> PathBuf {
    std::env::var_os("FIX_MIGRATIONS_E2E_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"))
}

fn generate(out: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/generate.py");
    let done = Command::new(python())
        .arg(script)
        .arg(out)
        .args(["--migrations", "60", "--model-files", "8", "--seed", "3"])
        .output()
        .expect("python3 runs the generator");
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    serde_json::from_slice(&done.stdout).expect("the generator prints its manifest")
}

/// (exit code, stdout, stderr) of the tool run on `project` with `args`.
fn run(project: &Path, cache: &Path, args: &[&str]) -> (i32, String, String) {
    let done = Command::new(env!("CARGO_BIN_EXE_fix-migrations"))
        .arg("--project")
        .arg(project)
        .args(args)
        .env("FIX_MIGRATIONS_CACHE_DIR", cache)
        .current_dir(project)
        .output()
        .expect("the tool runs");
    (
        done.status.code().expect("an exit code"),
        String::from_utf8(done.stdout).expect("UTF-8 stdout"),
        String::from_utf8(done.stderr).expect("UTF-8 stderr"),
    )
}

#[test]
fn generated_project_is_read_whole_and_the_cache_changes_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let project = temp.path().join("project");
    let cache = temp.path().join("cache");
    let manifest = generate(&project);
    let expected_sites = manifest["fk_sites"].as_u64().unwrap();
    assert!(
        expected_sites > 20,
        "the tiny project still has keys: {manifest}"
    );

    let json = ["--all", "--dry-run", "--format", "json"];
    let uncached = run(&project, &cache, &[&json[..], &["--no-cache"]].concat());
    assert!(!cache.exists(), "--no-cache wrote a cache");
    let cold = run(&project, &cache, &json);
    assert!(cache.join("CACHEDIR.TAG").is_file());
    assert_eq!(
        std::fs::read_to_string(cache.join(".gitignore"))
            .unwrap()
            .lines()
            .last(),
        Some("*")
    );
    let warm = run(&project, &cache, &json);

    let report: serde_json::Value = serde_json::from_str(&uncached.1).unwrap();
    let sites = report["foreign_keys"].as_array().unwrap().len() as u64;
    assert_eq!(sites, expected_sites, "{}", uncached.2);
    assert_eq!(
        report["summary"]["files"].as_u64(),
        manifest["migration_files"].as_u64()
    );
    assert_eq!(report["summary"]["errors"].as_u64(), Some(0));
    assert_eq!(uncached, cold, "a cold run differs from --no-cache");
    assert_eq!(
        uncached, warm,
        "a run from the cache differs from --no-cache"
    );

    // Text output with the trails (kept in the cache although JSON leaves them out).
    let text = ["--all", "--dry-run", "--explain"];
    let uncached = run(&project, &cache, &[&text[..], &["--no-cache"]].concat());
    let cold = run(&project, &cache, &text);
    assert_eq!(uncached, cold);
    assert_eq!(uncached, run(&project, &cache, &text));

    // A corrupt cache is ignored and rewritten, never trusted.
    // One build's entries live in one `v<version>-<source hash>` directory.
    let builds: Vec<PathBuf> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(builds.len(), 1, "{builds:?}");
    for shard in std::fs::read_dir(&builds[0]).unwrap() {
        std::fs::write(shard.unwrap().path(), b"\xff\x00garbage").unwrap();
    }
    assert_eq!(uncached, run(&project, &cache, &text));
    assert_eq!(uncached, run(&project, &cache, &text));

    // A changed migration is planned afresh, not taken from the cache.
    let versions = project.join("migrations/versions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&versions)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let with_key = files
        .iter()
        .find(|p| std::fs::read_to_string(p).unwrap().contains("], ),"))
        .expect("a one-line create_table key");
    let source = std::fs::read_to_string(with_key).unwrap();
    std::fs::write(
        with_key,
        source.replacen("], ),", "], ondelete='RESTRICT'),", 1),
    )
    .unwrap();
    let after_uncached = run(&project, &cache, &[&json[..], &["--no-cache"]].concat());
    let after_cached = run(&project, &cache, &json);
    assert_ne!(after_uncached.1, uncached.1);
    assert_eq!(after_uncached, after_cached);
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// History is read only for a file that drops a key in upgrade(); such a file's plan depends on
/// it (here: downgrade() restores the dropped key's old rules), and its cached plan must be the
/// one made with history. Every other file is planned without reading history at all.
#[test]
fn a_file_that_needs_history_is_planned_with_it_cold_warm_and_uncached() {
    let temp = tempfile::tempdir().unwrap();
    let project = temp.path().join("project");
    let cache = temp.path().join("cache");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/repair"),
        &project,
    );
    let versions = project.join("migrations/versions");
    let merge = std::fs::read_to_string(versions.join("3c0000000004_merge.py")).unwrap();
    let header = merge
        .replace("3c0000000004", "5e0000000006")
        .replace("('2a0000000002', '2b0000000003')", "'4d0000000005'")
        .replace("2a0000000002, 2b0000000003", "4d0000000005");
    let header = &header[..header.find("def upgrade").unwrap()];
    std::fs::write(
        versions.join("5e0000000006_material_cascade.py"),
        format!(
            "{header}def upgrade() -> None:\n    with op.batch_alter_table('items', schema=None) as batch_op:\n        batch_op.drop_constraint('items_material_id_fkey', type_='foreignkey')\n        batch_op.create_foreign_key('items_material_id_fkey', 'materials', ['material_id'], ['id'], ondelete='CASCADE')\n\n\ndef downgrade() -> None:\n    with op.batch_alter_table('items', schema=None) as batch_op:\n        batch_op.drop_constraint('items_material_id_fkey', type_='foreignkey')\n        batch_op.create_foreign_key('items_material_id_fkey', 'materials', ['material_id'], ['id'])\n"
        ),
    )
    .unwrap();
    for args in [
        &["--all", "--dry-run", "--explain"][..],
        &["--all", "--dry-run", "--format", "json"][..],
    ] {
        let uncached = run(&project, &cache, &[args, &["--no-cache"]].concat());
        assert!(
            uncached.2.contains(
                "downgrade() restores the rules the key had before (history: migrations/versions/4d0000000005_items.py:35)"
            ) || uncached.1.contains("downgrade() restores the rules the key had before"),
            "{}{}",
            uncached.1,
            uncached.2
        );
        assert!(
            uncached.1.contains("ondelete='SET NULL')"),
            "{}",
            uncached.1
        );
        let cold = run(&project, &cache, args);
        let warm = run(&project, &cache, args);
        assert_eq!(uncached, cold, "a cold run differs from --no-cache");
        assert_eq!(uncached, warm, "a warm run differs from --no-cache");
    }
}

/// Every `.py` file under `dir`, sorted.
fn python_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = vec![];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(python_files(&path));
        } else if path.extension().is_some_and(|e| e == "py") {
            found.push(path);
        }
    }
    found.sort();
    found
}

fn set_mtime(path: &Path, mtime: std::time::SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
}

/// A warm run trusts a file's recorded hash while its size and mtime are unchanged (it reads
/// only the files whose diff it prints), and hashes again a file whose mtime was too close to
/// the recording to vouch for it: a same-size edit that kept the mtime is still seen then.
#[test]
fn recorded_hashes_are_trusted_only_when_the_mtime_is_settled() {
    let temp = tempfile::tempdir().unwrap();
    let project = temp.path().join("project");
    let cache = temp.path().join("cache");
    generate(&project);
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for file in python_files(&project) {
        set_mtime(&file, an_hour_ago);
    }
    let json = ["--all", "--dry-run", "--format", "json"];
    let uncached = run(&project, &cache, &[&json[..], &["--no-cache"]].concat());
    assert_eq!(uncached, run(&project, &cache, &json), "cold");
    assert_eq!(
        uncached,
        run(&project, &cache, &json),
        "warm, hashes trusted"
    );

    // An edit that moves the mtime: planned afresh.
    let versions = project.join("migrations/versions");
    let with_key = python_files(&versions)
        .into_iter()
        .find(|p| std::fs::read_to_string(p).unwrap().contains("], ),"))
        .expect("a one-line create_table key");
    let source = std::fs::read_to_string(&with_key).unwrap();
    std::fs::write(
        &with_key,
        source.replacen("], ),", "], ondelete='RESTRICT'),", 1),
    )
    .unwrap();
    let edited = run(&project, &cache, &[&json[..], &["--no-cache"]].concat());
    assert_ne!(edited.1, uncached.1);
    assert_eq!(edited, run(&project, &cache, &json), "after an edit");

    // The run just recorded the edited file's hash within two seconds of its mtime. Change it
    // again to text of the same size and put the mtime back: size and mtime are as recorded,
    // but the record is racy, so the file is hashed and the change seen.
    let recorded_mtime = std::fs::metadata(&with_key).unwrap().modified().unwrap();
    let same_size = source.replacen("], ),", "], ondelete='SET NULL'),", 1);
    assert_eq!(
        same_size.len(),
        std::fs::metadata(&with_key).unwrap().len() as usize
    );
    std::fs::write(&with_key, &same_size).unwrap();
    set_mtime(&with_key, recorded_mtime);
    let racy = run(&project, &cache, &[&json[..], &["--no-cache"]].concat());
    assert_ne!(racy.1, edited.1);
    assert_eq!(
        racy,
        run(&project, &cache, &json),
        "a racy record is not trusted"
    );
}
