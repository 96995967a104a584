//! `vmmap serve` on a host: slow clients cannot hold up scrapes, the time
//! budget bounds every scrape, access is restricted (basic auth, TLS, a
//! unix socket's permissions), a root server drops to a user keeping only
//! CAP_SYS_PTRACE, and neither `metrics` nor `serve` ever uses ptrace.

use std::io::{BufRead, BufReader, Read, Write};

use base64::Engine as _;
use std::net::TcpStream;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::*;

/// A running `vmmap serve`, killed on drop. Its standard error is read by
/// a thread (so that the server never blocks on it) into `log`.
struct Server {
    child: Child,
    /// What follows "vmmap: serving " on its first line: `http://ADDR`,
    /// `https://ADDR` or `unix:PATH`.
    url: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        Server::run(Command::new(VMMAP).arg("serve").args(args))
    }

    fn run(cmd: &mut Command) -> Server {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start vmmap serve");
        let mut err = BufReader::new(child.stderr.take().expect("stderr"));
        let mut line = String::new();
        err.read_line(&mut line).expect("read the address");
        let url = line
            .trim()
            .strip_prefix("vmmap: serving ")
            .map(|u| u.trim_end_matches("/metrics").to_string())
            .unwrap_or_else(|| panic!("serve said {line:?}"));
        let log = Arc::new(Mutex::new(line.clone()));
        drain(err, log.clone());
        Server { child, url, log }
    }

    /// `ADDR` of an http:// or https:// server.
    fn addr(&self) -> &str {
        self.url
            .split_once("://")
            .map(|(_, a)| a)
            .expect("a TCP server")
    }

    fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }
}

fn drain(mut err: BufReader<ChildStderr>, log: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let mut line = String::new();
        while err.read_line(&mut line).is_ok_and(|n| n > 0) {
            log.lock().expect("log").push_str(&line);
            line.clear();
        }
    });
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.0 request on any stream; the status line, the head and the
/// body of the answer.
fn request(mut s: impl Read + Write, request_line: &str) -> (String, String, String) {
    write!(s, "{request_line} HTTP/1.0\r\nHost: vmmap\r\n\r\n").expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read answer");
    let raw = String::from_utf8(raw).expect("utf-8 answer");
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {raw:?}"));
    (
        // The status without the version: hyper answers an HTTP/1.0
        // request as HTTP/1.0.
        head.lines()
            .next()
            .and_then(|l| l.split_once(' '))
            .map_or("", |(_, s)| s)
            .to_string(),
        head.to_string(),
        body.to_string(),
    )
}

fn get(addr: &str, path: &str) -> (String, String) {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let (status, _, body) = request(s, &format!("GET {path}"));
    (status, body)
}

#[test]
fn a_slow_client_neither_delays_scrapes_nor_stays_connected() {
    let fx = Fixture::start(false);
    let srv = Server::start(&["--listen", "127.0.0.1:0", &fx.pid.to_string()]);
    let addr = srv.addr().to_string();
    // The slow client: a request line, then one header line a second for
    // 10 s; it notes when the server hangs up on it.
    let slow = {
        let addr = addr.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut s = TcpStream::connect(&addr).expect("connect");
            s.set_read_timeout(Some(Duration::from_millis(1000)))
                .expect("timeout");
            let _ = s.write_all(b"GET /metrics HTTP/1.1\r\n");
            for i in 0..10 {
                if s.write_all(format!("X-Drip-{i}: a\r\n").as_bytes())
                    .is_err()
                {
                    return Some(start.elapsed());
                }
                // A closed connection reads as end of file (or a reset).
                let mut b = [0u8; 256];
                match s.read(&mut b) {
                    Ok(_) => return Some(start.elapsed()),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => return Some(start.elapsed()),
                }
            }
            None
        })
    };
    std::thread::sleep(Duration::from_millis(1500));
    for _ in 0..3 {
        let t = Instant::now();
        let (status, body) = get(&addr, "/metrics");
        let took = t.elapsed();
        eprintln!("a scrape while a client drips: {took:?}");
        assert_eq!(status, "200 OK");
        assert!(body.ends_with("# EOF\n"), "{body}");
        assert!(
            took < Duration::from_secs(1),
            "a scrape took {took:?} while a slow client dripped its headers"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let cut = slow.join().expect("slow client");
    let cut = cut.expect("the slow client dripped for 10 s and was never cut off");
    eprintln!("the dripping client was cut off after {cut:?}");
    // The request deadline is 5 s; allow for a loaded machine.
    assert!(
        cut < Duration::from_secs(8),
        "the slow client was cut off only after {cut:?}"
    );
}

/// The value of an unlabelled sample.
fn sample(text: &str, name: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")).map(str::to_string))
}

#[test]
fn the_budget_bounds_a_started_scrape_and_says_it_was_cut() {
    // 60,000 mappings: reading this one process takes far longer than the
    // budget (hundreds of milliseconds in a debug build).
    let fx = Fixture::start_named("manymaps");
    let pid = fx.pid.to_string();
    let t = Instant::now();
    let full = vmmap_ok(&["metrics", &pid]);
    let unbounded = t.elapsed();
    assert_eq!(
        sample(&full, "vmmap_scrape_truncated").as_deref(),
        Some("0")
    );
    assert_eq!(
        sample(&full, "vmmap_scrape_processes").as_deref(),
        Some("1")
    );
    let t = Instant::now();
    let cut = vmmap_ok(&["metrics", &pid, "--budget-ms", "1"]);
    let bounded = t.elapsed();
    eprintln!("unbounded {unbounded:?}, --budget-ms 1: {bounded:?}");
    assert!(
        unbounded > Duration::from_millis(150),
        "the fixture is too quick to read ({unbounded:?}) to test the budget"
    );
    assert!(
        bounded < unbounded / 2,
        "--budget-ms 1 took {bounded:?}, the whole read {unbounded:?}"
    );
    assert_eq!(sample(&cut, "vmmap_scrape_truncated").as_deref(), Some("1"));
    assert_eq!(sample(&cut, "vmmap_scrape_processes").as_deref(), Some("0"));
    assert!(
        cut.contains("vmmap_scrape_skipped_processes{reason=\"budget\"} 1\n"),
        "{cut}"
    );
    promtool_check(&cut);

    // The same through serve, over every process of the machine.
    let srv = Server::start(&["--listen", "127.0.0.1:0", "--all", "--budget-ms", "1"]);
    for _ in 0..3 {
        let t = Instant::now();
        let (status, body) = get(srv.addr(), "/metrics");
        let took = t.elapsed();
        assert_eq!(status, "200 OK");
        assert!(took < Duration::from_secs(1), "a scrape took {took:?}");
        assert_eq!(
            sample(&body, "vmmap_scrape_truncated").as_deref(),
            Some("1"),
            "{body}"
        );
        promtool_check(&body);
    }
    // Prometheus asks for OpenMetrics and gets it; others get the
    // Prometheus text format, which names the counter family differently.
    let mut s = TcpStream::connect(srv.addr()).expect("connect");
    s.write_all(b"GET /metrics HTTP/1.0\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n\r\n")
        .expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("answer");
    let raw = raw.to_ascii_lowercase();
    assert!(
        raw.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{raw}"
    );
    assert!(
        raw.contains("# type vmmap_skipped_processes counter\n"),
        "{raw}"
    );
    let (_, head, body) = request(
        TcpStream::connect(srv.addr()).expect("connect"),
        "GET /metrics",
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(
        body.contains("# TYPE vmmap_skipped_processes_total counter\n"),
        "{body}"
    );
}

#[test]
fn metrics_and_serve_never_ptrace() {
    // A thread that spins in user space: a collection allowed to ptrace
    // interrupts it for its stack pointer.
    let fx = Fixture::start(true);
    let pid = fx.pid.to_string();
    let dir = TempDir::new("noptrace");
    let trace = dir.path().join("strace.log");
    let trace_s = trace.to_str().expect("utf-8");
    let o = output_within(
        Command::new(require_tool("strace", "strace"))
            .args(["-f", "-qq", "-e", "trace=ptrace", "-o", trace_s, VMMAP])
            .args(["metrics", &pid]),
        120,
    );
    assert!(
        o.status.success(),
        "strace vmmap metrics: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let calls = std::fs::read_to_string(&trace).expect("strace log");
    assert!(
        !calls.contains("ptrace("),
        "vmmap metrics used ptrace:\n{calls}"
    );
    // --no-ptrace is still accepted, as a no-op.
    vmmap_ok(&["metrics", &pid, "--no-ptrace"]);

    let slog = dir.path().join("strace-serve.log");
    let srv = Server::run(
        Command::new(require_tool("strace", "strace"))
            .args(["-f", "-qq", "-e", "trace=ptrace", "-o"])
            .arg(&slog)
            .args([VMMAP, "serve", "--listen", "127.0.0.1:0", &pid]),
    );
    let addr = srv.addr().to_string();
    for _ in 0..5 {
        let (status, body) = get(&addr, "/metrics");
        assert_eq!(status, "200 OK");
        assert!(body.contains(&format!("pid=\"{pid}\"")));
    }
    // Killing strace (what dropping the server does) would leave vmmap
    // serve running, detached: end it first, and strace ends with it.
    let tracer = srv.child.id();
    let children = format!("/proc/{tracer}/task/{tracer}/children");
    let served = std::fs::read_to_string(&children).expect("strace's child");
    for pid in served.split_whitespace() {
        // SAFETY: kill with a pid and a signal has no memory effects.
        unsafe { libc::kill(pid.parse().expect("a pid"), libc::SIGTERM) };
    }
    let mut srv = srv;
    let _ = srv.child.wait();
    drop(srv);
    let calls = std::fs::read_to_string(&slog).expect("strace log");
    assert!(
        !calls.contains("ptrace("),
        "vmmap serve used ptrace:\n{calls}"
    );
}

/// A self-signed certificate for 127.0.0.1, written as PEM files.
fn self_signed(dir: &Path) -> (String, String) {
    let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("certificate");
    let cert = dir.join("cert.pem");
    let keyf = dir.join("key.pem");
    std::fs::write(&cert, key.cert.pem()).expect("write cert");
    std::fs::write(&keyf, key.signing_key.serialize_pem()).expect("write key");
    (
        cert.to_str().expect("utf-8").into(),
        keyf.to_str().expect("utf-8").into(),
    )
}

/// curl's answer: (HTTP status, head and body).
fn curl(args: &[&str]) -> (u32, String) {
    let o = output_within(
        Command::new(require_tool("curl", "curl"))
            .args(["-sS", "-i", "--max-time", "20", "-w", "\n%{http_code}"])
            .args(args),
        60,
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let (text, code) = out.rsplit_once('\n').unwrap_or(("", &out));
    (code.trim().parse().unwrap_or(0), text.to_string())
}

#[test]
fn basic_auth_and_tls_follow_the_web_config_file() {
    let fx = Fixture::start(false);
    let pid = fx.pid.to_string();
    let dir = TempDir::new("webconfig");
    let (cert, key) = self_signed(dir.path());
    let hash = bcrypt::hash("s3cret pass", 4).expect("bcrypt");
    let config = dir.path().join("web.yml");
    std::fs::write(
        &config,
        format!(
            "tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n\
             basic_auth_users:\n  prom: '{hash}'\n"
        ),
    )
    .expect("write web config");
    let srv = Server::start(&[
        "--listen",
        "127.0.0.1:0",
        "--web-config",
        config.to_str().expect("utf-8"),
        &pid,
    ]);
    assert!(srv.url.starts_with("https://"), "{}", srv.url);
    let url = format!("https://{}/metrics", srv.addr());
    let (code, text) = curl(&["--cacert", &cert, &url]);
    assert_eq!(code, 401, "no credentials: {text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("www-authenticate: basic realm="),
        "{text}"
    );
    let (code, _) = curl(&["--cacert", &cert, "-u", "prom:wrong", &url]);
    assert_eq!(code, 401, "wrong password");
    let (code, _) = curl(&["--cacert", &cert, "-u", "nobody:s3cret pass", &url]);
    assert_eq!(code, 401, "unknown user");
    let (code, text) = curl(&["--cacert", &cert, "-u", "prom:s3cret pass", &url]);
    assert_eq!(code, 200, "{text}");
    assert!(text.contains(&format!("vmmap_working_set_bytes{{pid=\"{pid}\"")));
    assert!(text.ends_with("# EOF\n"));
    // Plain HTTP to the TLS port gets no metrics.
    let (code, _) = curl(&[
        "-u",
        "prom:s3cret pass",
        &format!("http://{}/metrics", srv.addr()),
    ]);
    assert_ne!(code, 200);
    // An untrusted certificate is refused by the client.
    let (code, _) = curl(&["-u", "prom:s3cret pass", &url]);
    assert_eq!(code, 0);

    // Basic auth alone, over HTTP.
    let plain = dir.path().join("auth.yml");
    std::fs::write(&plain, format!("basic_auth_users:\n  prom: {hash}\n")).expect("write");
    let srv = Server::start(&[
        "--listen",
        "127.0.0.1:0",
        "--web-config",
        plain.to_str().expect("utf-8"),
        &pid,
    ]);
    assert!(srv.url.starts_with("http://"));
    assert_eq!(get(srv.addr(), "/metrics").0, "401 Unauthorized");
    let (code, _) = curl(&["-u", "prom:s3cret pass", &format!("{}/metrics", srv.url)]);
    assert_eq!(code, 200);
    // The scheme name is case-insensitive.
    let token = base64::engine::general_purpose::STANDARD.encode("prom:s3cret pass");
    let (code, _) = curl(&[
        "-H",
        &format!("Authorization: bASIC {token}"),
        &format!("{}/metrics", srv.url),
    ]);
    assert_eq!(code, 200);
    assert!(!srv.log().contains("warning"), "{}", srv.log());

    // Open to the network without authentication: said on start.
    let srv = Server::start(&["--listen", "0.0.0.0:0", &pid]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        srv.log()
            .contains("reachable from the network without authentication"),
        "{}",
        srv.log()
    );
}

#[test]
fn a_bad_web_config_file_refuses_to_start() {
    let dir = TempDir::new("badconfig");
    let (cert, key) = self_signed(dir.path());
    let hash = bcrypt::hash("x", 4).expect("bcrypt");
    let cases: [(&str, String, &str); 6] = [
        ("malformed", "basic_auth_users: [\n".into(), "malformed"),
        (
            "unknown setting",
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n".into(),
            "client_auth_type",
        ),
        (
            "missing cert",
            format!("tls_server_config:\n  cert_file: {cert}.missing\n  key_file: {key}\n"),
            "cert.pem.missing",
        ),
        (
            "key without cert",
            format!("tls_server_config:\n  key_file: {key}\n"),
            "cert_file",
        ),
        (
            "not bcrypt",
            "basic_auth_users:\n  prom: plaintext-password\n".into(),
            "bcrypt",
        ),
        (
            "a cert that is not PEM",
            format!("tls_server_config:\n  cert_file: {key}\n  key_file: {key}\n"),
            "certificate",
        ),
    ];
    for (what, text, says) in cases {
        let f = dir.path().join("web.yml");
        std::fs::write(&f, text).expect("write");
        let o = output_within(
            Command::new(VMMAP).args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--web-config",
                f.to_str().expect("utf-8"),
                "1",
            ]),
            30,
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains(says), "{what}: {err}");
        assert!(err.contains("web.yml"), "{what}: {err}");
        assert!(!err.contains("panicked"), "{what}: {err}");
    }
    let _ = hash;
    let o = vmmap(&["serve", "--web-config", "/nonexistent/web.yml", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/web.yml"));
}

fn unix_get(path: &Path) -> (String, String) {
    let s = UnixStream::connect(path).expect("connect to the socket");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let (status, _, body) = request(s, "GET /metrics");
    (status, body)
}

#[test]
fn serves_on_a_unix_socket_with_restrictive_permissions() {
    let fx = Fixture::start(false);
    let pid = fx.pid.to_string();
    let dir = TempDir::new("unixsock");
    let sock = dir.path().join("metrics.sock");
    let listen = format!("unix:{}", sock.display());
    {
        let srv = Server::start(&["--listen", &listen, &pid]);
        assert_eq!(srv.url, listen);
        let meta = std::fs::symlink_metadata(&sock).expect("socket file");
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o7777, 0o660);
        let (status, body) = unix_get(&sock);
        assert_eq!(status, "200 OK");
        assert!(body.contains(&format!("vmmap_working_set_bytes{{pid=\"{pid}\"")));
        // A second server on the same live socket is refused.
        let o = vmmap(&["serve", "--listen", &listen, &pid]);
        assert_ne!(o.status.code(), Some(0));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("in use"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(unix_get(&sock).0, "200 OK", "the first still serves");
    }
    // Killed: its socket is left behind, stale, and the next server
    // replaces it; --socket-mode sets the mode, --socket-group the group.
    assert!(std::fs::symlink_metadata(&sock).is_ok());
    {
        let srv = Server::start(&[
            "--listen",
            &listen,
            "--socket-mode",
            "0600",
            "--socket-group",
            "nogroup",
            &pid,
        ]);
        let meta = std::fs::symlink_metadata(&sock).expect("socket file");
        assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
        assert_eq!(
            std::os::unix::fs::MetadataExt::gid(&meta),
            65534,
            "group nogroup"
        );
        assert_eq!(unix_get(&sock).0, "200 OK");
        // Unprivileged users cannot connect through a 0600 root socket.
        let o = curl_as_nobody(&sock);
        assert_eq!(
            o.status.code(),
            Some(7),
            "nobody connected through a 0600 socket"
        );
        drop(srv);
    }
    // A stale socket made by someone else's listener is replaced too; with
    // mode 0666 anyone may connect.
    std::fs::remove_file(&sock).expect("remove");
    drop(UnixListener::bind(&sock).expect("bind"));
    {
        let srv = Server::start(&["--listen", &listen, "--socket-mode", "666", &pid]);
        assert_eq!(unix_get(&sock).0, "200 OK");
        let o = curl_as_nobody(&sock);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stdout).ends_with("# EOF\n"));
        drop(srv);
    }
    // A regular file at the path is never replaced.
    std::fs::remove_file(&sock).expect("remove");
    std::fs::write(&sock, "precious\n").expect("write");
    let o = vmmap(&["serve", "--listen", &listen, &pid]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&sock).expect("file"), "precious\n");
    // A bad mode, or an unknown group, is bad usage.
    std::fs::remove_file(&sock).expect("remove");
    let o = vmmap(&["serve", "--listen", &listen, "--socket-mode", "rw", &pid]);
    assert_eq!(o.status.code(), Some(2));
    let o = vmmap(&[
        "serve",
        "--listen",
        &listen,
        "--socket-group",
        "no-such-group-q",
        &pid,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no-such-group-q"));
}

/// `curl --unix-socket` as user nobody.
fn curl_as_nobody(sock: &Path) -> std::process::Output {
    Command::new(require_tool("setpriv", "util-linux"))
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(["curl", "-sS", "--max-time", "20", "--unix-socket"])
        .arg(sock)
        .arg("http://vmmap/metrics")
        .output()
        .expect("setpriv curl")
}

/// A `Key:` line of /proc/PID/status.
fn status_field(pid: u32, key: &str) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in status"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn a_root_server_drops_to_a_user_keeping_only_cap_sys_ptrace() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "this test starts the server as root");
    // A root-owned process (the fixture runs as the test's user, root):
    // without CAP_SYS_PTRACE nobody could not read it.
    let fx = Fixture::start(false);
    let pid = fx.pid.to_string();
    let srv = Server::start(&["--listen", "127.0.0.1:0", "--user", "nobody", &pid]);
    let spid = srv.child.id();
    // The drop happens before the address is printed.
    assert_eq!(status_field(spid, "Uid"), "65534 65534 65534 65534");
    assert_eq!(status_field(spid, "Gid"), "65534 65534 65534 65534");
    assert_eq!(status_field(spid, "Groups"), "");
    assert_eq!(status_field(spid, "CapEff"), "0000000000080000");
    assert_eq!(status_field(spid, "CapPrm"), "0000000000080000");
    assert_eq!(status_field(spid, "CapInh"), "0000000000000000");
    assert_eq!(status_field(spid, "CapAmb"), "0000000000000000");
    assert_eq!(status_field(spid, "CapBnd"), "0000000000080000");
    assert_eq!(status_field(spid, "NoNewPrivs"), "1");
    // Every thread, not only the main one.
    for t in std::fs::read_dir(format!("/proc/{spid}/task")).expect("tasks") {
        let t = t.expect("task").path();
        let s = std::fs::read_to_string(t.join("status")).expect("status");
        assert!(s.contains("CapEff:\t0000000000080000"), "{s}");
        assert!(s.contains("Uid:\t65534\t65534\t65534\t65534"), "{s}");
    }
    let (status, body) = get(srv.addr(), "/metrics");
    assert_eq!(status, "200 OK");
    assert!(
        body.contains(&format!("vmmap_working_set_bytes{{pid=\"{pid}\"")),
        "{body}"
    );
    assert!(body.contains("vmmap_scrape_processes 1\n"));
    assert!(srv.log().contains("nobody"), "{}", srv.log());

    // --user without root, and an unknown user, are refused.
    let o = Command::new(require_tool("setpriv", "util-linux"))
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", VMMAP])
        .args(["serve", "--listen", "127.0.0.1:0", "--user", "nobody", "1"])
        .output()
        .expect("setpriv");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("root"));
    let o = vmmap(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--user",
        "no-such-user-q",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no-such-user-q"));
}

/// contrib/systemd/vmmap-serve.service.
fn unit_file() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/systemd/vmmap-serve.service");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn the_systemd_unit_is_valid_and_its_command_reads_root_processes() {
    let unit = unit_file();
    let setting = |key: &str| -> Vec<String> {
        unit.lines()
            .filter_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(setting("AmbientCapabilities"), ["CAP_SYS_PTRACE"]);
    assert_eq!(setting("CapabilityBoundingSet"), ["CAP_SYS_PTRACE"]);
    assert_eq!(setting("NoNewPrivileges"), ["yes"]);
    assert_eq!(setting("DynamicUser"), ["yes"]);
    assert!(setting("SystemCallFilter").contains(&"~ptrace".to_string()));
    let exec = setting("ExecStart");
    assert_eq!(exec.len(), 1, "one active ExecStart: {exec:?}");
    let words: Vec<&str> = exec[0].split_whitespace().collect();
    assert_eq!(words[0], "/usr/local/bin/vmmap");

    // systemd's own check, with the binary where the unit expects it.
    let dir = TempDir::new("unit");
    let copy = dir.path().join("vmmap-serve.service");
    std::fs::write(&copy, unit.replace("/usr/local/bin/vmmap", VMMAP)).expect("write unit");
    let o = output_within(
        Command::new(require_tool("systemd-analyze", "systemd"))
            .arg("verify")
            .arg(&copy),
        60,
    );
    assert!(
        o.status.success(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );

    // Its command, run the way the unit runs it: an unprivileged user with
    // CAP_SYS_PTRACE ambient and bounding, no new privileges (setpriv
    // does what DynamicUser and the capability settings do), on a free
    // port, and for --all the fixture, a root-owned process (some
    // sandboxes' PID 1 refuses even root, so --all is not the check).
    let fx = Fixture::start(false);
    let pid = fx.pid.to_string();
    let mut args: Vec<String> = words[1..].iter().map(|w| w.to_string()).collect();
    let at = args.iter().position(|a| a == "--listen").expect("--listen");
    args[at + 1] = "127.0.0.1:0".into();
    let at = args.iter().position(|a| a == "--all").expect("--all");
    args[at] = pid.clone();
    let srv = Server::run(
        Command::new(require_tool("setpriv", "util-linux"))
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .args(["--inh-caps=+sys_ptrace", "--ambient-caps=+sys_ptrace"])
            .args(["--bounding-set=-all,+sys_ptrace", "--no-new-privs", VMMAP])
            .args(&args),
    );
    assert_eq!(status_field(srv.child.id(), "CapEff"), "0000000000080000");
    let (status, body) = get(srv.addr(), "/metrics");
    assert_eq!(status, "200 OK");
    assert!(
        body.contains("vmmap_scrape_skipped_processes{reason=\"permission\"} 0\n"),
        "{body}"
    );
    assert!(body.contains("vmmap_scrape_processes 1\n"), "{body}");
    assert!(body.contains(&format!("vmmap_working_set_bytes{{pid=\"{pid}\"")));
    // The same command without the capability cannot read root's
    // processes: the check above is not vacuous.
    let o = Command::new(require_tool("setpriv", "util-linux"))
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", VMMAP])
        .args(["metrics", &pid])
        .output()
        .expect("setpriv");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("vmmap_scrape_skipped_processes{reason=\"permission\"} 1\n"),
        "{text}"
    );
}
