//! `vmmap manpage`: the man pages.

use std::io::{self, Write};
use std::path::Path;

use crate::cli::Cli;
use crate::{exit, output_error, Failure};

/// `vmmap manpage [--dir DIR]`: the man page in roff, from the clap
/// definitions.
pub(crate) fn manpage(dir: Option<&Path>) -> Result<(), Failure> {
    use clap::CommandFactory;
    let cmd = Cli::command();
    match dir {
        Some(dir) => {
            // clap_mangen::generate_to, with its File::create replaced by
            // the writer every output uses.
            fn each(cmd: clap::Command, dir: &Path) -> io::Result<()> {
                for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
                    each(sub.clone(), dir)?;
                }
                let man = clap_mangen::Man::new(cmd);
                vmmap_core::output::write(&dir.join(man.get_filename()), |w| man.render(w))
            }
            let mut cmd = cmd.disable_help_subcommand(true);
            cmd.build();
            each(cmd, dir).map_err(|e| Failure {
                code: exit::OUTPUT,
                message: format!("cannot write the man pages into {}: {e}", dir.display()),
            })
        }
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .map_err(|e| output_error(e, "the man page"))?;
            io::stdout()
                .lock()
                .write_all(&out)
                .map_err(|e| output_error(e, "standard output"))
        }
    }
}
