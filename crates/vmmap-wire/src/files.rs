//! The trace files of a launched run: how a followed process names its
//! own, and how a traced image that may not open its file asks the
//! launcher for it.
//!
//! Each image opens its trace file by path. One started by an `exec` after
//! the program gave up root (`setpriv`, `runuser -u`, `gosu`, `su-exec`)
//! runs as a user who may not write the launcher's file. It then connects
//! to the launcher's abstract unix socket named in [`ENV`], sends the path
//! it wants and a newline, and receives one byte, [`GRANTED`] with the
//! file's descriptor (`SCM_RIGHTS`) or [`REFUSED`]. The launcher hands a
//! file only to the process it started (the main file) or, following
//! children, to a descendant of it asking for the name [`child_file_name`]
//! gives that process; it never creates anything else.

/// The variable that names the launcher's socket (an abstract name, the
/// leading NUL left out).
pub const ENV: &str = "VMMAP_TRACE_FILES";
/// The answer: the descriptor comes with it.
pub const GRANTED: u8 = 1;
/// The answer: no file for this process under that name.
pub const REFUSED: u8 = 0;
/// The longest request (a path and its newline).
pub const MAX_REQUEST: usize = 4096;

/// `trace.vmmap`'s stem `trace` → `trace.PID.vmmap`: a followed process's
/// file, whichever process started it (the same name before and after an
/// exec, so its images stay in one file). `ns` is the inode of the
/// process's pid namespace when it is not the launcher's: there it may be
/// pid 1 like every other such process (`trace.1-4026532941.vmmap`).
pub fn child_file_name(stem: &str, pid: u32, ns: Option<u64>) -> String {
    match ns {
        Some(ns) => format!("{stem}.{pid}-{ns}.vmmap"),
        None => format!("{stem}.{pid}.vmmap"),
    }
}

#[cfg(test)]
mod tests {
    use super::child_file_name;

    #[test]
    fn followed_files_are_named_by_pid_and_foreign_namespace() {
        assert_eq!(child_file_name("run", 42, None), "run.42.vmmap");
        assert_eq!(
            child_file_name("run", 1, Some(4026532941)),
            "run.1-4026532941.vmmap"
        );
    }
}
