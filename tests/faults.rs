//! Faults the tool meets inside `alembic revision` hooks and CI runs over whole histories, with
//! the built binary: unwritable files and directories, symlinks, paths that vanish, huge and
//! deeply nested files, byte order marks and CRLF, and a SIGKILL in the middle of `--write`.
//! The promise in every case: a clear error or a correct result, never a partial file.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{CmdOutput, manifest_dir, run, tool_bin};

fn tool(args: &[&str]) -> Command {
    let mut cmd = Command::new(tool_bin());
    cmd.env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .args(args);
    cmd
}

fn models() -> PathBuf {
    manifest_dir().join("examples/flask-notes/models.py")
}

fn flask_migration() -> String {
    fs::read_to_string(
        manifest_dir().join("examples/flask-notes/migrations/versions/0057221bd381_initial.py"),
    )
    .unwrap()
}

/// `fix-migrations --write --models <flask-notes models> PATHS...`
fn write(paths: &[&Path]) -> CmdOutput {
    let models = models();
    let mut args = vec!["--write", "--models", models.to_str().unwrap()];
    args.extend(paths.iter().map(|p| p.to_str().unwrap()));
    run(&mut tool(&args)).unwrap()
}

fn code(out: &CmdOutput) -> i32 {
    out.status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal:\n{}", out.report()))
}

/// What a clean run writes for `text`: the file fixed in a scratch directory.
fn fixed_version(name: &str, text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    fs::write(&path, text).unwrap();
    let out = write(&[&path]);
    assert_eq!(code(&out), 0, "{}", out.report());
    let fixed = fs::read_to_string(&path).unwrap();
    assert_ne!(fixed, text, "the clean run changed nothing");
    fixed
}

/// The tool's temporary files (`.fix-migrations-XXXXXX`, see fix::write_atomically) in `dir`.
/// Leftover temporary files of an atomic write (`.fix-migrations-XXXX`), not the cache
/// directory, which is meant to stay.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(".fix-migrations-") && name != fix_migrations::cache::DIR_NAME
        })
        .collect()
}

fn running_as_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .is_some_and(|ids| ids.split_whitespace().nth(1) == Some("0"))
}

#[test]
fn a_read_only_file_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("0001_initial.py");
    fs::write(&path, flask_migration()).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
    let out = write(&[&path]);
    assert_eq!(code(&out), 2, "{}", out.report());
    assert!(
        out.stderr
            .contains("0001_initial.py: read-only file; not written"),
        "{}",
        out.report()
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), flask_migration());
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o444);
    assert!(temp_files(dir.path()).is_empty());
}

/// The atomic write needs a temporary file beside the migration. Root ignores directory
/// permissions, so as root the tool runs as `nobody` (with runuser) to meet a real EACCES.
#[test]
fn a_read_only_directory_is_a_clear_error_and_the_file_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let versions = dir.path().join("versions");
    fs::create_dir(&versions).unwrap();
    let path = versions.join("0001_initial.py");
    fs::write(&path, flask_migration()).unwrap();
    // The file itself is writable by anyone: only the directory stops the write.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
    fs::set_permissions(&versions, fs::Permissions::from_mode(0o555)).unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let models = models();
    let args = [
        "--write",
        "--models",
        models.to_str().unwrap(),
        path.to_str().unwrap(),
    ];
    let mut cmd = if running_as_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "nobody", "--"]).arg(tool_bin()).args(args);
        cmd
    } else {
        tool(&args)
    };
    let out = run(&mut cmd).unwrap();
    fs::set_permissions(&versions, fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(code(&out), 2, "{}", out.report());
    assert!(
        out.stderr
            .contains("0001_initial.py: cannot create a temporary file beside it"),
        "{}",
        out.report()
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), flask_migration());
    assert!(temp_files(&versions).is_empty());
}

#[test]
fn a_symlinked_migration_has_its_target_edited_and_the_link_kept() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    let versions = dir.path().join("versions");
    fs::create_dir(&real).unwrap();
    fs::create_dir(&versions).unwrap();
    let target = real.join("0001_initial.py");
    fs::write(&target, flask_migration()).unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o640)).unwrap();
    let link = versions.join("0001_initial.py");
    std::os::unix::fs::symlink("../real/0001_initial.py", &link).unwrap();

    let out = write(&[&link]);
    assert_eq!(code(&out), 0, "{}", out.report());
    let meta = fs::symlink_metadata(&link).unwrap();
    assert!(meta.file_type().is_symlink(), "the link was replaced");
    assert_eq!(
        fs::read_link(&link).unwrap(),
        Path::new("../real/0001_initial.py")
    );
    let fixed = fs::read_to_string(&target).unwrap();
    assert_eq!(fixed, fixed_version("0001_initial.py", &flask_migration()));
    let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "permissions not kept");
    assert!(temp_files(&real).is_empty() && temp_files(&versions).is_empty());
}

/// The rename puts a new inode in place: it must carry the old file's owner and group. As
/// root the file is first given to `nobody`, so the run has someone else's file to keep.
#[test]
fn the_owner_and_group_are_kept() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("0001_initial.py");
    fs::write(&path, flask_migration()).unwrap();
    if running_as_root() {
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
    }
    let before = fs::metadata(&path).unwrap();
    let out = write(&[&path]);
    assert_eq!(code(&out), 0, "{}", out.report());
    let after = fs::metadata(&path).unwrap();
    assert_ne!(after.ino(), before.ino(), "the file was not replaced");
    assert_eq!(
        (after.uid(), after.gid()),
        (before.uid(), before.gid()),
        "owner or group changed"
    );
    assert_eq!(after.mode(), before.mode());
}

#[test]
fn a_dangling_symlink_is_a_clear_error_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("0001_initial.py");
    fs::write(&good, flask_migration()).unwrap();
    let dangling = dir.path().join("0002_gone.py");
    std::os::unix::fs::symlink("0002_deleted.py", &dangling).unwrap();
    let out = write(&[&good, &dangling]);
    assert_eq!(code(&out), 2, "{}", out.report());
    assert!(out.stderr.contains("0002_gone.py"), "{}", out.report());
    assert_eq!(fs::read_to_string(&good).unwrap(), flask_migration());
}

/// A migration deleted while the tool works through a directory of them: the run reports it or
/// fixes it, every other file is fixed, and no file is ever partial.
#[test]
fn a_file_that_vanishes_mid_run_is_an_error_or_a_correct_result() {
    let original = flask_migration();
    let fixed = fixed_version("m.py", &original);
    let mut outcomes = std::collections::BTreeMap::new();
    for round in 0..12u64 {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> = (0..200).map(|i| format!("{i:04}_m.py")).collect();
        for name in &names {
            fs::write(dir.path().join(name), &original).unwrap();
        }
        let victim = dir.path().join(&names[100]);
        let models = models();
        let child = tool(&[
            "--write",
            "--models",
            models.to_str().unwrap(),
            dir.path().to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
        std::thread::sleep(Duration::from_millis(round * 15));
        fs::remove_file(&victim).unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let exit = out.status.code().expect("not killed by a signal");
        assert!(exit == 0 || exit == 2, "exit {exit}: {stderr}");
        if exit == 2 {
            assert!(
                stderr.contains("0100_m.py"),
                "the error does not name the file: {stderr}"
            );
        }
        for name in &names {
            let path = dir.path().join(name);
            match fs::read_to_string(&path) {
                Ok(text) if path == victim => assert_eq!(text, fixed, "{name}"),
                Ok(text) => assert!(text == fixed, "{name} is not fixed"),
                Err(e) => assert_eq!(path, victim, "{name}: {e}"),
            }
        }
        assert!(temp_files(dir.path()).is_empty());
        let outcome = if exit == 0 { "fixed" } else { "error" };
        *outcomes.entry(outcome).or_insert(0) += 1;
    }
    println!("vanishing file, 12 rounds: {outcomes:?}");
}

/// The upgrade() of the flask-notes migration: five foreign keys.
fn flask_upgrade_body() -> String {
    let text = flask_migration();
    let start = text.find("    op.create_table(").unwrap();
    let end = text.find("    # ### end Alembic commands ###").unwrap();
    text[start..end].to_string()
}

fn migration_with(body: &str) -> String {
    format!(
        "from alembic import op\nimport sqlalchemy as sa\n\nrevision = 'big'\ndown_revision = None\n\n\ndef upgrade() -> None:\n{body}\n\ndef downgrade() -> None:\n    pass\n"
    )
}

/// A data migration of 50 MB (a bulk insert) with the five keys of flask-notes in front.
#[test]
fn a_50_mb_file_is_fixed() {
    let keys = flask_upgrade_body();
    let mut rows = String::from(
        "    op.bulk_insert(sa.table('notes', sa.column('id'), sa.column('body')), [\n",
    );
    let mut count = 0;
    while keys.len() + rows.len() < 50 * 1024 * 1024 {
        rows.push_str(&format!(
            "        {{'id': {count}, 'body': 'note number {count} with some text'}},\n"
        ));
        count += 1;
    }
    rows.push_str("    ])\n");
    let text = migration_with(&format!("{keys}{rows}"));
    // The same keys without the rows, fixed by a clean run: the big file must come out as that
    // with the rows byte-identical in their place.
    let expected = fixed_version("0001_keys.py", &migration_with(&keys)).replacen(
        "\n\ndef downgrade",
        &format!("{rows}\n\ndef downgrade"),
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("0001_big.py");
    fs::write(&path, &text).unwrap();

    let started = Instant::now();
    let out = write(&[&path]);
    assert_eq!(code(&out), 0, "{}", out.report());
    println!(
        "50 MB file ({} bytes, {count} rows): --write took {:.1} s",
        text.len(),
        started.elapsed().as_secs_f64()
    );
    // (A second run is left to the smaller tests: this one is slow in a debug build.)
    let fixed = fs::read_to_string(&path).unwrap();
    assert!(
        fixed == expected,
        "the 50 MB file is not fixed as its keys alone are"
    );
}

#[test]
fn ten_thousand_foreign_keys_are_all_fixed_and_a_second_run_is_a_no_op() {
    let mut body = String::new();
    for i in 0..10_000 {
        body.push_str(&format!(
            "    op.create_foreign_key('fk_notes_author_{i}', 'notes', 'users', ['author_id'], ['id'])\n"
        ));
    }
    let text = migration_with(&body);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("0001_many.py");
    fs::write(&path, &text).unwrap();
    let out = write(&[&path]);
    assert_eq!(code(&out), 0, "{}", out.report());
    let fixed = fs::read_to_string(&path).unwrap();
    assert_eq!(
        fixed
            .lines()
            .filter(|l| l.ends_with("['author_id'], ['id'], ondelete='CASCADE')"))
            .count(),
        10_000
    );
    let again = write(&[&path]);
    assert_eq!(code(&again), 0, "{}", again.report());
    assert!(
        again.stderr.contains("nothing to change"),
        "{}",
        again.report()
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), fixed);
}

/// Each of these crashed the tool (stack overflow in recursive tree walks, or a C assertion in
/// tree-sitter-python's scanner past ~510 indentation levels) before they were fixed.
#[test]
fn deeply_nested_expressions_get_a_result_or_a_clear_error() {
    let depth = 100_000;
    let fk = |inner: &str| {
        migration_with(&format!(
            "    op.add_column('notes', sa.Column('author_id', sa.Integer(), sa.ForeignKey({inner}), nullable=False))\n"
        ))
    };
    let open = "(".repeat(depth);
    let close = ")".repeat(depth);
    let cases: Vec<(&str, String, i32)> = vec![
        (
            "nested parentheses",
            migration_with(&format!("    x = {open}1{close}\n")),
            0,
        ),
        (
            "a long operator chain",
            migration_with(&format!("    x = {}\n", vec!["a"; depth].join(" + "))),
            0,
        ),
        (
            "a long attribute chain",
            migration_with(&format!("    x = a{}()\n", ".b".repeat(depth))),
            0,
        ),
        (
            "a key target in nested parentheses",
            fk(&format!("{open}'users.id'{close}")),
            0,
        ),
        (
            // With a key in the file: a file without any marker is never parsed (the prefilter).
            "a syntax error deep inside",
            migration_with(&format!(
                "    op.create_foreign_key(None, 'notes', 'users', ['author_id'], ['id'])\n    x = {open}1 +{close}\n"
            )),
            2,
        ),
        (
            "nested lists",
            migration_with(&format!(
                "    x = {}{}\n",
                "[".repeat(depth),
                "]".repeat(depth)
            )),
            0,
        ),
        (
            "600 indentation levels",
            migration_with(
                &std::iter::once(
                    "    op.create_foreign_key(None, 'notes', 'users', ['author_id'], ['id'])\n"
                        .to_string(),
                )
                .chain((1..=600).map(|level| format!("{} if x:\n", " ".repeat(level))))
                // A string at the bottom: the scanner's state then holds its delimiter,
                // which is what pushed the old code past the buffer.
                .chain(std::iter::once(format!("{}x = 'deep'\n", " ".repeat(601))))
                .collect::<String>(),
            ),
            2,
        ),
    ];
    for (what, text, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0001_deep.py");
        fs::write(&path, &text).unwrap();
        let out = write(&[&path]);
        assert_eq!(code(&out), expected, "{what}:\n{}", out.report());
        let after = fs::read_to_string(&path).unwrap();
        if expected == 2 {
            assert_eq!(after, text, "{what}: an error left the file changed");
            assert!(
                out.stderr.contains("0001_deep.py:"),
                "{what}: the error does not name the file and line:\n{}",
                out.report()
            );
        }
        println!("{what}: exit {expected}");
    }
}

#[test]
fn the_nested_key_target_is_fixed() {
    let depth = 50_000;
    let text = migration_with(&format!(
        "    op.add_column('notes', sa.Column('author_id', sa.Integer(), sa.ForeignKey({}'users.id'{}), nullable=False))\n",
        "(".repeat(depth),
        ")".repeat(depth)
    ));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("0001_deep.py");
    fs::write(&path, &text).unwrap();
    let out = write(&[&path]);
    assert_eq!(code(&out), 0, "{}", out.report());
    let fixed = fs::read_to_string(&path).unwrap();
    assert!(
        fixed.contains(&format!(
            "{}, ondelete='CASCADE'), nullable=False))",
            ")".repeat(depth)
        )),
        "{}",
        out.report()
    );
}

#[test]
fn a_byte_order_mark_and_crlf_line_breaks_are_kept() {
    let crlf = flask_migration().replace('\n', "\r\n");
    for (what, text) in [
        ("BOM", format!("\u{feff}{}", flask_migration())),
        ("CRLF", crlf.clone()),
        ("BOM + CRLF", format!("\u{feff}{crlf}")),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0001_initial.py");
        fs::write(&path, &text).unwrap();
        let out = write(&[&path]);
        assert_eq!(code(&out), 0, "{what}: {}", out.report());
        let fixed = fs::read_to_string(&path).unwrap();
        assert_ne!(fixed, text, "{what}: nothing fixed");
        assert_eq!(
            fixed.starts_with('\u{feff}'),
            text.starts_with('\u{feff}'),
            "{what}"
        );
        if text.contains("\r\n") {
            let bare = fixed
                .match_indices('\n')
                .filter(|(i, _)| !fixed[..*i].ends_with('\r'));
            assert_eq!(bare.count(), 0, "{what}: a bare LF was written");
        } else {
            assert!(!fixed.contains('\r'), "{what}: a CR was written");
        }
        assert_eq!(fixed.matches("ondelete=").count(), 5, "{what}");
    }
}

/// A small deterministic generator for the kill delays (no dependency for one test).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound.max(1)
    }
}

/// Kill `--write` with SIGKILL at random moments, 200 times: after every kill each migration is
/// byte-equal to the original or to the fully fixed version. A kill between creating and renaming
/// a temporary file leaves that `.fix-migrations-XXXXXX` behind; it is hidden and has no `.py`
/// suffix, so neither the tool nor Alembic ever reads it (checked at the end).
#[test]
fn sigkill_during_write_leaves_every_file_old_or_new() {
    const FILES: usize = 30;
    const KILLS: usize = 200;
    // Big files make the writes, not the start-up, fill most of the run.
    let mut body = String::new();
    for _ in 0..5 {
        body.push_str(&flask_upgrade_body());
    }
    let original = migration_with(&body);
    let fixed = fixed_version("m.py", &original);
    let names: Vec<String> = (0..FILES).map(|i| format!("{i:04}_m.py")).collect();
    let dir = tempfile::tempdir().unwrap();
    let models = models();
    let reset = || {
        for name in &names {
            fs::write(dir.path().join(name), &original).unwrap();
        }
    };
    reset();
    let started = Instant::now();
    let out = write(&[dir.path()]);
    assert_eq!(code(&out), 0, "{}", out.report());
    let full_run = started.elapsed();

    let mut rng = Lcg(0x5eed);
    let (mut all_old, mut all_new, mut mixed) = (0, 0, 0);
    for kill in 0..KILLS {
        reset();
        let mut child = tool(&[
            "--write",
            "--models",
            models.to_str().unwrap(),
            dir.path().to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
        let delay = rng.below(full_run.as_micros() as u64 * 11 / 10);
        std::thread::sleep(Duration::from_micros(delay));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let (mut old, mut new) = (0, 0);
        for name in &names {
            let text = fs::read_to_string(dir.path().join(name)).unwrap();
            if text == original {
                old += 1;
            } else if text == fixed {
                new += 1;
            } else {
                panic!("kill {kill} after {delay} µs left {name} partial");
            }
        }
        match (old, new) {
            (_, 0) => all_old += 1,
            (0, _) => all_new += 1,
            _ => mixed += 1,
        }
    }
    let leftovers = temp_files(dir.path()).len();
    println!(
        "{KILLS} kills over a {:.0} ms run of {FILES} files: {all_old} with every file old, {mixed} with old and new files, {all_new} with every file new; {leftovers} temporary files left behind",
        full_run.as_secs_f64() * 1000.0
    );
    assert!(mixed > 0, "no kill landed while files were being written");

    // Whatever temporary files the kills left, a run over the directory ignores them.
    reset();
    let out = run(&mut tool(&[
        "--write",
        "--format",
        "json",
        "--models",
        models.to_str().unwrap(),
        dir.path().to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(code(&out), 0, "{}", out.report());
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["summary"]["files"], FILES, "{}", out.report());
    assert!(!out.stdout.contains(".fix-migrations-"));
    for name in &names {
        assert_eq!(fs::read_to_string(dir.path().join(name)).unwrap(), fixed);
    }
}
