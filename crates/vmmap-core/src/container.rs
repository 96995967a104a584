//! Which container or pod a process runs in, from its cgroup path
//! (`/proc/PID/cgroup`). Sans-IO: the text of the file in, a [`Container`]
//! out.
//!
//! Every runtime names the cgroup it makes for a container after the
//! container, and the path is readable for every process without privilege,
//! so it is the one cheap source that works for Docker, containerd (and so
//! Kubernetes), Podman and systemd-nspawn alike. The container's own name
//! (Docker's `--name`, a pod's name) is known only to the runtime's daemon,
//! which vmmap does not talk to: the id (or the machine name of nspawn) is
//! what is shown, and what `--container` matches by prefix.

use serde::{Deserialize, Serialize};

/// The runtime that made a container's cgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Runtime {
    /// Docker (`docker-ID.scope`, `/docker/ID`).
    Docker,
    /// containerd's CRI plugin (`cri-containerd-ID.scope`), or CRI-O
    /// (`crio-ID.scope`).
    Containerd,
    /// Podman (`libpod-ID.scope`, `/libpod_parent/libpod-ID`).
    Podman,
    /// systemd-nspawn and other systemd machines (`machine-NAME.scope`).
    Nspawn,
    /// LXC (`/lxc/NAME`, `/lxc.payload.NAME`).
    Lxc,
}

impl Runtime {
    /// The short name shown before the id.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::Podman => "podman",
            Runtime::Nspawn => "nspawn",
            Runtime::Lxc => "lxc",
        }
    }
}

/// A container (or a Kubernetes pod's container) a process belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// Who made it; `None` for a pod whose container's cgroup is not named
    /// after a known runtime (the pod itself is known).
    pub runtime: Option<Runtime>,
    /// The container id (64 hex digits for Docker, containerd and Podman)
    /// or the machine name (nspawn, LXC); empty for a pod's own cgroup.
    pub id: String,
    /// The Kubernetes pod's UID, with dashes, when the cgroup is under
    /// `kubepods`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pod: Option<String>,
}

/// Ids are shown as `docker ps` shows them: the first 12 digits.
const SHORT_ID: usize = 12;

impl Container {
    /// The label shown in tables: `docker:0123456789ab`, `nspawn:web`,
    /// `pod:UID/containerd:0123456789ab`.
    pub fn label(&self) -> String {
        let short = if self.id.len() == 64 && self.id.bytes().all(|b| b.is_ascii_hexdigit()) {
            &self.id[..SHORT_ID]
        } else {
            &self.id
        };
        let own = match self.runtime {
            Some(r) if !short.is_empty() => format!("{}:{short}", r.name()),
            _ if !short.is_empty() => short.to_string(),
            _ => String::new(),
        };
        match &self.pod {
            Some(p) if own.is_empty() => format!("pod:{p}"),
            Some(p) => format!("pod:{p}/{own}"),
            None => own,
        }
    }

    /// Whether `--container NAME` selects it: NAME is a prefix of the id,
    /// of the pod's UID, or of the label (`docker:01ab`, `nspawn:web`).
    /// Empty never matches, so that `--container ''` selects nothing
    /// rather than every container.
    pub fn matches(&self, name: &str) -> bool {
        !name.is_empty()
            && (self.id.starts_with(name)
                || self.pod.as_deref().is_some_and(|p| p.starts_with(name))
                || self.label().starts_with(name))
    }
}

/// The cgroup v2 path of a process: the `0::PATH` line of its cgroup file,
/// or, on a cgroup v1 host, the path of the first hierarchy listed.
pub fn unified_path(text: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(text);
    let lines = || text.lines().filter_map(|l| l.splitn(3, ':').nth(2));
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .or_else(|| lines().next())
        .map(str::to_string)
}

/// The container of a process, from the text of `/proc/PID/cgroup` (every
/// line is looked at, so that cgroup v1 hosts, where a runtime may name
/// only some hierarchies, are read too). `None` for a process in no
/// container.
pub fn from_cgroup(text: &[u8]) -> Option<Container> {
    let text = String::from_utf8_lossy(text);
    text.lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .find_map(from_path)
}

/// The container named by one cgroup path.
pub fn from_path(path: &str) -> Option<Container> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let pod = parts.iter().find_map(|p| pod_uid(p));
    // The innermost component naming a container wins: a container's own
    // processes may sit in a child cgroup (`/docker-ID.scope/init.scope`).
    let own = parts.iter().enumerate().rev().find_map(|(i, p)| {
        let parent = i.checked_sub(1).map(|j| parts[j]);
        component(parent, p, pod.is_some())
    });
    match (own, pod) {
        (Some((runtime, id)), pod) => Some(Container { runtime, id, pod }),
        (None, Some(pod)) => Some(Container {
            runtime: None,
            id: String::new(),
            pod: Some(pod),
        }),
        (None, None) => None,
    }
}

/// Whether `s` is a full container id: 64 lower-case hex digits.
fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The runtime and id one path component names, `parent` being the
/// component before it.
fn component(parent: Option<&str>, p: &str, in_pod: bool) -> Option<(Option<Runtime>, String)> {
    let scope = p.strip_suffix(".scope");
    let prefixed = |prefix: &str| {
        scope
            .and_then(|s| s.strip_prefix(prefix))
            .filter(|id| is_id(id))
            .map(str::to_string)
    };
    if let Some(id) = prefixed("docker-") {
        return Some((Some(Runtime::Docker), id));
    }
    if let Some(id) = prefixed("cri-containerd-").or_else(|| prefixed("crio-")) {
        return Some((Some(Runtime::Containerd), id));
    }
    // `libpod-conmon-ID.scope` is Podman's monitor, outside the container:
    // is_id refuses its `conmon-` prefix.
    if let Some(id) = prefixed("libpod-") {
        return Some((Some(Runtime::Podman), id));
    }
    if let Some(name) = scope.and_then(|s| s.strip_prefix("machine-")) {
        return Some((Some(Runtime::Nspawn), unescape_unit(name)));
    }
    if let Some(name) = p.strip_prefix("lxc.payload.") {
        return Some((Some(Runtime::Lxc), name.to_string()));
    }
    match parent {
        // Docker's cgroupfs driver: `/docker/ID`.
        Some("docker") if is_id(p) => Some((Some(Runtime::Docker), p.to_string())),
        Some("libpod_parent") => p
            .strip_prefix("libpod-")
            .filter(|id| is_id(id))
            .map(|id| (Some(Runtime::Podman), id.to_string())),
        Some("lxc") => Some((Some(Runtime::Lxc), p.to_string())),
        // Kubernetes with the cgroupfs driver: `/kubepods/burstable/podUID/ID`;
        // the runtime is not in the name.
        Some(pp) if in_pod && pod_uid(pp).is_some() && is_id(p) => Some((None, p.to_string())),
        _ => None,
    }
}

/// The pod UID in a `kubepods` component: `podUID` (cgroupfs driver) or
/// `kubepods-besteffort-podUID.slice`, with `_` for `-` (systemd driver).
fn pod_uid(p: &str) -> Option<String> {
    let p = p.strip_suffix(".slice").unwrap_or(p);
    let uid = match p.rfind("-pod") {
        Some(i) if p.starts_with("kubepods") => &p[i + 4..],
        _ => p.strip_prefix("pod")?,
    };
    let uid = uid.replace('_', "-");
    (uid.len() == 36 && uid.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit())).then_some(uid)
}

/// Undoes systemd's unit-name escaping (`\x2d` for `-`), as nspawn's
/// machine names go through it.
fn unescape_unit(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
            if let Some(v) = s
                .get(i + 2..i + 4)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b";

    fn of(text: &str) -> Option<Container> {
        from_cgroup(text.as_bytes())
    }

    #[test]
    fn docker_systemd_and_cgroupfs_drivers() {
        let c = of(&format!("0::/system.slice/docker-{ID}.scope\n")).unwrap();
        assert_eq!(c.runtime, Some(Runtime::Docker));
        assert_eq!(c.id, ID);
        assert_eq!(c.label(), "docker:3f2b1c0d9e8f");
        // cgroup v1, cgroupfs driver: every hierarchy names it.
        let v1 = format!(
            "12:memory:/docker/{ID}\n11:cpu,cpuacct:/docker/{ID}\n1:name=systemd:/docker/{ID}\n0::/\n"
        );
        assert_eq!(of(&v1).unwrap().id, ID);
        // Docker in a nested child cgroup (cgroupns=private keeps it).
        let nested = format!("0::/system.slice/docker-{ID}.scope/init.scope\n");
        assert_eq!(of(&nested).unwrap().label(), "docker:3f2b1c0d9e8f");
    }

    #[test]
    fn containerd_crio_and_kubernetes_pods() {
        let systemd = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0.slice/cri-containerd-{ID}.scope\n"
        );
        let c = of(&systemd).unwrap();
        assert_eq!(c.runtime, Some(Runtime::Containerd));
        assert_eq!(
            c.pod.as_deref(),
            Some("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
        );
        assert_eq!(
            c.label(),
            "pod:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/containerd:3f2b1c0d9e8f"
        );
        let crio = format!(
            "0::/kubepods.slice/kubepods-pod0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0.slice/crio-{ID}.scope\n"
        );
        assert_eq!(of(&crio).unwrap().runtime, Some(Runtime::Containerd));
        // The cgroupfs driver names neither the runtime nor the QoS slice.
        let cgroupfs =
            format!("0::/kubepods/besteffort/pod0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/{ID}\n");
        let c = of(&cgroupfs).unwrap();
        assert_eq!((c.runtime, c.id.as_str()), (None, ID));
        assert_eq!(
            c.pod.as_deref(),
            Some("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
        );
        assert!(c.matches("0f1e2d3c"));
        assert!(c.matches("3f2b"));
        // The pod's sandbox-less cgroup: the pod alone.
        let pod_only = of("0::/kubepods/pod0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\n").unwrap();
        assert_eq!(pod_only.label(), "pod:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
        // containerd outside Kubernetes, as the kubelet is not there.
        let plain = of(&format!("0::/system.slice/cri-containerd-{ID}.scope\n")).unwrap();
        assert_eq!(plain.pod, None);
    }

    #[test]
    fn podman_rootful_rootless_and_its_monitor() {
        let rootful = of(&format!("0::/machine.slice/libpod-{ID}.scope\n")).unwrap();
        assert_eq!(rootful.runtime, Some(Runtime::Podman));
        let rootless = of(&format!(
            "0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container\n"
        ))
        .unwrap();
        assert_eq!(rootless.label(), "podman:3f2b1c0d9e8f");
        let cgroupfs = of(&format!("0::/libpod_parent/libpod-{ID}\n")).unwrap();
        assert_eq!(cgroupfs.runtime, Some(Runtime::Podman));
        // conmon runs beside the container, not in it.
        assert_eq!(
            of(&format!("0::/machine.slice/libpod-conmon-{ID}.scope\n")),
            None
        );
    }

    #[test]
    fn nspawn_machines_and_lxc() {
        let c = of("0::/machine.slice/machine-web\\x2dfront.scope/payload\n").unwrap();
        assert_eq!(c.runtime, Some(Runtime::Nspawn));
        assert_eq!(c.id, "web-front");
        assert_eq!(c.label(), "nspawn:web-front");
        assert!(c.matches("web"));
        assert!(c.matches("nspawn:web-f"));
        assert!(!c.matches("front"));
        assert!(!c.matches(""));
        assert_eq!(
            of("0::/lxc.payload.db1/init.scope\n").unwrap().label(),
            "lxc:db1"
        );
        assert_eq!(of("4:memory:/lxc/db2\n").unwrap().label(), "lxc:db2");
    }

    #[test]
    fn hosts_processes_are_in_no_container() {
        for t in [
            "0::/user.slice/user-0.slice/session-3.scope\n",
            "0::/system.slice/docker.service\n",
            "0::/init.scope\n",
            "0::/\n",
            "",
            "garbage without colons\n",
            // A short id is not an id.
            "0::/system.slice/docker-abc.scope\n",
        ] {
            assert_eq!(of(t), None, "{t:?}");
        }
    }

    #[test]
    fn unified_path_prefers_the_v2_line() {
        assert_eq!(
            unified_path(b"12:memory:/a\n0::/b/c\n").as_deref(),
            Some("/b/c")
        );
        assert_eq!(unified_path(b"12:memory:/a\n").as_deref(), Some("/a"));
        assert_eq!(unified_path(b""), None);
    }
}
