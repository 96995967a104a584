//! `vmmap config`: the terminal UI's settings.

use std::io::Write;

use crate::cli::ConfigAction;
use crate::{exit, Failure};

pub(crate) fn config(action: ConfigAction) -> Result<(), Failure> {
    let path = vmmap_tui::Settings::path();
    let shown = path.as_ref().map_or_else(
        || "(no HOME or XDG_CONFIG_HOME)".to_string(),
        |p| p.display().to_string(),
    );
    // Through a writer, not println!: a reader that went away is the end
    // of the output (exit 0), never a panic.
    let out = std::io::stdout();
    let mut w = out.lock();
    let written = match action {
        ConfigAction::Path => writeln!(w, "{shown}"),
        ConfigAction::Show => {
            let (s, warning) = vmmap_tui::Settings::load();
            if let Some(w) = warning {
                eprintln!("vmmap: {w}");
            }
            write!(w, "# {shown}\n{}", vmmap_tui::settings::to_toml(&s))
        }
        ConfigAction::Reset => match vmmap_tui::Settings::reset() {
            Ok(Some(p)) => writeln!(w, "removed {}: defaults restored", p.display()),
            Ok(None) => writeln!(w, "no settings file at {shown}: already the defaults"),
            Err(e) => {
                return Err(Failure {
                    code: exit::OUTPUT,
                    message: format!("cannot remove {shown}: {e}"),
                })
            }
        },
    };
    written
        .and_then(|()| w.flush())
        .map_err(|e| crate::output_error(e, "standard output"))
}
