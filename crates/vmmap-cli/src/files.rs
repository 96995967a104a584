//! Files named on the command line: how they are shown in messages,
//! loaded and written.

use std::io::{self, Write};
use std::path::Path;

use crate::{exit, output_error, Failure};

/// A path for a message: file names may hold any byte, control
/// characters included (`vmmap open *.vmmap`).
pub(crate) fn shown(path: &Path) -> std::borrow::Cow<'_, str> {
    use std::os::unix::ffi::OsStrExt;
    vmmap_core::text::escape_bytes(path.as_os_str().as_bytes())
}

/// Loads a .vmmap file's snapshots (not its trace, which the trace views
/// stream from the file); a damaged tail is a warning, with what was
/// recovered before it.
pub(crate) fn load(path: &Path) -> Result<vmmap_core::format::Loaded, Failure> {
    load_with(path, vmmap_core::format::load_file_snapshots)
}

/// [`load`], keeping the trace chunks in memory too.
pub(crate) fn load_with_trace(path: &Path) -> Result<vmmap_core::format::Loaded, Failure> {
    load_with(path, vmmap_core::format::load_file)
}

fn load_with(
    path: &Path,
    loader: fn(&Path) -> Result<vmmap_core::format::Loaded, vmmap_core::format::FormatError>,
) -> Result<vmmap_core::format::Loaded, Failure> {
    let what = shown(path);
    let loaded = match loader(path) {
        Ok(l) => l,
        Err(vmmap_core::format::FormatError::Io(e)) => {
            return Err(Failure {
                code: exit::OTHER,
                message: format!("cannot read {what}: {e}"),
            });
        }
        Err(e) => {
            return Err(Failure {
                code: exit::BAD_FILE,
                message: format!("{what}: {e}"),
            })
        }
    };
    if let Some(p) = &loaded.problem {
        eprintln!(
            "vmmap: warning: {what}: {p}; the {} snapshot(s) and {} sample(s) before it are loaded",
            loaded.snapshots.len(),
            loaded.samples.len()
        );
    }
    Ok(loaded)
}

/// Writes an output: `-` is standard output; anything else goes through
/// [`vmmap_core::output::write`] (a regular file replaced atomically,
/// keeping its owner and mode; a device or FIFO written in place; links
/// followed only where the kernel allows).
pub(crate) fn write_file(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), Failure> {
    if is_stdout(path) {
        let mut out = io::stdout().lock();
        return write(&mut out)
            .and_then(|()| out.flush())
            .map_err(|e| output_error(e, "standard output"));
    }
    vmmap_core::output::write(path, write).map_err(|e| output_error(e, &shown(path)))
}

/// `-o -`: standard output.
pub(crate) fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Checks the CLI's view of a file before showing it.
pub(crate) fn require_snapshots(
    loaded: &vmmap_core::format::Loaded,
    what: &str,
) -> Result<(), Failure> {
    if loaded.snapshots.is_empty() {
        return Err(Failure {
            code: exit::BAD_FILE,
            message: format!("{what} holds no complete snapshot"),
        });
    }
    Ok(())
}
