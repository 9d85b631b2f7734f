//! The command line and the run that strings the steps together:
//! discover -> parse -> models -> migrations -> policy -> fix -> report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use rayon::prelude::*;

use crate::config::Config;
use crate::discover::{self, Project};
use crate::fix::{self, FilePlan};
use crate::migrations;
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
  fix-migrations migrations/versions/abc123_add_notes.py --write";

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
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Replay the migration history and write a new revision that drops and recreates every
    /// foreign key whose rules differ from the policy's.
    Repair(RepairArgs),
    /// Compare a live database's foreign key rules with the models.
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
}

#[derive(Debug, Clone, clap::Args)]
pub struct CheckDbArgs {
    /// Database URL as SQLAlchemy writes it. Default: $DATABASE_URL, else sqlalchemy.url in
    /// alembic.ini.
    #[arg(long)]
    pub url: Option<String>,

    /// Write a repair revision from the database's actual state.
    #[arg(long)]
    pub repair: bool,

    /// Seconds to wait for a connection.
    #[arg(long, default_value_t = 10)]
    pub connect_timeout: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Github,
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
            eprintln!("error: {}", report::one_line(&format!("{err:#}")));
            ExitCode::from(2)
        }
    }
}

/// What the run works on: the migration files, the model schema, the settings.
struct Inputs {
    root: PathBuf,
    migrations: Vec<PathBuf>,
    schema: Schema,
    config: Config,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let inputs = gather(args, &cwd)?;
    let outcomes: Vec<FileOutcome> = inputs
        .migrations
        .par_iter()
        .map(|path| process(path, &inputs.schema, &inputs.config, args.common.write))
        .collect();
    let output = Output {
        outcomes,
        root: inputs.root.clone(),
        cwd,
        write: args.common.write,
    };
    let code = report::print(&output, &args.common)?;
    Ok(ExitCode::from(code))
}

fn gather(args: &Args, cwd: &Path) -> Result<Inputs> {
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
    let project = if files.is_empty() {
        Some(discover::find_project(&start)?)
    } else {
        discover::find_project(&start).ok()
    };
    let root = project
        .as_ref()
        .map_or_else(|| start.clone(), |p| p.root.clone());
    let config = Config::load(args.common.config.as_deref(), &root)?;

    let migrations = match (&project, files.is_empty()) {
        (_, false) => discover::expand_paths(&files)?,
        (Some(project), true) => revisions_to_process(project, args.all)?,
        (None, true) => unreachable!("a project is required without explicit paths"),
    };
    let schema = read_schema(&args.common, &config, &root, project.as_ref(), cwd)?;
    Ok(Inputs {
        root,
        migrations,
        schema,
        config,
    })
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
    let model_paths = discover::model_files(root, &globs, &exclude)?;
    let model_sources = model_paths
        .par_iter()
        .map(|p| read_python(p))
        .collect::<Result<Vec<SourceFile>>>()?;
    Ok(models::read_models(&model_sources))
}

fn revisions_to_process(project: &Project, all: bool) -> Result<Vec<PathBuf>> {
    let revisions = discover::read_revisions(project)?;
    let mut paths: Vec<PathBuf> = if all {
        revisions.iter().map(|r| r.path.clone()).collect()
    } else {
        discover::heads(&revisions)
            .into_iter()
            .map(|r| r.path.clone())
            .collect()
    };
    paths.sort();
    Ok(paths)
}

pub fn read_python(path: &Path) -> Result<SourceFile> {
    let bytes = std::fs::read(path).map_err(|e| discover::io_error(path, &e))?;
    parse::parse_source(path, bytes)
}

/// One migration file through the pipeline. Errors stay with the file so the others still run.
fn process(path: &Path, schema: &Schema, config: &Config, write: bool) -> FileOutcome {
    let result = (|| -> Result<(SourceFile, FilePlan, Option<String>)> {
        let file = read_python(path)?;
        let migration = migrations::scan(&file);
        let plan = fix::plan(&file, &migration, schema, config);
        let fixed = if plan.edits.is_empty() {
            None
        } else {
            Some(fix::fixed_text(&file, plan.edits.clone())?)
        };
        let fixed = fixed.filter(|text| *text != file.text);
        if write && let Some(text) = &fixed {
            fix::write_atomically(path, text)?;
        }
        Ok((file, plan, fixed))
    })();
    match result {
        Ok((file, plan, fixed)) => FileOutcome {
            path: path.to_path_buf(),
            original: Some(file.text),
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
