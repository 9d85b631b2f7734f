//! `--version` names the build; `completions <shell>` prints scripts that know the commands.

mod support;

use std::process::Command;

use support::{manifest_dir, run, run_ok, tool_bin};

fn git(args: &[&str]) -> Option<String> {
    let out = run(Command::new("git").arg("-C").arg(manifest_dir()).args(args)).ok()?;
    out.status.success().then(|| out.stdout.trim().to_string())
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let out = run_ok(Command::new(tool_bin()).arg("--version")).unwrap();
    let is_checkout_top = git(&["rev-parse", "--show-toplevel"]).is_some_and(|top| {
        std::fs::canonicalize(top).ok() == std::fs::canonicalize(manifest_dir()).ok()
    });
    let expected = if is_checkout_top {
        let hash = git(&["rev-parse", "--short=7", "HEAD"]).unwrap();
        let date = git(&["log", "-1", "--format=%cd", "--date=short", "HEAD"]).unwrap();
        format!("fix-migrations 0.1.0 (git {hash} {date})")
    } else {
        "fix-migrations 0.1.0 (no git metadata)".to_string()
    };
    assert_eq!(out.stdout.trim(), expected, "{}", out.report());
    // -V is the same line.
    let short = run_ok(Command::new(tool_bin()).arg("-V")).unwrap();
    assert_eq!(short.stdout, out.stdout);
}

#[test]
fn completion_scripts_mention_every_subcommand_and_option() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = run_ok(Command::new(tool_bin()).args(["completions", shell])).unwrap();
        // Subcommands, a global option and a subcommand's own option (fish writes `-l dry-run`).
        for word in [
            "repair",
            "check-db",
            "completions",
            "dry-run",
            "connect-timeout",
        ] {
            assert!(
                out.stdout.contains(word),
                "{shell} script lacks {word}:\n{}",
                out.stdout
            );
        }
    }
}

#[test]
fn bash_completion_completes_subcommands_and_values() {
    // Source the generated script in a real bash and ask it what it would offer.
    let script = r#"
source <("$TOOL" completions bash) || exit 3
complete -p fix-migrations || exit 4
COMP_WORDS=(fix-migrations c); COMP_CWORD=1
_fix__migrations fix-migrations c fix-migrations
echo "subcommands: ${COMPREPLY[*]}"
COMP_WORDS=(fix-migrations --format ""); COMP_CWORD=2
_fix__migrations fix-migrations "" --format
echo "formats: ${COMPREPLY[*]}"
"#;
    let out = run_ok(
        Command::new("bash")
            .args(["--noprofile", "--norc", "-c", script])
            .env("TOOL", tool_bin()),
    )
    .unwrap();
    assert!(
        out.stdout.contains("-F _fix__migrations fix-migrations"),
        "{}",
        out.report()
    );
    assert!(
        out.stdout.contains("subcommands: check-db completions\n"),
        "{}",
        out.report()
    );
    assert!(
        out.stdout.contains("formats: text json github sarif\n"),
        "{}",
        out.report()
    );
}

#[test]
fn unknown_shell_is_a_usage_error() {
    let out = run(Command::new(tool_bin()).args(["completions", "tcsh"])).unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", out.report());
    assert!(
        out.stderr.contains("invalid value 'tcsh'"),
        "{}",
        out.report()
    );
}
