//! The Python-side distribution, end to end: the working tree as a git repository (every file
//! that is not ignored, so uncommitted work is what gets tested), its sdist and a wheel built
//! from that sdist (release build, no .git, so `--version` takes its fallback), the wheel
//! installed into a fresh venv with no index, and `pre-commit try-repo` running both hooks of
//! `.pre-commit-hooks.yaml` on a copy of an example project.
//!
//! The release builds keep their cargo target directories (target/packaging-build/<kind>) so
//! that later runs only recompile this crate. pre-commit's `language: python`
//! installs the repository with `pip install .`, whose isolated build fetches maturin from the
//! package index, as it does for users.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use support::{CmdOutput, manifest_dir, run, run_ok, run_with_timeout, venv};

/// A release build of the whole crate on two shared cores.
const BUILD_TIMEOUT: Duration = Duration::from_secs(1800);

fn work_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("packaging")
}

/// One cargo target directory per kind of build, kept between runs. Never shared between the
/// sdist build (no .git) and pre-commit's clone (a git checkout): cargo hashes a package by its
/// path inside the workspace, so the second would reuse the first's build-script output and
/// `--version` would name the wrong build.
fn cargo_target_dir(kind: &str) -> PathBuf {
    manifest_dir()
        .join("target")
        .join("packaging-build")
        .join(kind)
}

/// PATH with the pinned venv's scripts (maturin, pre-commit) first.
fn venv_path() -> Result<std::ffi::OsString> {
    let mut dirs = vec![venv().dir.join("bin")];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    Ok(std::env::join_paths(dirs)?)
}

fn git(dir: &Path, args: &[&str]) -> Result<CmdOutput> {
    run_ok(
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=fix-migrations tests"])
            .args(["-c", "user.email=tests@fix-migrations.invalid"])
            .args([
                "-c",
                "commit.gpgsign=false",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args),
    )
}

/// Every file of `from` that git would not ignore, copied to `to`.
fn copy_tree(from: &Path, to: &Path) -> Result<usize> {
    let mut copied = 0;
    let walk = ignore::WalkBuilder::new(from)
        .hidden(false)
        .require_git(false)
        .filter_entry(|e| e.file_name() != ".git")
        .build();
    for entry in walk {
        let entry = entry?;
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let rel = entry.path().strip_prefix(from)?;
        let dest = to.join(rel);
        fs::create_dir_all(dest.parent().unwrap())?;
        fs::copy(entry.path(), &dest).with_context(|| format!("copying {}", rel.display()))?;
        copied += 1;
    }
    Ok(copied)
}

/// What the tests share: the source repository and the wheel built from its sdist.
struct Built {
    source: PathBuf,
    commit: String,
    sdist: PathBuf,
    wheel: PathBuf,
}

fn build() -> Result<Built> {
    let work = work_dir();
    if work.exists() {
        fs::remove_dir_all(&work)?;
    }
    let source = work.join("source");
    fs::create_dir_all(&source)?;
    let files = copy_tree(&manifest_dir(), &source)?;
    for required in ["pyproject.toml", ".pre-commit-hooks.yaml", "Cargo.lock"] {
        if !source.join(required).is_file() {
            bail!("{required} missing from the source copy ({files} files)");
        }
    }
    git(&source, &["init", "-q"])?;
    git(&source, &["add", "-A"])?;
    git(&source, &["commit", "-q", "-m", "working tree under test"])?;
    let commit = git(&source, &["rev-parse", "HEAD"])?
        .stdout
        .trim()
        .to_string();

    let dist = work.join("dist");
    run_ok(
        Command::new(venv().bin("maturin"))
            .args(["sdist", "--out"])
            .arg(&dist)
            .current_dir(&source)
            .env("PATH", venv_path()?),
    )?;
    let sdist = single_file(&dist, ".tar.gz")?;
    // pip builds the wheel from the unpacked sdist: no .git there.
    run_with_timeout(
        Command::new(venv().python())
            .args(["-m", "pip", "wheel", "--no-build-isolation", "--no-deps"])
            .args(["--disable-pip-version-check", "--no-input", "--wheel-dir"])
            .arg(&dist)
            .arg(&sdist)
            .env("PATH", venv_path()?)
            .env("CARGO_TARGET_DIR", cargo_target_dir("sdist-wheel")),
        BUILD_TIMEOUT,
    )
    .and_then(|out| {
        if out.status.success() {
            Ok(out)
        } else {
            Err(anyhow!("building the wheel failed:\n{}", out.report()))
        }
    })?;
    let wheel = single_file(&dist, ".whl")?;
    Ok(Built {
        source,
        commit,
        sdist,
        wheel,
    })
}

fn single_file(dir: &Path, suffix: &str) -> Result<PathBuf> {
    let found: Vec<PathBuf> = fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        other => bail!(
            "expected one {suffix} in {}, found {other:?}",
            dir.display()
        ),
    }
}

/// Built once per test run, shared by every test here.
fn built() -> &'static Built {
    static BUILT: OnceLock<Result<Built, String>> = OnceLock::new();
    match BUILT.get_or_init(|| build().map_err(|e| format!("{e:#}"))) {
        Ok(b) => b,
        Err(e) => panic!("cannot build the package: {e}"),
    }
}

/// A copy of an example project in a temporary directory.
fn example_copy(name: &str) -> Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("fix-migrations-pkg-{name}-"))
        .tempdir()?;
    copy_tree(&manifest_dir().join("examples").join(name), dir.path())?;
    Ok(dir)
}

const FLASK_NOTES_MIGRATION: &str = "migrations/versions/0057221bd381_initial.py";
const AUTHOR_FIX: &str =
    "sa.ForeignKeyConstraint(['author_id'], ['users.id'], ondelete='CASCADE'),";

#[test]
fn sdist_holds_what_a_source_build_needs() {
    let built = built();
    let out = run_ok(Command::new("tar").arg("tzf").arg(&built.sdist)).unwrap();
    for needed in [
        "/pyproject.toml",
        "/Cargo.toml",
        "/Cargo.lock",
        "/build.rs",
        "/src/main.rs",
        "/src/completions.rs",
        "/README.md",
    ] {
        assert!(
            out.stdout.lines().any(|l| l.ends_with(needed)),
            "{needed} missing from {}:\n{}",
            built.sdist.display(),
            out.stdout
        );
    }
}

#[test]
fn wheel_puts_the_binary_on_path_in_a_fresh_venv() {
    let built = built();
    let home = tempfile::tempdir().unwrap();
    let env_dir = home.path().join("venv");
    run_ok(
        Command::new(venv().python())
            .args(["-m", "venv"])
            .arg(&env_dir),
    )
    .unwrap();
    let install = run_ok(
        Command::new(env_dir.join("bin/python"))
            .args(["-m", "pip", "install", "--no-index", "--no-input"])
            .arg("--disable-pip-version-check")
            .arg(&built.wheel),
    )
    .unwrap();
    assert!(
        install
            .stdout
            .contains("Successfully installed fix-migrations-0.1.0"),
        "{}",
        install.report()
    );
    // As after `source venv/bin/activate`: found by name on PATH, nothing else from the tests.
    let path =
        std::env::join_paths([env_dir.join("bin"), "/usr/bin".into(), "/bin".into()]).unwrap();
    let tool = |args: &[&str], cwd: &Path| {
        run(Command::new("fix-migrations")
            .args(args)
            .current_dir(cwd)
            .env("PATH", &path)
            .env("NO_COLOR", "1"))
        .unwrap()
    };

    let version = tool(&["--version"], home.path());
    assert!(version.status.success(), "{}", version.report());
    assert_eq!(
        version.stdout.trim(),
        "fix-migrations 0.1.0 (no git metadata)",
        "a wheel built from the sdist has no .git; {}",
        version.report()
    );

    let project = example_copy("flask-notes").unwrap();
    let dry = tool(&[], project.path());
    assert_eq!(dry.status.code(), Some(1), "{}", dry.report());
    assert!(
        dry.stdout.contains(&format!("+    {AUTHOR_FIX}")),
        "{}",
        dry.report()
    );
    assert!(
        dry.stderr
            .contains("5 foreign keys to fix; 1 file would change (dry run; --write applies)."),
        "{}",
        dry.report()
    );
    let written = tool(&["--write", "--quiet"], project.path());
    assert_eq!(written.status.code(), Some(0), "{}", written.report());
    let text = fs::read_to_string(project.path().join(FLASK_NOTES_MIGRATION)).unwrap();
    assert!(text.contains(AUTHOR_FIX), "{text}");
    let again = tool(&[], project.path());
    assert_eq!(again.status.code(), Some(0), "{}", again.report());
    assert!(again.stdout.is_empty(), "{}", again.report());

    let completions = tool(&["completions", "bash"], home.path());
    assert!(completions.status.success(), "{}", completions.report());
    assert!(
        completions.stdout.contains("-F _fix__migrations"),
        "{}",
        completions.report()
    );
}

/// `pre-commit <args>` in `project`, with its store in `pre_commit_home`.
fn pre_commit(project: &Path, pre_commit_home: &Path, args: &[&str]) -> Result<CmdOutput> {
    run_with_timeout(
        Command::new(venv().bin("pre-commit"))
            .args(args)
            .args(["--all-files", "--color", "never"])
            .current_dir(project)
            .env("PATH", venv_path()?)
            .env("PRE_COMMIT_HOME", pre_commit_home)
            .env("CARGO_TARGET_DIR", cargo_target_dir("pre-commit"))
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("NO_COLOR", "1"),
        BUILD_TIMEOUT,
    )
}

/// The whole user path: try a hook with `try-repo`, then adopt both in .pre-commit-config.yaml.
/// (try-repo installs into a store of its own that it deletes; `run` keeps PRE_COMMIT_HOME.)
#[test]
fn pre_commit_hooks_check_then_fix_an_example_project() {
    let built = built();
    let source = built.source.to_string_lossy().into_owned();
    let project = example_copy("flask-notes").unwrap();
    git(project.path(), &["init", "-q"]).unwrap();
    git(project.path(), &["add", "-A"]).unwrap();
    git(project.path(), &["commit", "-q", "-m", "example"]).unwrap();
    let pre_commit_home = tempfile::tempdir().unwrap();
    let home = pre_commit_home.path();
    let migration = project.path().join(FLASK_NOTES_MIGRATION);
    let original = fs::read_to_string(&migration).unwrap();

    let args = [
        "try-repo",
        &source,
        "fix-migrations-check",
        "--ref",
        &built.commit,
    ];
    let check = pre_commit(project.path(), home, &args).unwrap();
    assert_eq!(check.status.code(), Some(1), "{}", check.report());
    assert!(
        check.stdout.contains("fix-migrations (check only)")
            && check.stdout.contains("Failed")
            && check.stdout.contains(&format!("+    {AUTHOR_FIX}"))
            && check.stdout.contains("5 foreign keys to fix"),
        "{}",
        check.report()
    );
    assert_eq!(fs::read_to_string(&migration).unwrap(), original);

    fs::write(
        project.path().join(".pre-commit-config.yaml"),
        format!(
            "repos:\n  - repo: {source}\n    rev: {}\n    hooks:\n      - id: fix-migrations\n      - id: fix-migrations-check\n",
            built.commit
        ),
    )
    .unwrap();
    git(project.path(), &["add", ".pre-commit-config.yaml"]).unwrap();
    let fix = pre_commit(project.path(), home, &["run"]).unwrap();
    // pre-commit fails a hook that modified files, so the user reviews and stages them; the
    // check hook then sees the fixed file.
    assert_eq!(fix.status.code(), Some(1), "{}", fix.report());
    assert!(
        fix.stdout.contains("files were modified by this hook"),
        "{}",
        fix.report()
    );
    let check_line = fix
        .stdout
        .lines()
        .find(|l| l.starts_with("fix-migrations (check only)"))
        .unwrap_or_else(|| panic!("no check hook line:\n{}", fix.report()));
    assert!(check_line.ends_with("Passed"), "{}", fix.report());
    let fixed = fs::read_to_string(&migration).unwrap();
    assert!(fixed.contains(AUTHOR_FIX), "{fixed}");
    // models.py is not a migration: the hooks' `files` pattern keeps it out.
    let models = fs::read_to_string(project.path().join("models.py")).unwrap();
    assert_eq!(
        models,
        fs::read_to_string(manifest_dir().join("examples/flask-notes/models.py")).unwrap()
    );

    let again = pre_commit(project.path(), home, &["run"]).unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", again.report());
    assert_eq!(
        again.stdout.matches("Passed").count(),
        2,
        "{}",
        again.report()
    );
    assert_eq!(fs::read_to_string(&migration).unwrap(), fixed);

    // The binary pre-commit installed was built from the git clone: --version names the commit.
    let installed = installed_binary(home).unwrap();
    let version = run_ok(Command::new(&installed).arg("--version")).unwrap();
    assert!(
        version.stdout.starts_with(&format!(
            "fix-migrations 0.1.0 (git {} ",
            &built.commit[..7]
        )),
        "{}",
        version.report()
    );
}

/// `<PRE_COMMIT_HOME>/repo*/py_env-*/bin/fix-migrations`: the one environment pre-commit made.
fn installed_binary(pre_commit_home: &Path) -> Result<PathBuf> {
    let mut found = Vec::new();
    for repo in fs::read_dir(pre_commit_home)?.flatten() {
        let Ok(envs) = fs::read_dir(repo.path()) else {
            continue;
        };
        for env in envs.flatten() {
            let bin = env.path().join("bin/fix-migrations");
            if env.file_name().to_string_lossy().starts_with("py_env-") && bin.is_file() {
                found.push(bin);
            }
        }
    }
    match found.as_slice() {
        [one] => Ok(one.clone()),
        other => bail!("expected one installed fix-migrations, found {other:?}"),
    }
}
