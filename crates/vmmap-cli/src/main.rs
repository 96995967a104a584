//! `vmmap`: the command-line front end. Parses arguments and hands each
//! subcommand to its module; every failure maps to its own exit code
//! ([`exit`]).

mod address;
mod attach;
mod cli;
mod completions;
mod config;
mod convert;
mod diff;
mod exit;
mod explain;
mod files;
mod find;
mod inherited;
mod manpage;
mod map;
mod memory;
mod metrics;
mod multi;
mod open;
mod owners;
mod ps;
mod report;
mod run;
mod serve;
mod show;
mod snapshot;
mod stop;
mod strings;
mod target;
mod timeline;
mod top;
mod trace;
mod trace_views;
mod watch;
mod width;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
pub(crate) use exit::{output_error, Failure};
pub(crate) use files::{is_stdout, load, load_with_trace, shown, write_file};
pub(crate) use target::{names_file, resolve};

fn main() -> ExitCode {
    vmmap_trace::launch::Inherited::record(inherited::at_start());
    // clap quotes a bad argument as it is, and an argument may be a file
    // name chosen by someone else (`vmmap open *`). With such arguments
    // the message is rendered without colours, and each of them escaped.
    let hostile: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .filter(|a| vmmap_core::text::needs_quoting(a))
        .collect();
    let parsed = if let Some(cli) = hostile.is_empty().then(cli::parse_snapshot).flatten() {
        Ok(cli)
    } else if hostile.is_empty() {
        Cli::try_parse()
    } else {
        use clap::{CommandFactory, FromArgMatches};
        Cli::command()
            .styles(clap::builder::Styles::plain())
            .try_get_matches()
            .and_then(|m| Cli::from_arg_matches(&m))
    };
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => {
            // --help and --version go to stdout and exit 0; a closed pipe
            // there is no error either.
            let code = if e.use_stderr() { exit::USAGE } else { 0 };
            if e.use_stderr() && !hostile.is_empty() {
                let mut text = e.render().ansi().to_string();
                for a in &hostile {
                    text = text.replace(a.as_str(), &vmmap_core::text::escape(a));
                }
                eprint!("{}", vmmap_core::text::escape_lines(&text));
            } else {
                let _ = e.print();
            }
            return ExitCode::from(code);
        }
    };
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                // Messages quote names, paths and file contents: the last
                // guard before the terminal.
                eprintln!("vmmap: {}", vmmap_core::text::escape_lines(&f.message));
            }
            ExitCode::from(f.code)
        }
    }
}

fn dispatch(cli: Cli) -> Result<(), Failure> {
    use vmmap_tui::palette::{choose, ColourChoice};
    choose(match cli.color {
        cli::ColorWhen::Auto => ColourChoice::Auto,
        cli::ColorWhen::Always => ColourChoice::Always,
        cli::ColorWhen::Never => ColourChoice::Never,
    });
    match cli.command {
        Some(Command::Ps(a)) => ps::ps(&a, &cli.proc_root),
        Some(Command::Top(a)) => top::top(&a, &cli.proc_root),
        Some(Command::Explain {
            topic: Some(target),
            address: Some(addr),
        }) => explain::explain_address(&target, &addr, &cli.proc_root),
        Some(Command::Explain { topic, .. }) => explain::explain(topic.as_deref()),
        Some(Command::Config { action }) => config::config(action),
        Some(Command::Open(a)) => open::open(&a, &cli.proc_root),
        Some(Command::Convert(a)) => convert::convert(&a),
        Some(Command::Strings(a)) => strings::strings(&a, &cli.proc_root),
        Some(Command::Find(a)) => find::find(&a, &cli.proc_root),
        Some(Command::Map(a)) => map::map(&a, &cli.proc_root),
        Some(Command::Report(a)) => report::report(&a, &cli.proc_root),
        Some(Command::Watch(a)) => watch::watch(&a, &cli.proc_root),
        Some(Command::Timeline(a)) => timeline::timeline(&a),
        Some(Command::Diff(a)) => diff::diff(&a, &cli.proc_root),
        Some(Command::Run(a)) => run::run(&a, &cli.proc_root),
        Some(Command::Attach(a)) => attach::attach(&a, &cli.proc_root),
        Some(Command::Trace(a)) => trace::trace(&a),
        Some(Command::Metrics(a)) => metrics::metrics(&a, &cli.proc_root),
        Some(Command::Serve(a)) => serve::serve(&a, &cli.proc_root),
        Some(Command::Completions { shell }) => completions::completions(shell),
        Some(Command::Manpage { dir }) => manpage::manpage(dir.as_deref()),
        None => snapshot::snapshot(&cli.snapshot, &cli.proc_root),
    }
}
