//! The README's install command gives a `vmmap` whose `vmmap run` works
//! with no option or variable pointing at the agent, from anywhere.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::util::{output_within, starting_processes, TempDir, VMMAP};

#[test]
fn installed_vmmap_runs_a_program_under_its_agent_from_anywhere() {
    // The profile the binary under test was built with, so that the
    // script's build finds everything already built.
    let built = Path::new(VMMAP).parent().unwrap();
    let profile = match built.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev".to_string(),
        Some(other) => other.to_string(),
        None => panic!("{VMMAP}: no profile directory"),
    };
    // Both outside the repository: nothing may be found relative to it.
    let prefix = TempDir::in_system_tmp("install-prefix");
    let elsewhere = TempDir::in_system_tmp("install-cwd");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../install.sh");
    // The agent as every traced test builds it, beside the binary.
    crate::trace::agent();
    let o = output_within(
        Command::new("bash")
            .arg(&script)
            // The build that made the binary under test made the agent
            // beside it: rebuilding here would replace the library that
            // the other tests' traced programs have mapped.
            .args(["--no-build", "--profile", &profile, "--prefix"])
            .arg(prefix.path())
            // The environment of a shell, not the one cargo gives a test
            // (its CARGO_* variables would make the build differ from the
            // one that built this test, and rebuild both each time).
            .env_clear()
            .envs(
                [
                    "PATH",
                    "HOME",
                    "CARGO_HOME",
                    "RUSTUP_HOME",
                    "CARGO_INCREMENTAL",
                    "CARGO_TARGET_DIR",
                ]
                .iter()
                .filter_map(|k| std::env::var_os(k).map(|v| (k, v))),
            )
            .env("CARGO", env!("CARGO"))
            .stdin(Stdio::null()),
        600,
    );
    assert!(
        o.status.success(),
        "install.sh failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let vmmap = prefix.path().join("bin/vmmap");
    assert!(prefix.path().join("lib/vmmap/libvmmap_agent.so").is_file());
    assert!(prefix.path().join("share/man/man1/vmmap.1").is_file());

    let _g = starting_processes();
    let o = output_within(
        Command::new(&vmmap)
            .args(["run", "-q", "-o", "true.vmmap", "--", "true"])
            .current_dir(elsewhere.path())
            .env_remove("VMMAP_AGENT")
            .stdin(Stdio::null()),
        60,
    );
    assert!(
        o.status.success(),
        "{} run -- true failed: {}",
        vmmap.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    // The agent recorded the run: its summary counts the operations.
    let o = output_within(
        Command::new(&vmmap)
            .args(["trace", "true.vmmap"])
            .current_dir(elsewhere.path())
            .stdin(Stdio::null()),
        60,
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("operations recorded"), "{out}");
}
