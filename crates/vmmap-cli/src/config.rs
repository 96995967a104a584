//! `vmmap config`: the terminal UI's settings.

use crate::cli::ConfigAction;
use crate::{exit, Failure};

pub(crate) fn config(action: ConfigAction) -> Result<(), Failure> {
    let path = vmmap_tui::Settings::path();
    let shown = path.as_ref().map_or_else(
        || "(no HOME or XDG_CONFIG_HOME)".to_string(),
        |p| p.display().to_string(),
    );
    match action {
        ConfigAction::Path => println!("{shown}"),
        ConfigAction::Show => {
            let (s, warning) = vmmap_tui::Settings::load();
            if let Some(w) = warning {
                eprintln!("vmmap: {w}");
            }
            println!("# {shown}");
            print!("{}", vmmap_tui::settings::to_toml(&s));
        }
        ConfigAction::Reset => match vmmap_tui::Settings::reset() {
            Ok(Some(p)) => println!("removed {}: defaults restored", p.display()),
            Ok(None) => println!("no settings file at {shown}: already the defaults"),
            Err(e) => {
                return Err(Failure {
                    code: exit::OUTPUT,
                    message: format!("cannot remove {shown}: {e}"),
                })
            }
        },
    }
    Ok(())
}
