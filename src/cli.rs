//! The command line and the run that strings the steps together:
//! discover -> parse -> models -> migrations -> policy -> fix -> report.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use rayon::prelude::*;

use crate::cache::{self, Cache, FileKey, HashIndex};

/// The key a file has when there is no cache to key it for.
const NO_KEY: FileKey = FileKey {
    size: 0,
    mtime_ns: 0,
    hash: [0, 0],
};
use crate::config::Config;
use crate::discover::{self, Project};
use crate::fix::{self, FilePlan};
use crate::keyset::KeySet;
use crate::migrations;
use crate::model_fix;
use crate::models::{self, Schema};
use crate::parse::{self, SourceFile};
use crate::report::{self, FileOutcome, Output};

const AFTER_HELP: &str = "\
Exit status:
  0  nothing to change, or every change written
  1  changes pending (dry run), or findings that need a human
  2  usage, configuration, I/O or parse error

Examples:
  fix-migrations                       show the fix for the head revision(s) as a diff
  fix-migrations --write               apply it
  fix-migrations --all --format json   every revision, machine-readable
  fix-migrations --write --fix-models  also write the decisions into the models
  fix-migrations migrations/versions/abc123_add_notes.py --write";

const CHECK_DB_HELP: &str = "\
Exit status:
  0  every foreign key of the database has the rules the policy gives it
  1  a mismatch, a finding, a key no model declares, or a model key the database lacks
  2  bad URL, cannot connect or read (no password is ever printed)

URLs (as SQLAlchemy writes them):
  sqlite:///app.db   sqlite:////abs/path/app.db
  postgresql://user@host:5432/db   postgresql+psycopg2://user@/db?host=/run/postgresql
  Passwords: in the URL, PGPASSWORD, or PGPASSFILE / ~/.pgpass (mode 0600).";

/// The package version and the commit it was built from (see build.rs).
const BUILD_VERSION: &str = env!("FIX_MIGRATIONS_BUILD_VERSION");

#[derive(Debug, Parser)]
#[command(name = "fix-migrations", version = BUILD_VERSION, about = "Give every foreign key in your Alembic migrations the ON DELETE action your models mean.", after_help = AFTER_HELP)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Migration files or directories (processed whole). Default: the head revision(s) of the
    /// Alembic project found from the current directory upward.
    pub paths: Vec<PathBuf>,

    /// Process every revision, not only the head(s).
    #[arg(long)]
    pub all: bool,

    /// Also write each decided action back into the model that declares the key, so the next
    /// autogenerate renders it and `alembic check` agrees.
    #[arg(long)]
    pub fix_models: bool,

    /// Print the effective settings and where each came from (default, a line of the settings
    /// file, the command line), then exit 0.
    #[arg(long)]
    pub show_config: bool,

    #[command(flatten)]
    pub common: Common,
}

/// Options every subcommand shares.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// Run as if started in DIR.
    #[arg(long, value_name = "DIR", global = true)]
    pub project: Option<PathBuf>,

    /// Print unified diffs and write nothing (the default).
    #[arg(long, conflicts_with = "write", global = true)]
    pub dry_run: bool,

    /// Apply the edits in place.
    #[arg(long, global = true)]
    pub write: bool,

    /// Model files (glob, repeatable). Default: every .py under the project root that defines
    /// SQLAlchemy/SQLModel tables.
    #[arg(long = "models", value_name = "GLOB", global = true)]
    pub models: Vec<String>,

    /// Settings file. Default: [tool.fix-migrations] in pyproject.toml, or fix-migrations.toml.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    #[arg(long, value_enum, default_value_t = Format::Text, global = true)]
    pub format: Format,

    /// Color diffs and messages. `auto` colors a terminal only and honours NO_COLOR.
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto, global = true)]
    pub color: ColorWhen,

    /// Print only diffs and findings.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Print the decision trail for every foreign key.
    #[arg(long, global = true)]
    pub explain: bool,

    /// Neither read nor write the cache of facts from earlier runs (`.fix-migrations-cache/`
    /// at the project root, or $FIX_MIGRATIONS_CACHE_DIR).
    #[arg(long, global = true)]
    pub no_cache: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Replay the migration history and write a new revision that drops and recreates every
    /// foreign key whose rules differ from the policy's.
    Repair(RepairArgs),
    /// Compare a live database's foreign key rules with the models.
    #[command(after_help = CHECK_DB_HELP)]
    CheckDb(CheckDbArgs),
    /// Print a shell completion script to stdout (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RepairArgs {
    /// Recreate keys inside `op.batch_alter_table(...)` (default: when env.py sets
    /// render_as_batch=True).
    #[arg(long)]
    pub batch: bool,

    /// The new revision's message (as `alembic revision -m`).
    #[arg(short, long, default_value = "repair foreign key rules")]
    pub message: String,

    /// The database the migrations run on; it decides the names of keys created without one.
    /// Default: the scheme of $DATABASE_URL, else of sqlalchemy.url in alembic.ini, else
    /// postgresql.
    #[arg(long, value_enum)]
    pub dialect: Option<crate::history::Dialect>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct CheckDbArgs {
    /// Database URL as SQLAlchemy writes it. Default: $DATABASE_URL, else sqlalchemy.url in
    /// alembic.ini.
    #[arg(long)]
    pub url: Option<String>,

    /// Instead of the report, write the repair revision (as `fix-migrations repair`) from the
    /// database's actual state, with the constraint names the database has.
    #[arg(long)]
    pub repair: bool,

    /// With --repair: recreate keys inside `op.batch_alter_table(...)`.
    #[arg(long, requires = "repair")]
    pub batch: bool,

    /// With --repair: the new revision's message.
    #[arg(
        short,
        long,
        requires = "repair",
        default_value = "repair foreign key rules"
    )]
    pub message: String,

    /// Seconds to wait for a connection.
    #[arg(long, default_value_t = 10)]
    pub connect_timeout: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Github,
    /// SARIF 2.1.0, for code scanning.
    Sarif,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

pub fn main() -> ExitCode {
    let args = Args::parse();
    let ran = match &args.command {
        None => run(&args),
        Some(Command::Repair(repair)) => crate::repair::run(&args.common, repair),
        Some(Command::CheckDb(check)) => crate::database::run(&args.common, check),
        Some(Command::Completions(shell)) => crate::completions::run(shell),
    };
    match ran {
        Ok(code) => code,
        Err(err) => {
            let message = report::one_line(&format!("{err:#}"));
            eprintln!("error: {message}");
            // A run stopped before any file (a missing path, no project, a bad config) still
            // gives a JSON / GitHub / SARIF reader a document, with the error in it.
            if args.command.is_none() && !args.show_config && args.common.format != Format::Text {
                return report::print_early_error(&message, &args.common)
                    .map_or(ExitCode::from(2), ExitCode::from);
            }
            ExitCode::from(2)
        }
    }
}

/// What the run works on: the migration files, the model schema, the settings.
struct Inputs {
    root: PathBuf,
    /// The migration files, each with the bytes the revision pass already read (when it did).
    migrations: Vec<(PathBuf, Option<Prefetched>)>,
    schema: Schema,
    /// The model files' combined key: cached plans are valid for this schema only.
    schema_key: FileKey,
    config: Config,
    /// The parsed model files the schema was read from, with `--fix-models` only (it edits them).
    model_sources: Vec<SourceFile>,
    /// The Alembic project, whose history a migration that drops a key in upgrade() needs.
    project: Option<Project>,
    /// Content hashes of the files read, reused while their size and mtime stay.
    hashes: HashIndex,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    if args.show_config {
        return show_config(args, &cwd);
    }
    let mut inputs = gather(args, &cwd)?;
    // With --fix-models the migrations are planned against the models as they will be, so a
    // misplaced ondelete moved into ForeignKey() counts as the model's own value.
    let (mut outcomes, fixed_schema) = if args.fix_models {
        let run = model_fix::run(
            &inputs.model_sources,
            &inputs.schema,
            &inputs.config,
            args.common.write,
        );
        let mut schema = run.schema;
        schema.shown_from.clone_from(&inputs.schema.shown_from);
        (run.outcomes, Some(schema))
    } else {
        (vec![], None)
    };
    let schema = fixed_schema.as_ref().unwrap_or(&inputs.schema);
    let plans: Cache<cache::CachedPlan> =
        Cache::open(&inputs.root, "plans", 64, !args.common.no_cache);
    // Settings print deterministically (lists and matchers in file order), so their Debug text
    // stands for them. --fix-models plans against the models as they will be: its own context.
    let settings = format!("{:?} fix-models={}", inputs.config, args.fix_models);
    let key_bytes = [inputs.schema_key.hash[0], inputs.schema_key.hash[1]].map(u64::to_le_bytes);
    let context = cache::fingerprint(&[&key_bytes[0], &key_bytes[1], settings.as_bytes()]);
    let step = Step {
        schema,
        hashes: &inputs.hashes,
        config: &inputs.config,
        write: args.common.write,
        plans: &plans,
        context,
    };
    let stages: Vec<Stage> = std::mem::take(&mut inputs.migrations)
        .into_par_iter()
        .map(|(path, prefetched)| process(&path, prefetched, &step))
        .collect();
    // History is read only when a file turned out to need it (most runs: never).
    let needs_history = stages.iter().any(|s| matches!(s, Stage::NeedsHistory(_)));
    let history = match (&inputs.project, needs_history) {
        (Some(project), true) => HistoryBefore::load(project),
        _ => None,
    };
    outcomes.extend(
        stages
            .into_par_iter()
            .map(|stage| match stage {
                Stage::Done(outcome) => outcome,
                Stage::NeedsHistory(pending) => {
                    let before = history
                        .as_ref()
                        .and_then(|h| h.before(&pending.file.path, &inputs.schema));
                    process_with_history(pending, before.as_ref(), &step)
                }
            })
            .collect::<Vec<FileOutcome>>(),
    );
    let output = Output {
        outcomes,
        root: inputs.root.clone(),
        cwd,
        write: args.common.write,
        early: false,
    };
    // The caches are written while the report prints: neither waits for the other.
    let (_, code) = rayon::join(
        || {
            plans.save();
            inputs.hashes.save();
        },
        || report::print(&output, &args.common),
    );
    let code = code?;
    // The process ends next: leaving the schema, the texts and the plans to the OS costs
    // nothing, freeing their many small allocations one by one costs a warm run's time.
    std::mem::forget(output);
    std::mem::forget(inputs);
    std::mem::forget(fixed_schema);
    std::mem::forget(history);
    Ok(ExitCode::from(code))
}

/// `--show-config`: the settings the run would use. Works outside an Alembic project too
/// (the start directory is then the root).
fn show_config(args: &Args, cwd: &Path) -> Result<ExitCode> {
    let (start, _) = starting_point(args, cwd);
    let root = discover::find_project(&start).map_or(start, |p| p.root);
    let config = Config::load(args.common.config.as_deref(), &root)?;
    report::print_settings(&config, &args.common.models, args.common.format)?;
    Ok(ExitCode::SUCCESS)
}

fn gather(args: &Args, cwd: &Path) -> Result<Inputs> {
    let (start, files) = starting_point(args, cwd);
    let project = if files.is_empty() {
        Some(discover::find_project(&start)?)
    } else {
        discover::find_project(&start).ok()
    };
    let root = project
        .as_ref()
        .map_or_else(|| start.clone(), |p| p.root.clone());
    let config = Config::load(args.common.config.as_deref(), &root)?;
    let hashes = HashIndex::open(&root, !args.common.no_cache);

    // The revision graph and the model schema don't depend on each other: read side by side.
    let read_migrations = || match (&project, files.is_empty()) {
        (_, false) => discover::expand_paths(&files)
            .map(|paths| paths.into_iter().map(|path| (path, None)).collect()),
        (Some(project), true) => revisions_to_process(project, args.all, &hashes, &root),
        (None, true) => unreachable!("a project is required without explicit paths"),
    };
    let read_models = || -> Result<(Schema, FileKey, Vec<SourceFile>)> {
        if args.fix_models {
            // --fix-models edits the model files: it needs their text and the spans read from
            // them, which a cached schema doesn't keep.
            let sources = read_model_sources(&args.common, &config, &root, project.as_ref(), cwd)?;
            let keys = sources
                .iter()
                .map(|f| FileKey::of(&f.path, f.text.as_bytes()))
                .collect::<Result<Vec<FileKey>>>()?;
            let key = FileKey::combined(sources.iter().map(|f| f.path.as_path()).zip(&keys));
            Ok((models::read_models(&sources), key, sources))
        } else {
            let (schema, key) =
                read_schema_keyed(&args.common, &config, &root, project.as_ref(), cwd, &hashes)?;
            Ok((schema, key, vec![]))
        }
    };
    let (migrations, models) = rayon::join(read_migrations, read_models);
    let migrations = migrations?;
    let (mut schema, schema_key, model_sources) = models?;
    // Reasons show model files from the run's root; however the schema was read.
    schema.shown_from = Some(root.clone());
    Ok(Inputs {
        root,
        migrations,
        schema,
        schema_key,
        config,
        model_sources,
        project,
        hashes,
    })
}

/// Where the project search starts, and the explicit migration files / directories.
fn starting_point(args: &Args, cwd: &Path) -> (PathBuf, Vec<PathBuf>) {
    // Explicit PATHS that are Alembic project directories mean "run as if started there".
    let (project_dirs, files): (Vec<PathBuf>, Vec<PathBuf>) = args
        .paths
        .iter()
        .cloned()
        .partition(|p| p.is_dir() && discover::holds_config(p));
    let start = args
        .common
        .project
        .clone()
        .or_else(|| project_dirs.first().cloned())
        .or_else(|| {
            files.first().map(|f| {
                if f.is_dir() {
                    f.clone()
                } else {
                    f.parent().map(Path::to_path_buf).unwrap_or_default()
                }
            })
        })
        .map(|p| {
            if p.as_os_str().is_empty() {
                cwd.to_path_buf()
            } else {
                p
            }
        })
        .unwrap_or_else(|| cwd.to_path_buf());
    (start, files)
}

/// Every model file the settings point at, read into one schema. Model files are looked for
/// under `root`, never inside the migration version directories.
pub fn read_schema(
    common: &Common,
    config: &Config,
    root: &Path,
    project: Option<&Project>,
    cwd: &Path,
) -> Result<Schema> {
    let hashes = HashIndex::open(root, !common.no_cache);
    let mut schema = read_schema_keyed(common, config, root, project, cwd, &hashes)?.0;
    hashes.save();
    schema.shown_from = Some(root.to_path_buf());
    Ok(schema)
}

/// `read_schema` and the model files' combined key. An unchanged set of model files gives the
/// schema cached by the last run, without parsing.
pub fn read_schema_keyed(
    common: &Common,
    config: &Config,
    root: &Path,
    project: Option<&Project>,
    cwd: &Path,
    hashes: &HashIndex,
) -> Result<(Schema, FileKey)> {
    // Keyed by every candidate file, marker or not: an unchanged set needs no file read at all.
    let candidates = model_candidates(common, config, root, project, cwd)?;
    let contents = candidates
        .paths
        .par_iter()
        .map(|path| hashes.key_of(path))
        .collect::<Result<Vec<(Option<FileKey>, Option<Vec<u8>>)>>>()?;
    // Without a cache there are no keys; a default key then stands for "not cached".
    let set_key = FileKey::combined(
        candidates.paths.iter().map(PathBuf::as_path).zip(
            contents
                .iter()
                .map(|(key, _)| key.as_ref().unwrap_or(&NO_KEY)),
        ),
    );
    let cache: Cache<Schema> = Cache::open(root, "models", 1, !common.no_cache);
    // Taken, not copied: the shard is written only on a miss.
    if let Some(schema) = cache.take(root, &set_key, 0) {
        return Ok((schema, set_key));
    }
    let need_marker = candidates.need_marker;
    let model_files = candidates
        .paths
        .par_iter()
        .zip(contents.into_par_iter())
        .map(|(path, (_, bytes))| {
            let bytes = bytes_or_read(path, bytes)?;
            let marked = !need_marker || discover::has_table_marker(&bytes);
            Ok(marked.then(|| (path.clone(), bytes)))
        })
        .collect::<Result<Vec<Option<(PathBuf, Vec<u8>)>>>>()?
        .into_iter()
        .flatten()
        .collect();
    let schema = models::read_models_streamed(model_files)?;
    if !cache.enabled() {
        return Ok((schema, set_key));
    }
    // Stored, written, and moved back out: a schema is tens of megabytes, not to be copied.
    cache.put(root, set_key, 0, schema);
    cache.save();
    let schema = cache
        .take(root, &set_key, 0)
        .expect("the schema just stored is in this run's view of the cache");
    Ok((schema, set_key))
}

/// The parsed model files `read_schema` reads.
pub fn read_model_sources(
    common: &Common,
    config: &Config,
    root: &Path,
    project: Option<&Project>,
    cwd: &Path,
) -> Result<Vec<SourceFile>> {
    let candidates = model_candidates(common, config, root, project, cwd)?;
    let need_marker = candidates.need_marker;
    let sources = candidates
        .paths
        .par_iter()
        .map(|path| {
            let bytes = std::fs::read(path).map_err(|e| discover::io_error(path, &e))?;
            if need_marker && !discover::has_table_marker(&bytes) {
                return Ok(None);
            }
            parse::parse_source(path, bytes).map(Some)
        })
        .collect::<Result<Vec<Option<SourceFile>>>>()?;
    Ok(sources.into_iter().flatten().collect())
}

/// The model files the settings point at, under `root`, never inside the version directories.
fn model_candidates(
    common: &Common,
    config: &Config,
    root: &Path,
    project: Option<&Project>,
    cwd: &Path,
) -> Result<discover::ModelCandidates> {
    // Globs on the command line are relative to where the user stands; config ones to the root.
    let globs: Vec<String> = if common.models.is_empty() {
        config.models.clone()
    } else {
        common
            .models
            .iter()
            .map(|g| {
                if Path::new(g).is_absolute() {
                    g.clone()
                } else {
                    cwd.join(g).to_string_lossy().into_owned()
                }
            })
            .collect()
    };
    let exclude: Vec<PathBuf> = project.map(|p| p.version_dirs.clone()).unwrap_or_default();
    discover::model_candidates(root, &globs, &exclude)
}

/// The project's history, read once for the files that need it. History is a help, never a
/// requirement: a graph it can't replay leaves the files without one.
struct HistoryBefore {
    history: crate::history::History,
    dialect: crate::history::Dialect,
    /// Each revision's id by its file's canonical path, so a lookup costs no scan of them all.
    ids: HashMap<PathBuf, String>,
}

impl HistoryBefore {
    fn load(project: &Project) -> Option<HistoryBefore> {
        use crate::history::{Dialect, History};
        let revisions = discover::read_revisions(project).ok()?;
        let history = History::load(&project.root, revisions).ok()?;
        let dialect = Dialect::detect(None, project).map_or(Dialect::Postgresql, |(d, _)| d);
        let mut ids = HashMap::new();
        // The first revision of a path wins, as `History::revision_at` finds it.
        for revision in history.revisions().iter().rev() {
            let canonical =
                std::fs::canonicalize(&revision.path).unwrap_or_else(|_| revision.path.clone());
            ids.insert(canonical, revision.id.clone());
        }
        Some(HistoryBefore {
            history,
            dialect,
            ids,
        })
    }

    /// The keys as they exist just before the revision in `path` runs.
    fn before(&self, path: &Path, schema: &Schema) -> Option<KeySet> {
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let id = self.ids.get(&canonical)?;
        Some(self.history.before(id, schema, self.dialect).keys)
    }
}

fn revisions_to_process(
    project: &Project,
    all: bool,
    hashes: &HashIndex,
    root: &Path,
) -> Result<Vec<(PathBuf, Option<Prefetched>)>> {
    let cache: Cache<Option<discover::Revision>> =
        Cache::open(root, "revisions", 16, hashes.enabled());
    // What the pass read, kept for planning: a whole history is otherwise read twice.
    let read: Mutex<HashMap<PathBuf, Prefetched>> = Mutex::new(HashMap::new());
    let revisions = discover::read_revisions_with(project, |path| {
        let (key, bytes) = hashes.key_of(path)?;
        if let Some(revision) = key.and_then(|key| cache.get(path, &key, 0)) {
            return Ok(revision);
        }
        let bytes = bytes_or_read(path, bytes)?;
        let revision = discover::read_revision(path, &bytes)?;
        if let Some(kept) = Prefetched::of(bytes) {
            read.lock()
                .expect("no thread panics holding the lock")
                .insert(path.to_path_buf(), kept);
        }
        if let Some(key) = key {
            cache.put(path, key, 0, revision.clone());
        }
        Ok(revision)
    })?;
    cache.save();
    let mut paths: Vec<PathBuf> = if all {
        revisions.iter().map(|r| r.path.clone()).collect()
    } else {
        discover::heads(&revisions)
            .into_iter()
            .map(|r| r.path.clone())
            .collect()
    };
    paths.sort();
    let mut read = read
        .into_inner()
        .expect("no thread panics holding the lock");
    Ok(paths
        .into_iter()
        .map(|path| {
            let kept = read.remove(&path);
            (path, kept)
        })
        .collect())
}

/// A migration's bytes as the revision pass read them. A file with no key marker keeps only
/// that verdict (its text is never parsed), and only when it is valid text: an invalid one is
/// read again by planning, which reports it.
enum Prefetched {
    Bytes(Vec<u8>),
    NoKeys,
}

impl Prefetched {
    fn of(bytes: Vec<u8>) -> Option<Prefetched> {
        if migrations::may_hold_keys(&bytes) {
            return Some(Prefetched::Bytes(bytes));
        }
        let text = !bytes.contains(&0) && std::str::from_utf8(&bytes).is_ok();
        text.then_some(Prefetched::NoKeys)
    }
}

/// The bytes the hash index already read for `path`, else the file's bytes now.
fn bytes_or_read(path: &Path, bytes: Option<Vec<u8>>) -> Result<Vec<u8>> {
    match bytes {
        Some(bytes) => Ok(bytes),
        None => std::fs::read(path).map_err(|e| discover::io_error(path, &e)),
    }
}

pub fn read_python(path: &Path) -> Result<SourceFile> {
    let bytes = std::fs::read(path).map_err(|e| discover::io_error(path, &e))?;
    parse::parse_source(path, bytes)
}

/// What every migration file is processed with.
struct Step<'a> {
    schema: &'a Schema,
    hashes: &'a HashIndex,
    config: &'a Config,
    write: bool,
    /// Plans from earlier runs, valid for `context` (the schema and settings).
    plans: &'a Cache<cache::CachedPlan>,
    context: u64,
}

/// A migration file after the first pass: done, or waiting for the project's history.
enum Stage {
    Done(FileOutcome),
    NeedsHistory(Pending),
}

/// A file parsed and scanned whose plan depends on the keys as they exist before it runs:
/// it drops a foreign key in upgrade() (a revert pair without a mirror, a downgrade() that
/// restores the dropped key). Without such a drop, history changes nothing in the plan.
struct Pending {
    file: SourceFile,
    migration: migrations::Migration,
    key: Option<FileKey>,
}

/// What planning one file gives: nothing to parse, a plan (with the original text and the
/// fixed text), or a file that needs history first.
enum Planned {
    Unparsed,
    Plan(String, FilePlan, Option<String>),
    NeedsHistory(Pending),
}

/// One migration file through the pipeline. Errors stay with the file so the others still run.
fn process(path: &Path, prefetched: Option<Prefetched>, step: &Step) -> Stage {
    match plan_file(path, prefetched, step) {
        Ok(Planned::NeedsHistory(pending)) => Stage::NeedsHistory(pending),
        Ok(Planned::Unparsed) => Stage::Done(outcome(path, Ok(None))),
        Ok(Planned::Plan(text, plan, fixed)) => {
            Stage::Done(outcome(path, finish(path, step, text, plan, fixed)))
        }
        Err(err) => Stage::Done(outcome(path, Err(err))),
    }
}

fn plan_file(path: &Path, prefetched: Option<Prefetched>, step: &Step) -> Result<Planned> {
    // What the revision pass read is not read again (and, without a cache, needs no key).
    // `markers`: whether the file holds a key marker, when the revision pass found out.
    let (key, bytes, markers) = match prefetched {
        None => {
            let (key, bytes) = step.hashes.key_of(path)?;
            (key, bytes, None)
        }
        Some(kept) => {
            let key = if step.hashes.enabled() {
                step.hashes.key_of(path)?.0
            } else {
                None
            };
            match kept {
                Prefetched::Bytes(bytes) => (key, Some(bytes), Some(true)),
                Prefetched::NoKeys => (key, None, Some(false)),
            }
        }
    };
    // A plan stored under the plain context was made for a file that needs no history. Only
    // a plan that edits needs the text (for the diff and the write).
    if let Some(cached) = key.and_then(|key| step.plans.get(path, &key, step.context)) {
        if cached.unparsed {
            return Ok(Planned::Unparsed);
        }
        if cached.edits_nothing() {
            return Ok(Planned::Plan(String::new(), cached.into_plan(), None));
        }
        let text = parse::decode(path, bytes_or_read(path, bytes)?)?;
        let (plan, fixed) = from_cache(&text, cached);
        return Ok(Planned::Plan(text, plan, fixed));
    }
    // No marker of anything the tool edits in the file: checked without being parsed.
    let unparsed = || {
        if let Some(key) = key {
            step.plans
                .put(path, key, step.context, cache::CachedPlan::unparsed());
        }
        Ok(Planned::Unparsed)
    };
    if markers == Some(false) {
        return unparsed();
    }
    let bytes = bytes_or_read(path, bytes)?;
    if markers.is_none() && !migrations::may_hold_keys(&bytes) {
        parse::decode(path, bytes)?;
        return unparsed();
    }
    let file = parse::parse_source(path, bytes)?;
    let migration = migrations::scan(&file);
    let pending = Pending {
        file,
        migration,
        key,
    };
    if pending
        .migration
        .drops
        .iter()
        .any(|d| d.section == migrations::Section::Upgrade)
    {
        return Ok(Planned::NeedsHistory(pending));
    }
    let (text, plan, fixed) = plan_fresh(pending, None, step.context, step)?;
    Ok(Planned::Plan(text, plan, fixed))
}

/// The second pass for a file that needs history: its plan with the keys before it.
fn process_with_history(pending: Pending, before: Option<&KeySet>, step: &Step) -> FileOutcome {
    let path = pending.file.path.clone();
    // A plan made with history is valid for that history only.
    let context = before.map_or(step.context, |keys| {
        let history = serde_json::to_vec(keys).unwrap_or_default();
        cache::fingerprint(&[&step.context.to_le_bytes(), &history])
    });
    let cached = pending
        .key
        .and_then(|key| step.plans.get(&path, &key, context));
    let planned = match cached {
        Some(cached) => {
            let text = pending.file.text;
            let (plan, fixed) = from_cache(&text, cached);
            Ok((text, plan, fixed))
        }
        None => plan_fresh(pending, before, context, step),
    };
    let result = planned.and_then(|(text, plan, fixed)| finish(&path, step, text, plan, fixed));
    outcome(&path, result)
}

/// The same bytes with the same schema and settings: the same plan, whose edits already
/// passed the re-parse check.
fn from_cache(text: &str, cached: cache::CachedPlan) -> (FilePlan, Option<String>) {
    let plan = cached.into_plan();
    let fixed = (!plan.edits.is_empty()).then(|| fix::apply(text, plan.edits.clone()).0);
    (plan, fixed)
}

fn plan_fresh(
    pending: Pending,
    before: Option<&KeySet>,
    context: u64,
    step: &Step,
) -> Result<(String, FilePlan, Option<String>)> {
    let Pending {
        file,
        migration,
        key,
    } = pending;
    let plan = fix::plan_with_history(&file, &migration, step.schema, step.config, before);
    let fixed = if plan.edits.is_empty() {
        None
    } else {
        Some(fix::fixed_text(&file, plan.edits.clone())?)
    };
    if let Some(key) = key {
        step.plans
            .put(&file.path, key, context, cache::CachedPlan::of(&plan));
    }
    Ok((file.text, plan, fixed))
}

/// Drop a fixed text equal to the original; write it with --write, after one last parse of
/// the whole text: the checks before it looked at the edited argument lists only, and a
/// plan from the cache was checked by an earlier run.
fn finish(
    path: &Path,
    step: &Step,
    text: String,
    plan: FilePlan,
    fixed: Option<String>,
) -> Result<Option<(String, FilePlan, Option<String>)>> {
    let fixed = fixed.filter(|fixed| *fixed != text);
    if step.write
        && let Some(fixed) = &fixed
    {
        if !parse::parses_cleanly(fixed) {
            bail!(
                "{}: the fixed file would not parse; nothing written (please report this)",
                path.display()
            );
        }
        fix::write_atomically(path, fixed)?;
    }
    Ok(Some((text, plan, fixed)))
}

fn outcome(path: &Path, result: Result<Option<(String, FilePlan, Option<String>)>>) -> FileOutcome {
    match result {
        Ok(None) => FileOutcome {
            path: path.to_path_buf(),
            original: None,
            fixed: None,
            plan: FilePlan::default(),
            error: None,
        },
        Ok(Some((text, plan, fixed))) => FileOutcome {
            path: path.to_path_buf(),
            original: Some(text),
            fixed,
            plan,
            error: None,
        },
        Err(err) => FileOutcome {
            path: path.to_path_buf(),
            original: None,
            fixed: None,
            plan: FilePlan::default(),
            error: Some(report::one_line(&format!("{err:#}"))),
        },
    }
}
