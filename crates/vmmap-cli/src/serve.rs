//! `vmmap metrics` and `vmmap serve`: the library's OpenMetrics rendering
//! printed once, or served at `/metrics` by a small blocking HTTP/1.1
//! server (one connection and one scrape at a time, which also bounds the
//! load a scraper can cause).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use vmmap_core::collect::Options;
use vmmap_core::metrics::{self, ScrapeOptions, Skipped, Target};

use crate::cli::{MetricsArgs, SelectArgs, ServeArgs};
use crate::{exit, output_error, write_file, Failure};

/// The serve default for --budget-ms: half Prometheus's default 10 s
/// scrape timeout.
const SERVE_BUDGET_MS: u64 = 5000;

fn targets(a: &SelectArgs) -> Vec<Target> {
    if a.all {
        return vec![Target::All];
    }
    a.targets
        .iter()
        .map(|t| match t.parse::<u32>() {
            Ok(p) => Target::Pid(p),
            Err(_) => Target::Name(t.clone()),
        })
        .collect()
}

fn scrape_options(a: &SelectArgs, proc_root: &Path, default_budget: Option<u64>) -> ScrapeOptions {
    ScrapeOptions {
        collect: Options::default()
            .proc_root(proc_root)
            .ptrace(!a.no_ptrace)
            .read_memory(!a.no_read_memory),
        max_processes: a.max_processes,
        budget: a.budget_ms.or(default_budget).map(Duration::from_millis),
    }
}

/// `vmmap metrics`: one scrape, printed or written atomically.
pub(crate) fn metrics(a: &MetricsArgs, proc_root: &Path) -> Result<(), Failure> {
    let scrape = metrics::scrape(
        &targets(&a.select),
        &scrape_options(&a.select, proc_root, None),
    );
    let write = |w: &mut dyn Write| -> io::Result<()> {
        let mut w = io::BufWriter::new(w);
        metrics::render(&scrape, None, &mut w)?;
        w.flush()
    };
    match &a.output {
        Some(path) => write_file(path, write),
        None => write(&mut io::stdout().lock()).map_err(|e| output_error(e, "standard output")),
    }
}

/// `vmmap serve`: answers `/metrics` until killed.
pub(crate) fn serve(a: &ServeArgs, proc_root: &Path) -> Result<(), Failure> {
    let listener = TcpListener::bind(&a.listen).map_err(|e| Failure {
        code: if e.kind() == io::ErrorKind::InvalidInput {
            exit::USAGE
        } else {
            exit::OTHER
        },
        message: format!("cannot listen on {}: {e}", a.listen),
    })?;
    let addr = listener.local_addr().map_err(|e| Failure {
        code: exit::OTHER,
        message: format!("cannot listen on {}: {e}", a.listen),
    })?;
    eprintln!("vmmap: serving http://{addr}/metrics");
    let targets = targets(&a.select);
    let opts = scrape_options(&a.select, proc_root, Some(SERVE_BUDGET_MS));
    let mut lifetime = Skipped::default();
    for conn in listener.incoming() {
        match conn {
            // A client that misbehaves or goes away costs its own request
            // only.
            Ok(stream) => {
                let _ = handle(stream, &targets, &opts, &mut lifetime);
            }
            Err(e) => eprintln!("vmmap: warning: accepting a connection: {e}"),
        }
    }
    Ok(())
}

/// Largest request head accepted.
const MAX_HEAD: usize = 8192;

fn handle(
    mut stream: TcpStream,
    targets: &[Target],
    opts: &ScrapeOptions,
    lifetime: &mut Skipped,
) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_HEAD {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                b"request head too large\n",
                false,
            );
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next(), parts.next(), parts.next());
    let (Some(method), Some(target), Some(version)) = (method, target, version) else {
        return respond(
            &mut stream,
            "400 Bad Request",
            "text/plain",
            b"malformed request line\n",
            false,
        );
    };
    if !version.starts_with("HTTP/1.") {
        return respond(
            &mut stream,
            "505 HTTP Version Not Supported",
            "text/plain",
            b"HTTP/1.x only\n",
            false,
        );
    }
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            b"GET or HEAD only\n",
            false,
        );
    }
    let path = target.split('?').next().unwrap_or(target);
    match path {
        "/metrics" => {
            let scrape = metrics::scrape(targets, opts);
            lifetime.add_all(&scrape.skipped);
            let mut body = Vec::with_capacity(4096);
            metrics::render(&scrape, Some(lifetime), &mut body)?;
            respond(&mut stream, "200 OK", metrics::CONTENT_TYPE, &body, head_only)
        }
        "/" => respond(
            &mut stream,
            "200 OK",
            "text/html; charset=utf-8",
            b"<html><head><title>vmmap</title></head><body><h1>vmmap</h1><p><a href=\"/metrics\">/metrics</a></p></body></html>\n",
            head_only,
        ),
        _ => respond(&mut stream, "404 Not Found", "text/plain", b"only /metrics is here\n", head_only),
    }
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
    head_only: bool,
) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if status.starts_with("405") {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(body);
    }
    stream.write_all(&bytes)?;
    stream.flush()
}
