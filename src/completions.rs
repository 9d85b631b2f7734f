//! `fix-migrations completions <shell>`: the shell completion script, generated from the same
//! clap definition the parser uses, so it never falls behind the options.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::{Args, CompletionsArgs};

pub fn run(args: &CompletionsArgs) -> Result<ExitCode> {
    let mut script = Vec::new();
    let mut command = Args::command();
    let name = command.get_name().to_string();
    clap_complete::generate(args.shell, &mut command, name, &mut script);
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&script).and_then(|()| stdout.flush()) {
        // `fix-migrations completions bash | head` closing the pipe early is not an error.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        written => {
            written.context("cannot write the completion script to stdout")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
