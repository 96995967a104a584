//! The settings file, whose place the environment names: `sudo -E` leaves
//! HOME pointing into the invoking user's home, so root's vmmap reads and
//! would write a file another user controls.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use crate::tui::Tmux;
use crate::util::*;

fn config_show(config_home: &Path) -> std::process::Output {
    output_within(
        Command::new(env!("CARGO_BIN_EXE_vmmap"))
            .args(["config", "show"])
            .env("XDG_CONFIG_HOME", config_home),
        20,
    )
}

/// A FIFO at the settings' name held `vmmap config show` and the UI at
/// its start in `open` for ever, a link to `/dev/zero` filled memory
/// until the machine ran out, and a sparse 2 GiB file was read whole.
/// Each is refused at once, with the reason, and the defaults are used.
#[test]
fn a_settings_name_that_is_not_a_small_file_is_never_waited_on() {
    let home = TempDir::new("settings-odd");
    let dir = home.path().join("vmmap");
    std::fs::create_dir(&dir).unwrap();
    let file = dir.join("config.toml");
    let fifo = || {
        let c = std::ffi::CString::new(file.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    };
    let cases: [(&str, &dyn Fn(), &str); 3] = [
        ("a FIFO", &fifo, "not a regular file"),
        (
            "a link to /dev/zero",
            &|| std::os::unix::fs::symlink("/dev/zero", &file).unwrap(),
            "not a regular file",
        ),
        (
            "a sparse 2 GiB file",
            &|| {
                let f = std::fs::File::create(&file).unwrap();
                f.set_len(2 << 30).unwrap();
            },
            "larger than 64 KiB",
        ),
    ];
    for (what, make, reason) in cases {
        let _ = std::fs::remove_file(&file);
        make();
        let out = config_show(home.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{what}: {:?} {err}", out.status);
        assert!(
            err.contains(&format!(
                "cannot read {}: {reason}; using defaults",
                file.display()
            )),
            "{what}: {err}"
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("units = \"human\""), "{what}: {text}");
    }

    // The UI starts on its defaults and says why.
    let _ = std::fs::remove_file(&file);
    fifo();
    require_tool("tmux", "tmux");
    let t = Tmux::launch(&[], &[("XDG_CONFIG_HOME", home.path().as_os_str())], "");
    t.wait_for("not a regular file; using defaults");
}

/// Root with another user's config home (sudo -E): saving the units (`u`
/// in the UI) followed the link that user put at the settings' name and
/// overwrote the root-owned file it named, and `vmmap config reset`
/// removed their file; where their home had no `.config`, root created
/// root-owned directories in it. Now both refuse and say why, and nothing
/// in that home or beyond it changes.
#[test]
fn root_leaves_another_users_settings_alone() {
    assert_eq!(
        // SAFETY: geteuid cannot fail.
        unsafe { libc::geteuid() },
        0,
        "this test checks what root does"
    );
    let tmp = TempDir::new("settings-others");
    let victim = tmp.path().join("root-owned");
    std::fs::write(&victim, "old").unwrap();
    let home = tmp.path().join("home");
    let config = home.join(".config");
    let dir = config.join("vmmap");
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("config.toml");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    for p in [&home, &config, &dir, &link] {
        std::os::unix::fs::lchown(p, Some(65534), Some(65534)).unwrap();
    }
    let refusal = "belongs to uid 65534";

    let out = output_within(
        Command::new(env!("CARGO_BIN_EXE_vmmap"))
            .args(["config", "reset"])
            .env("XDG_CONFIG_HOME", &config),
        20,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(10), "{err}");
    assert!(err.contains(refusal), "{err}");
    assert!(
        link.symlink_metadata().unwrap().is_symlink(),
        "the link was removed"
    );

    require_tool("tmux", "tmux");
    let fixture = Fixture::start(false);
    let pid = fixture.pid.to_string();
    let save_units = |config_home: &Path| {
        let t = Tmux::launch(
            &["-i", &pid],
            &[("XDG_CONFIG_HOME", config_home.as_os_str())],
            "",
        );
        t.wait_for("Total");
        t.keys(&["u"]);
        let s = t.wait_for("not saved");
        assert!(s.contains(refusal), "{s}");
    };
    save_units(&config);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "old");
    assert_eq!(link.symlink_metadata().unwrap().uid(), 65534);

    // A home with no configuration directory yet gets none of root's.
    std::fs::remove_dir_all(&config).unwrap();
    save_units(&config);
    assert!(!config.exists(), "root created {}", config.display());
    assert_eq!(
        std::fs::read_dir(&home).unwrap().count(),
        0,
        "root wrote in {}",
        home.display()
    );
}
