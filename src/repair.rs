//! `fix-migrations repair`: the revision that drops and recreates every wrong key.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cli::{Common, RepairArgs};

pub fn run(_common: &Common, _args: &RepairArgs) -> Result<ExitCode> {
    bail!("repair: not implemented yet")
}
