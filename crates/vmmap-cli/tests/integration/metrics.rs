//! `vmmap metrics` and `vmmap serve`: the OpenMetrics values equal the
//! snapshot's Summary, promtool accepts the text, and a real Prometheus
//! server scrapes `vmmap serve` and stores the same values.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// (metric, Summary column) pairs, as docs/metrics-export.md lists them.
const FIGURES: [(&str, &str); 6] = [
    ("vmmap_size_bytes", "size"),
    ("vmmap_committed_bytes", "committed"),
    ("vmmap_private_bytes", "private"),
    ("vmmap_working_set_bytes", "total_ws"),
    ("vmmap_pss_bytes", "pss"),
    ("vmmap_swap_bytes", "swap"),
];

/// `(metric, pid, type) -> value` from OpenMetrics text.
fn parse(text: &str) -> BTreeMap<(String, String, String), u64> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, rest)) = line.split_once('{') else {
            continue;
        };
        let (labels, value) = rest.rsplit_once("} ").expect("labels and value");
        let label = |k: &str| -> String {
            let start = labels.find(&format!("{k}=\"")).map(|i| i + k.len() + 2);
            start
                .map(|s| labels[s..].split('"').next().unwrap_or("").to_string())
                .unwrap_or_default()
        };
        if let Ok(v) = value.parse::<u64>() {
            out.insert((name.to_string(), label("pid"), label("type")), v);
        }
    }
    out
}

/// The Summary row of each exported type.
fn summary_rows(snap: &Value) -> Vec<(String, Value)> {
    snap["summary"]
        .as_array()
        .expect("summary")
        .iter()
        .filter(|r| r["type"] != "free" && r["type"] != "total")
        .map(|r| (r["type"].as_str().expect("type").to_string(), r.clone()))
        .collect()
}

/// Checks that `got` holds the snapshot's Summary figures for `pid`.
///
/// Pss of a page depends on how many processes map it when it is read,
/// and the two vmmap processes that read the fixture (the one printing
/// the JSON and the one exporting metrics) are different processes that
/// map libc themselves. The tests arrange for exactly one vmmap to run at
/// each read, but the two may have touched different libc pages, so the
/// Image type's Pss is only checked to lie in (0, Rss]. Every other
/// figure, and every other type's Pss, must be equal.
fn assert_same(got: &BTreeMap<(String, String, String), u64>, snap: &Value, pid: u32) {
    let rows = summary_rows(snap);
    assert_eq!(rows.len(), 8);
    for (t, row) in &rows {
        for (metric, col) in FIGURES {
            let key = (metric.to_string(), pid.to_string(), t.clone());
            let want = row[col].as_u64();
            let have = got.get(&key).copied();
            if metric == "vmmap_pss_bytes" && t == "image" {
                let (w, h) = (want.expect("image pss"), have.expect("image pss"));
                let ws = row["total_ws"].as_u64().expect("ws");
                assert!(h <= ws && h > 0, "image pss {h} vs ws {ws} (snapshot {w})");
                eprintln!("image pss: exported {h}, snapshot {w}, ws {ws}");
                continue;
            }
            assert_eq!(have, want, "{metric} of {t}");
        }
    }
}

#[test]
fn metrics_equal_the_snapshot_and_pass_promtool() {
    let _alone = quiet_system();
    let fx = Fixture::start_alone();
    fx.stop();
    let snap = snapshot_json(fx.pid, &[]);
    let text = vmmap_ok(&["metrics", &fx.pid.to_string()]);
    assert!(text.ends_with("# EOF\n"));
    assert_same(&parse(&text), &snap, fx.pid);
    assert!(text.contains("vmmap_scrape_processes 1\n"));
    assert!(text.contains(&format!(
        "vmmap_size_bytes{{pid=\"{}\",comm=\"{}\",type=\"heap\"}}",
        fx.pid,
        snap["process"]["name"].as_str().expect("name")
    )));
    promtool_check(&text);
}

#[test]
fn vanished_and_over_limit_processes_are_counted_not_errors() {
    let fx = Fixture::start(false);
    let gone = {
        let mut c = Command::new("true").spawn().expect("run true");
        let pid = c.id();
        c.wait().expect("wait");
        pid
    };
    let dir = TempDir::new("metrics");
    let file = dir.path().join("vmmap.prom");
    let pid = fx.pid.to_string();
    let out = vmmap_ok(&[
        "metrics",
        &pid,
        &gone.to_string(),
        "no-such-process-name-q",
        "1",
        "--max-processes",
        "2",
        "-o",
        file.to_str().expect("utf-8"),
    ]);
    assert_eq!(out, "", "with -o nothing goes to standard output");
    let text = std::fs::read_to_string(&file).expect("the -o file");
    // PID 1 is third after dropping the unknown name: over the limit.
    assert!(
        text.contains("vmmap_scrape_skipped_processes{reason=\"gone\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("vmmap_scrape_skipped_processes{reason=\"limit\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("vmmap_scrape_processes 1\n"));
    assert!(text.contains(&format!("pid=\"{pid}\"")));
    assert!(text.ends_with("# EOF\n"));
    let o = vmmap(&["metrics"]);
    assert_eq!(o.status.code(), Some(2), "no process given is bad usage");
}

/// A running `vmmap serve`, killed on drop.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(args: &[&str]) -> Server {
    let mut child = Command::new(VMMAP)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vmmap serve");
    let mut line = String::new();
    BufReader::new(child.stderr.take().expect("stderr"))
        .read_line(&mut line)
        .expect("read the address");
    let addr = line
        .trim()
        .strip_prefix("vmmap: serving http://")
        .and_then(|r| r.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("serve said {line:?}"))
        .to_string();
    Server { child, addr }
}

/// One HTTP/1.0 request (so that the answer is never chunked); returns
/// the status line and the body.
fn http(addr: &str, request_line: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(s, "{request_line} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read answer");
    let raw = String::from_utf8(raw).expect("utf-8 answer");
    let (head, body) = raw.split_once("\r\n\r\n").expect("head and body");
    (
        // The status without the version: hyper answers an HTTP/1.0
        // request as HTTP/1.0.
        head.lines()
            .next()
            .and_then(|l| l.split_once(' '))
            .map_or("", |(_, s)| s)
            .to_string(),
        body.to_string(),
    )
}

#[test]
fn serve_answers_metrics_and_refuses_the_rest() {
    let fx = Fixture::start(false);
    let srv = serve(&[&fx.pid.to_string()]);
    let (status, body) = http(&srv.addr, "GET /metrics");
    assert_eq!(status, "200 OK");
    assert!(body.contains(&format!("vmmap_working_set_bytes{{pid=\"{}\"", fx.pid)));
    assert!(body.contains("vmmap_skipped_processes_total{reason=\"gone\"} 0\n"));
    assert!(body.ends_with("# EOF\n"));
    assert_eq!(http(&srv.addr, "GET /nothing").0, "404 Not Found");
    assert_eq!(http(&srv.addr, "POST /metrics").0, "405 Method Not Allowed");
    let (status, body) = http(&srv.addr, "HEAD /metrics");
    assert_eq!((status.as_str(), body.as_str()), ("200 OK", ""));
    // The process goes away: the scrape still succeeds and counts it.
    drop(fx);
    let (status, body) = http(&srv.addr, "GET /metrics");
    assert_eq!(status, "200 OK");
    assert!(
        body.contains("vmmap_scrape_skipped_processes{reason=\"gone\"} 1\n"),
        "{body}"
    );
    assert!(body.contains("vmmap_skipped_processes_total{reason=\"gone\"} 1\n"));
    assert!(!body.contains("vmmap_size_bytes{"));
}

/// Percent-encodes a PromQL query for a URL.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A running Prometheus server, killed on drop.
struct Prometheus {
    child: Child,
    addr: String,
    _dir: TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts Prometheus on loopback, scraping `target` every second, with
    /// its storage in a temporary directory.
    fn start(target: &str) -> Prometheus {
        let dir = TempDir::new("prometheus");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: vmmap\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("write prometheus.yml");
        // A free port: bind one, release it, hand it to Prometheus.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(require_tool("prometheus", "prometheus"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        Prometheus {
            child,
            addr,
            _dir: dir,
        }
    }

    /// The result vector of an instant query, or None while Prometheus is
    /// not answering yet.
    fn query(&self, promql: &str) -> Option<Vec<Value>> {
        let mut s = TcpStream::connect(&self.addr).ok()?;
        write!(
            s,
            "GET /api/v1/query?query={} HTTP/1.0\r\nHost: {}\r\n\r\n",
            url_encode(promql),
            self.addr
        )
        .ok()?;
        let mut raw = String::new();
        s.read_to_string(&mut raw).ok()?;
        let (_, body) = raw.split_once("\r\n\r\n")?;
        let v: Value = serde_json::from_str(body).ok()?;
        (v["status"] == "success").then(|| v["data"]["result"].as_array().cloned())?
    }

    /// Polls `promql` until `done` accepts its result (at most a minute:
    /// Prometheus starts in about a second and scrapes every second).
    fn wait_for(&self, promql: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(r) = self.query(promql) {
                if done(&r) {
                    return r;
                }
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus never answered {promql} as expected"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn prometheus_scrapes_serve_and_stores_the_snapshot_figures() {
    require_tool("prometheus", "prometheus");
    let _alone = quiet_system();
    let fx = Fixture::start_alone();
    fx.stop();
    let pid = fx.pid.to_string();
    let srv = serve(&[&pid]);
    let prom = Prometheus::start(&srv.addr);
    let up = prom.wait_for("up{job=\"vmmap\"}", |r| {
        r.len() == 1 && r[0]["value"][1] == "1"
    });
    assert_eq!(up[0]["metric"]["instance"], srv.addr.as_str());
    let selector = format!("{{__name__=~\"vmmap_.*_bytes\",pid=\"{pid}\"}}");
    // 6 figures x 8 types, all from one scrape of the stopped process.
    let result = prom.wait_for(&selector, |r| r.len() == 48);
    let mut got = BTreeMap::new();
    for s in &result {
        let m = &s["metric"];
        let value: f64 = s["value"][1]
            .as_str()
            .and_then(|v| v.parse().ok())
            .expect("a numeric sample");
        assert_eq!(value.fract(), 0.0);
        got.insert(
            (
                m["__name__"].as_str().expect("name").to_string(),
                m["pid"].as_str().expect("pid").to_string(),
                m["type"].as_str().expect("type").to_string(),
            ),
            value as u64,
        );
        assert_eq!(m["job"], "vmmap");
    }
    let duration = prom.wait_for("vmmap_scrape_duration_seconds", |r| r.len() == 1);
    assert!(duration[0]["value"][1]
        .as_str()
        .and_then(|v| v.parse::<f64>().ok())
        .is_some_and(|d| d > 0.0));
    let skipped = prom.wait_for("sum(vmmap_scrape_skipped_processes)", |r| r.len() == 1);
    assert_eq!(skipped[0]["value"][1], "0");
    // The snapshot is taken after the server stops, so that exactly one
    // vmmap process maps libc at each read (see assert_same).
    drop(srv);
    let snap = snapshot_json(fx.pid, &[]);
    assert_same(&got, &snap, fx.pid);
}
