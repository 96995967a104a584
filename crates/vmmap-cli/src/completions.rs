//! `vmmap completions`: shell completion scripts.

use std::io::{self, Write};

use crate::cli::Cli;
use crate::{output_error, Failure};

/// `vmmap completions SHELL`: the completion script, generated from the
/// clap definitions so it never lags behind them.
pub(crate) fn completions(shell: clap_complete::Shell) -> Result<(), Failure> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "vmmap", &mut out);
    io::stdout()
        .lock()
        .write_all(&out)
        .map_err(|e| output_error(e, "standard output"))
}
