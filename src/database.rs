//! `fix-migrations check-db`: read a live database's foreign keys (SQLite, PostgreSQL).

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cli::{CheckDbArgs, Common};

pub fn run(_common: &Common, _args: &CheckDbArgs) -> Result<ExitCode> {
    bail!("check-db: not implemented yet")
}
