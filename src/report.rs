//! Step 7: what the user sees. Text (unified diffs on stdout so they can be piped into
//! `git apply`; one reason line per foreign key, findings and the summary on stderr), JSON with
//! a versioned schema, or GitHub Actions annotations.

use std::io::Write;
use std::path::{Path, PathBuf};

use anstyle::{AnsiColor, Style};
use anyhow::Result;
use serde::Serialize;

use crate::cli::{ColorWhen, Common, Format};
use crate::fix::{FilePlan, KeyReport, Status};

/// The JSON output's schema version; bumped on any incompatible change.
pub const JSON_SCHEMA_VERSION: u32 = 1;

pub struct FileOutcome {
    pub path: PathBuf,
    pub original: Option<String>,
    /// The fixed text, when it differs from the original.
    pub fixed: Option<String>,
    pub plan: FilePlan,
    pub error: Option<String>,
}

pub struct Output {
    pub outcomes: Vec<FileOutcome>,
    pub root: PathBuf,
    pub cwd: PathBuf,
    pub write: bool,
    /// The run stopped before reading any file (a missing path, no project, a bad config):
    /// its one outcome carries that error and stands for no file.
    pub early: bool,
}

impl Output {
    /// Each file's unified diff (None when it doesn't change), made on every core: a whole
    /// history's diffs are megabytes, and printing them is then only writing.
    fn diffs(&self) -> Vec<Option<String>> {
        use rayon::prelude::*;
        self.outcomes
            .par_iter()
            .map(|outcome| match (&outcome.original, &outcome.fixed) {
                (Some(original), Some(fixed)) => Some(unified_diff(
                    original,
                    fixed,
                    &self.display_path(&outcome.path),
                )),
                _ => None,
            })
            .collect()
    }

    fn display_path(&self, path: &Path) -> String {
        path.strip_prefix(&self.cwd)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for o in &self.outcomes {
            c.files += usize::from(!self.early);
            c.changed += usize::from(o.fixed.is_some());
            c.errors += usize::from(o.error.is_some());
            c.findings += o.plan.findings.len();
            c.suppressed += o.plan.suppressed.len();
            c.notes += o.plan.notices.len();
            c.imports += o
                .plan
                .imports
                .iter()
                .filter(|i| i.status == Status::Fixed)
                .count();
            for k in &o.plan.keys {
                match k.status {
                    Status::Fixed => c.fixed += 1,
                    Status::Ok => c.ok += 1,
                    Status::Skipped => c.skipped += 1,
                    Status::Finding => {}
                    Status::RevertRemoved => c.reverts += 1,
                    Status::Suppressed => c.suppressed += 1,
                }
            }
        }
        c
    }

    /// 2 on any error, 1 on findings or (dry run) pending changes, else 0.
    pub fn exit_code(&self) -> u8 {
        let c = self.counts();
        if c.errors > 0 {
            2
        } else if c.findings > 0 || (!self.write && c.changed > 0) {
            1
        } else {
            0
        }
    }
}

#[derive(Debug, Default, Serialize)]
struct Counts {
    files: usize,
    changed: usize,
    fixed: usize,
    ok: usize,
    skipped: usize,
    reverts: usize,
    findings: usize,
    errors: usize,
    /// Keys, findings and edits left alone under `# fix-migrations: ignore` comments.
    suppressed: usize,
    /// Missing imports added (or to add).
    imports: usize,
    /// Unused or unknown suppression comments.
    notes: usize,
}

pub fn print(output: &Output, args: &Common) -> Result<u8> {
    let printed = match args.format {
        Format::Json => print_json(output),
        Format::Github => print_github(output),
        Format::Text => print_text(output, args),
        Format::Sarif => crate::sarif::print(output),
    };
    match printed {
        // `fix-migrations | head` closing the pipe early is the reader's choice, not an error.
        Err(err) if is_broken_pipe(&err) => Ok(output.exit_code()),
        Err(err) => Err(err),
        Ok(()) => Ok(output.exit_code()),
    }
}

/// The report of a run that stopped before any file was processed: one error, attributed to
/// the path the message starts with (`nope.py: No such file or directory`), else to `.`.
pub fn print_early_error(message: &str, args: &Common) -> Result<u8> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let without_line = |head: &'_ str| match head.rsplit_once(':') {
        Some((path, line)) if !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit()) => {
            path.to_string()
        }
        _ => head.to_string(),
    };
    let named = message
        .split_once(": ")
        .map(|(head, _)| without_line(head))
        .filter(|head| !head.is_empty() && !head.contains(' ') && Path::new(head) != cwd)
        .unwrap_or_else(|| ".".to_string());
    let output = Output {
        outcomes: vec![FileOutcome {
            path: PathBuf::from(named),
            original: None,
            fixed: None,
            plan: FilePlan::default(),
            error: Some(message.to_string()),
        }],
        root: cwd.clone(),
        cwd,
        write: false,
        early: true,
    };
    print(&output, args)
}

pub(crate) fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .is_some_and(|e| e.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
    })
}

pub fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

// ---- text ------------------------------------------------------------------------------------

pub(crate) struct Palette {
    pub(crate) on: bool,
}

impl Palette {
    pub(crate) fn paint(&self, style: Style, text: &str) -> String {
        if self.on {
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    }
}

pub(crate) fn color_choice(when: ColorWhen) -> anstream::ColorChoice {
    match when {
        ColorWhen::Always => anstream::ColorChoice::Always,
        ColorWhen::Never => anstream::ColorChoice::Never,
        ColorWhen::Auto => anstream::ColorChoice::Auto,
    }
}

/// A stream for styled text. Where it must stay plain (a pipe, NO_COLOR, --color never) no
/// escapes are made at all and the text goes through a buffer: a whole history's diff is
/// megabytes, and both stripping escapes and a write per line cost more than making it.
fn styled<S: anstream::stream::RawStream + anstream::stream::AsLockedWrite + Write + 'static>(
    raw: S,
    choice: anstream::ColorChoice,
) -> (Box<dyn Write>, Palette) {
    let stream = anstream::AutoStream::new(raw, choice);
    if stream.current_choice() == anstream::ColorChoice::Never {
        (
            Box::new(std::io::BufWriter::with_capacity(
                1 << 16,
                stream.into_inner(),
            )),
            Palette { on: false },
        )
    } else {
        (Box::new(stream), Palette { on: true })
    }
}

fn print_text(output: &Output, args: &Common) -> Result<()> {
    let choice = color_choice(args.color);
    let (mut out, out_palette) = styled(std::io::stdout().lock(), choice);
    let (mut err, palette) = styled(std::io::stderr().lock(), choice);
    let red = Style::new().fg_color(Some(AnsiColor::Red.into()));
    let green = Style::new().fg_color(Some(AnsiColor::Green.into()));
    let cyan = Style::new().fg_color(Some(AnsiColor::Cyan.into()));
    let bold = Style::new().bold();
    let yellow = Style::new().fg_color(Some(AnsiColor::Yellow.into()));

    let diffs = output.diffs();
    for (outcome, diff) in output.outcomes.iter().zip(diffs) {
        let shown = output.display_path(&outcome.path);
        if let Some(error) = &outcome.error {
            out.flush()?;
            writeln!(err, "{}: {error}", palette.paint(red.bold(), "error"))?;
            continue;
        }
        if let Some(diff) = diff.as_ref().filter(|_| !out_palette.on) {
            out.write_all(diff.as_bytes())?;
        } else if let Some(diff) = diff {
            for line in diff.split_inclusive('\n') {
                let styled = if line.starts_with("+++") || line.starts_with("---") {
                    out_palette.paint(bold, line.trim_end_matches('\n'))
                } else if line.starts_with('+') {
                    out_palette.paint(green, line.trim_end_matches('\n'))
                } else if line.starts_with('-') {
                    out_palette.paint(red, line.trim_end_matches('\n'))
                } else if line.starts_with("@@") {
                    out_palette.paint(cyan, line.trim_end_matches('\n'))
                } else {
                    line.trim_end_matches('\n').to_string()
                };
                writeln!(out, "{styled}")?;
            }
        }
        out.flush()?;
        if !args.quiet {
            for key in &outcome.plan.keys {
                writeln!(err, "{}", key_line(&shown, key, &palette))?;
                if args.explain {
                    for step in &key.trail {
                        writeln!(err, "    {step}")?;
                    }
                }
            }
            for (line, note) in &outcome.plan.notes {
                writeln!(err, "{shown}:{line}: {note}")?;
            }
            for (line, what) in &outcome.plan.suppressed {
                writeln!(err, "{shown}:{line}: suppressed: {what}")?;
            }
        }
        for notice in &outcome.plan.notices {
            writeln!(
                err,
                "{shown}:{}: {} {}",
                notice.line,
                palette.paint(cyan, &format!("note[{}]", notice.code)),
                notice.message
            )?;
        }
        for finding in &outcome.plan.findings {
            writeln!(
                err,
                "{}:{}: {} {}",
                shown,
                finding.line,
                palette.paint(yellow.bold(), &format!("finding[{}]", finding.code)),
                finding.message
            )?;
        }
    }
    if !args.quiet {
        writeln!(err, "{}", summary(output))?;
    }
    Ok(())
}

/// The reason line for one key, without color: what tests and `--quiet`-less runs print.
pub fn key_line_plain(shown: &str, key: &KeyReport) -> String {
    key_line(shown, key, &Palette { on: false })
}

fn key_line(shown: &str, key: &KeyReport, palette: &Palette) -> String {
    let label = match (&key.table, &key.referent_table) {
        (None, None) if key.columns.is_empty() => key.kind.call().to_string(),
        _ => format!(
            "{}.{} -> {}.{}",
            key.table.as_deref().unwrap_or("?"),
            key.columns.join(","),
            key.referent_table.as_deref().unwrap_or("?"),
            key.referent_columns.join(",")
        ),
    };
    let action = |key: &KeyReport| {
        let mut text = key
            .ondelete
            .map(|a| format!("ondelete {a}"))
            .unwrap_or_else(|| "ondelete ?".into());
        if let Some(update) = key.onupdate {
            text.push_str(&format!(", onupdate {update}"));
        }
        text
    };
    let green = Style::new().fg_color(Some(AnsiColor::Green.into()));
    let dim = Style::new().dimmed();
    match key.status {
        Status::Fixed => format!(
            "{shown}:{}: {label}: {} ({})",
            key.line,
            palette.paint(green, &action(key)),
            key.reason
        ),
        Status::Ok => format!(
            "{shown}:{}: {label}: {} ({}) {}",
            key.line,
            action(key),
            key.reason,
            palette.paint(dim, "already right")
        ),
        Status::RevertRemoved => format!("{shown}:{}: {label}: {}", key.line, key.reason),
        Status::Skipped => format!("{shown}:{}: {label}: skipped: {}", key.line, key.reason),
        Status::Finding => format!(
            "{shown}:{}: {label}: left as it is (needs a human, see below)",
            key.line
        ),
        Status::Suppressed => format!(
            "{shown}:{}: {label}: {}",
            key.line,
            key.message.as_deref().unwrap_or(&key.reason)
        ),
    }
}

fn summary(output: &Output) -> String {
    let c = output.counts();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let mut parts = vec![];
    if c.fixed > 0 {
        parts.push(format!(
            "{} {}",
            plural(c.fixed, "foreign key"),
            if output.write { "fixed" } else { "to fix" }
        ));
    }
    if c.reverts > 0 {
        parts.push(format!(
            "{} {}",
            plural(c.reverts, "revert pair"),
            if output.write { "removed" } else { "to remove" }
        ));
    }
    if c.imports > 0 {
        parts.push(format!(
            "{} {}",
            plural(c.imports, "missing import"),
            if output.write { "added" } else { "to add" }
        ));
    }
    if c.ok > 0 {
        parts.push(format!("{} already right", c.ok));
    }
    if c.skipped > 0 {
        parts.push(format!("{} skipped", c.skipped));
    }
    if c.suppressed > 0 {
        parts.push(format!("{} suppressed", c.suppressed));
    }
    if c.findings > 0 {
        parts.push(plural(c.findings, "finding"));
    }
    if c.errors > 0 {
        parts.push(plural(c.errors, "error"));
    }
    if c.notes > 0 {
        parts.push(plural(c.notes, "note"));
    }
    let head = if parts.is_empty() {
        "No foreign keys found".to_string()
    } else {
        parts.join(", ")
    };
    let tail = if output.early {
        "no file checked.".to_string()
    } else if c.changed == 0 {
        format!("{} checked, nothing to change.", plural(c.files, "file"))
    } else if output.write {
        format!("{} written.", plural(c.changed, "file"))
    } else {
        format!(
            "{} would change (dry run; --write applies).",
            plural(c.changed, "file")
        )
    };
    format!("{head}; {tail}")
}

pub fn unified_diff(original: &str, fixed: &str, shown: &str) -> String {
    similar::TextDiff::from_lines(original, fixed)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{shown}"), &format!("b/{shown}"))
        .to_string()
}

// ---- json ------------------------------------------------------------------------------------

#[derive(Serialize)]
struct JsonOutput<'a> {
    schema_version: u32,
    files: Vec<JsonFile>,
    foreign_keys: Vec<JsonKey<'a>>,
    findings: Vec<JsonFinding<'a>>,
    errors: Vec<JsonError<'a>>,
    imports: Vec<JsonImport<'a>>,
    suppressed: Vec<JsonSuppressed<'a>>,
    notes: Vec<JsonFinding<'a>>,
    summary: Counts,
}

#[derive(Serialize)]
struct JsonImport<'a> {
    file: String,
    #[serde(flatten)]
    import: &'a crate::fix::ImportFix,
}

#[derive(Serialize)]
struct JsonSuppressed<'a> {
    file: String,
    line: usize,
    message: &'a str,
}

#[derive(Serialize)]
struct JsonFile {
    path: String,
    changed: bool,
    written: bool,
    diff: Option<String>,
}

#[derive(Serialize)]
struct JsonKey<'a> {
    file: String,
    #[serde(flatten)]
    key: &'a KeyReport,
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    file: String,
    line: usize,
    code: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
struct JsonError<'a> {
    file: String,
    message: &'a str,
}

fn print_json(output: &Output) -> Result<()> {
    let mut json = JsonOutput {
        schema_version: JSON_SCHEMA_VERSION,
        files: vec![],
        foreign_keys: vec![],
        findings: vec![],
        errors: vec![],
        imports: vec![],
        suppressed: vec![],
        notes: vec![],
        summary: output.counts(),
    };
    for (outcome, diff) in output.outcomes.iter().zip(output.diffs()) {
        let shown = output.display_path(&outcome.path);
        if let Some(message) = &outcome.error {
            json.errors.push(JsonError {
                file: shown.clone(),
                message,
            });
        }
        if output.early {
            continue;
        }
        json.files.push(JsonFile {
            path: shown.clone(),
            changed: outcome.fixed.is_some(),
            written: output.write && outcome.fixed.is_some(),
            diff,
        });
        for key in &outcome.plan.keys {
            json.foreign_keys.push(JsonKey {
                file: shown.clone(),
                key,
            });
        }
        for f in &outcome.plan.findings {
            json.findings.push(JsonFinding {
                file: shown.clone(),
                line: f.line,
                code: f.code,
                message: &f.message,
            });
        }
        for import in &outcome.plan.imports {
            json.imports.push(JsonImport {
                file: shown.clone(),
                import,
            });
        }
        for (line, message) in &outcome.plan.suppressed {
            json.suppressed.push(JsonSuppressed {
                file: shown.clone(),
                line: *line,
                message,
            });
        }
        for f in &outcome.plan.notices {
            json.notes.push(JsonFinding {
                file: shown.clone(),
                line: f.line,
                code: f.code,
                message: &f.message,
            });
        }
    }
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, &json)?;
    writeln!(stdout)?;
    Ok(())
}

// ---- github ----------------------------------------------------------------------------------

/// GitHub workflow commands: `%`, CR and LF must be escaped in the message.
pub(crate) fn escape_github(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value (`file=...`): `:` and `,` end it, so they are escaped
/// too, as GitHub's toolkit does.
pub(crate) fn escape_github_property(text: &str) -> String {
    escape_github(text).replace(':', "%3A").replace(',', "%2C")
}

fn print_github(output: &Output) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for outcome in &output.outcomes {
        let shown = escape_github_property(&output.display_path(&outcome.path));
        if let Some(error) = &outcome.error {
            writeln!(out, "::error file={shown}::{}", escape_github(error))?;
        }
        for key in &outcome.plan.keys {
            if key.status == Status::Fixed || key.status == Status::RevertRemoved {
                let verb = if output.write { "fixed" } else { "needs" };
                let action = key.ondelete.map(|a| a.sql()).unwrap_or("?");
                let message = match key.status {
                    Status::RevertRemoved => key.reason.clone(),
                    _ => format!(
                        "{verb} ondelete={action} on {}.{} -> {} ({})",
                        key.table.as_deref().unwrap_or("?"),
                        key.columns.join(","),
                        key.referent_table.as_deref().unwrap_or("?"),
                        key.reason
                    ),
                };
                writeln!(
                    out,
                    "::warning file={shown},line={}::{}",
                    key.line,
                    escape_github(&message)
                )?;
            }
        }
        for f in &outcome.plan.findings {
            writeln!(
                out,
                "::error file={shown},line={},title=fix-migrations {}::{}",
                f.line,
                f.code,
                escape_github(&f.message)
            )?;
        }
        for import in &outcome.plan.imports {
            if import.status == Status::Fixed {
                let verb = if output.write { "added" } else { "needs" };
                writeln!(
                    out,
                    "::warning file={shown},line={}::{verb} `import {}`: {} raises NameError at upgrade time without it",
                    import.line,
                    import.module,
                    escape_github(&import.used)
                )?;
            }
        }
        for f in &outcome.plan.notices {
            writeln!(
                out,
                "::notice file={shown},line={},title=fix-migrations {}::{}",
                f.line,
                f.code,
                escape_github(&f.message)
            )?;
        }
    }
    writeln!(out, "{}", summary(output))?;
    Ok(())
}

// ---- --show-config ---------------------------------------------------------------------------

#[derive(Serialize)]
struct JsonSettings {
    schema_version: u32,
    /// The settings file read, None when every value is a default.
    config_file: Option<String>,
    settings: Vec<crate::config::Setting>,
}

/// `--show-config`: every effective setting, its value and where it came from, on stdout.
/// `--format json` gives one object; every other format the text listing.
pub fn print_settings(
    config: &crate::config::Config,
    cli_models: &[String],
    format: Format,
) -> Result<()> {
    let settings = config.settings(cli_models);
    let file = config.source.as_ref().map(|p| {
        std::env::current_dir()
            .ok()
            .and_then(|cwd| p.strip_prefix(cwd).ok().map(Path::to_path_buf))
            .unwrap_or_else(|| p.clone())
            .display()
            .to_string()
    });
    let mut out = std::io::stdout().lock();
    let printed = (|| -> Result<()> {
        if format == Format::Json {
            let json = JsonSettings {
                schema_version: JSON_SCHEMA_VERSION,
                config_file: file.clone(),
                settings,
            };
            serde_json::to_writer_pretty(&mut out, &json)?;
            writeln!(out)?;
            return Ok(());
        }
        match &file {
            Some(file) => writeln!(out, "# settings file: {file}")?,
            None => writeln!(out, "# no settings file: built-in defaults")?,
        }
        let lines: Vec<(String, &str)> = settings
            .iter()
            .map(|s| (format!("{} = {}", s.key, s.toml_value()), s.source.as_str()))
            .collect();
        // Align the sources, except after the few long list values.
        let width = lines
            .iter()
            .map(|(l, _)| l.len())
            .filter(|len| *len <= 48)
            .max()
            .unwrap_or(0);
        for (line, source) in lines {
            writeln!(out, "{line:width$}  # {source}")?;
        }
        Ok(())
    })();
    match printed {
        Err(err) if is_broken_pipe(&err) => Ok(()),
        other => other,
    }
}
