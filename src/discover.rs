//! Step 1: which files to read. The Alembic project (alembic.ini / pyproject.toml), its versions
//! directories, the revision graph and its heads, and the model files. Knows nothing about
//! foreign keys.

use std::path::{Path, PathBuf};

use anyhow::Result;

#[derive(Debug, Clone)]
pub struct Project {
    /// Directory holding alembic.ini (or pyproject.toml with [tool.alembic]).
    pub root: PathBuf,
    /// The file the project settings came from.
    pub config_file: PathBuf,
    /// `script_location` resolved to an absolute path.
    pub script_location: PathBuf,
    /// `version_locations` (or `<script_location>/versions`), absolute.
    pub version_dirs: Vec<PathBuf>,
    /// `sqlalchemy.url` from alembic.ini, when set.
    pub sqlalchemy_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub id: String,
    pub down_revisions: Vec<String>,
    pub path: PathBuf,
}

/// Find the Alembic project from `start` upward.
pub fn find_project(start: &Path) -> Result<Project> {
    anyhow::bail!("{}: no Alembic project found (no alembic.ini or [tool.alembic])", start.display())
}

/// Every revision file in the project's versions directories.
pub fn read_revisions(_project: &Project) -> Result<Vec<Revision>> {
    Ok(vec![])
}

/// Revisions no other revision names as a down_revision, sorted by id.
pub fn heads(revisions: &[Revision]) -> Vec<&Revision> {
    revisions.iter().collect()
}

/// Explicit PATHS: files as given, directories walked recursively for `.py` files.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    Ok(paths.to_vec())
}

/// Model files: from `--models` globs when given, else every .py under `root` that defines
/// SQLAlchemy/SQLModel tables, skipping `exclude` (the versions directories), virtualenvs,
/// site-packages, hidden directories and whatever .gitignore ignores.
pub fn model_files(_root: &Path, _globs: &[String], _exclude: &[PathBuf]) -> Result<Vec<PathBuf>> {
    Ok(vec![])
}
