//! `vmmap serve`: the library's OpenMetrics rendering served at
//! `/metrics` (`vmmap metrics` prints it once).
//!
//! The server is hyper 1.x on a current-thread tokio runtime: a
//! maintained HTTP implementation, and the only one of the candidates
//! that gives, without hand-written parsing, a deadline on a whole request
//! head (`header_read_timeout`, which a client dripping bytes cannot
//! extend), concurrent connections on one thread, TLS through
//! tokio-rustls and unix sockets. tiny_http would need its own request
//! deadline on top of per-read timeouts, the very gap this replaced.
//!
//! Bounds: at most [`MAX_CONNECTIONS`] connections at once (more are
//! closed at once), each given [`REQUEST_DEADLINE`] for its TLS handshake
//! and request, and a whole-connection limit beyond the scrape budget;
//! scrapes run on blocking threads, one collection at a time (the
//! library serialises them), each within `--budget-ms`.

mod listen;
mod privileges;
mod web_config;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use vmmap_core::metrics::{self, ScrapeOptions, Skipped, Target};

use crate::cli::ServeArgs;
use crate::metrics::{scrape_options, targets};
use crate::{exit, Failure};

/// The serve default for --budget-ms: half Prometheus's default 10 s
/// scrape timeout.
const SERVE_BUDGET_MS: u64 = 5000;

/// Time a client has, from connecting, for the TLS handshake and the whole
/// request head (GET and HEAD have no body; other methods are answered
/// without reading theirs).
const REQUEST_DEADLINE: Duration = Duration::from_secs(5);

/// Time to write an answer, on top of the request deadline and the scrape
/// budget, before a connection that reads too slowly is dropped.
const WRITE_DEADLINE: Duration = Duration::from_secs(10);

/// Connections served at once; more are closed straight away, so that a
/// flood costs file descriptors and memory only up to this.
const MAX_CONNECTIONS: usize = 64;

/// Threads for scrapes and bcrypt checks (each scrape adds a collecting
/// thread); more requests queue for them. Keeps the server well under a
/// unit's TasksMax under a flood.
const BLOCKING_THREADS: usize = 16;

/// What every connection shares.
struct State {
    targets: Vec<Target>,
    opts: ScrapeOptions,
    /// Skipped processes since start, for the counter.
    lifetime: Mutex<Skipped>,
    /// User to bcrypt hash; empty: no authentication.
    users: BTreeMap<String, String>,
    /// A hash checked for unknown users, at the configured cost, so that
    /// they take as long to refuse as a wrong password (user names do not
    /// leak by timing).
    dummy_hash: String,
}

/// `vmmap serve`: answers `/metrics` until killed.
pub(crate) fn serve(a: &ServeArgs, proc_root: &Path) -> Result<(), Failure> {
    // Everything that needs root (reading the key, binding, the socket's
    // group) happens first, then the drop, then the threads.
    let web = match &a.web_config {
        Some(p) => Some(web_config::load(p).map_err(Failure::usage)?),
        None => None,
    };
    let account = a.user.as_deref().map(privileges::account).transpose()?;
    let group = a
        .socket_group
        .as_deref()
        .map(privileges::group)
        .transpose()?;
    let bound = listen::bind(&a.listen, a.socket_mode, group)?;
    if let Some(acct) = &account {
        privileges::drop_to(acct)?;
    }
    let (tls, users) = match web {
        Some(w) => (w.tls.map(TlsAcceptor::from), w.users),
        None => (None, BTreeMap::new()),
    };
    let mut open_to_network = false;
    let shown = match &bound {
        listen::Bound::Tcp(l) => {
            let addr = l.local_addr().map_err(|e| Failure {
                code: exit::OTHER,
                message: format!("cannot listen on {}: {e}", a.listen),
            })?;
            open_to_network = !addr.ip().is_loopback();
            let scheme = if tls.is_some() { "https" } else { "http" };
            format!("{scheme}://{addr}/metrics")
        }
        listen::Bound::Unix(_, path) => format!("unix:{}", path.display()),
    };
    eprintln!("vmmap: serving {shown}");
    if open_to_network && users.is_empty() {
        eprintln!(
            "vmmap: warning: {} is reachable from the network without authentication: anyone who connects reads the memory figures of every process vmmap can read; use a loopback address, unix:PATH or --web-config with basic_auth_users",
            a.listen
        );
    }
    if let Some(acct) = &account {
        eprintln!(
            "vmmap: running as {} with CAP_SYS_PTRACE only",
            privileges::describe(acct)
        );
    }
    let cost = users
        .values()
        .next()
        .and_then(|h| h.parse::<bcrypt::HashParts>().ok())
        .map_or(bcrypt::DEFAULT_COST, |p| p.get_cost());
    let dummy_hash = if users.is_empty() {
        String::new()
    } else {
        bcrypt::hash("vmmap: no such user", cost).unwrap_or_default()
    };
    let state = Arc::new(State {
        targets: targets(&a.select),
        opts: scrape_options(&a.select, proc_root, Some(SERVE_BUDGET_MS)),
        lifetime: Mutex::new(Skipped::default()),
        users,
        dummy_hash,
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
        .map_err(|e| Failure {
            code: exit::OTHER,
            message: format!("cannot start the server: {e}"),
        })?;
    runtime.block_on(accept_loop(bound, tls, state))
}

async fn accept_loop(
    bound: listen::Bound,
    tls: Option<TlsAcceptor>,
    state: Arc<State>,
) -> Result<(), Failure> {
    let io_failure = |e: io::Error| Failure {
        code: exit::OTHER,
        message: format!("cannot listen: {e}"),
    };
    match bound {
        listen::Bound::Tcp(l) => {
            l.set_nonblocking(true).map_err(io_failure)?;
            let l = &tokio::net::TcpListener::from_std(l).map_err(io_failure)?;
            serve_all(move || async move { Ok(l.accept().await?.0) }, tls, state).await
        }
        listen::Bound::Unix(l, _) => {
            l.set_nonblocking(true).map_err(io_failure)?;
            let l = &tokio::net::UnixListener::from_std(l).map_err(io_failure)?;
            serve_all(move || async move { Ok(l.accept().await?.0) }, tls, state).await
        }
    }
}

/// Serves each connection `accept` gives, for ever (it never returns):
/// one loop for both kinds of listener, which tokio gives no common trait.
async fn serve_all<S, A, F>(
    mut accept: A,
    tls: Option<TlsAcceptor>,
    state: Arc<State>,
) -> Result<(), Failure>
where
    A: FnMut() -> F,
    F: Future<Output = io::Result<S>>,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let limit = REQUEST_DEADLINE + state.opts.budget.unwrap_or_default() + WRITE_DEADLINE;
    loop {
        match accept().await {
            Ok(s) => spawn(s, &slots, limit, tls.clone(), &state),
            Err(e) => accept_error(e).await,
        }
    }
}

/// An accept error (out of file descriptors, say) is reported, and the
/// loop pauses briefly instead of spinning on it.
async fn accept_error(e: io::Error) {
    eprintln!("vmmap: warning: accepting a connection: {e}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Serves one connection in its own task, if a slot is free.
fn spawn<S>(
    stream: S,
    slots: &Arc<Semaphore>,
    limit: Duration,
    tls: Option<TlsAcceptor>,
    state: &Arc<State>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Ok(slot) = slots.clone().try_acquire_owned() else {
        return; // Dropping the stream closes it.
    };
    let state = state.clone();
    tokio::spawn(async move {
        let _slot = slot;
        // A client that misbehaves or goes away costs its own request
        // only; the whole connection never outlives `limit`.
        let _ = tokio::time::timeout(limit, connection(stream, tls, state)).await;
    });
}

async fn connection<S>(stream: S, tls: Option<TlsAcceptor>, state: Arc<State>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let start = tokio::time::Instant::now();
    match tls {
        None => http(stream, REQUEST_DEADLINE, state).await,
        Some(acceptor) => {
            let Ok(Ok(s)) = tokio::time::timeout(REQUEST_DEADLINE, acceptor.accept(stream)).await
            else {
                return;
            };
            let left = REQUEST_DEADLINE.saturating_sub(start.elapsed());
            http(s, left, state).await;
        }
    }
}

/// HTTP/1.1, one request per connection, the request head within
/// `deadline`.
async fn http<S>(stream: S, deadline: Duration, state: Arc<State>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(answer(req, state).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(deadline.max(Duration::from_millis(1)))
        .keep_alive(false)
        .max_buf_size(16 * 1024)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Whether the request carries the credentials of a configured user.
async fn authorized(
    req: &Request<Incoming>,
    users: &BTreeMap<String, String>,
    dummy: &str,
) -> bool {
    let Some(creds) = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // The scheme name is case-insensitive (RFC 9110).
        .and_then(|v| {
            v.get(..6)
                .filter(|s| s.eq_ignore_ascii_case("basic "))
                .map(|_| &v[6..])
        })
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
    else {
        return false;
    };
    let Some((user, password)) = creds.split_once(':') else {
        return false;
    };
    let (known, hash) = match users.get(user) {
        Some(h) => (true, h.clone()),
        None => (false, dummy.to_string()),
    };
    let password = password.to_string();
    // bcrypt is deliberately slow: off the async thread.
    let ok = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
        .await
        .unwrap_or(false);
    known && ok
}

async fn answer(req: Request<Incoming>, state: Arc<State>) -> Response<Full<Bytes>> {
    if !state.users.is_empty() && !authorized(&req, &state.users, &state.dummy_hash).await {
        let mut r = plain(StatusCode::UNAUTHORIZED, "Unauthorized\n");
        r.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"vmmap\", charset=\"UTF-8\""),
        );
        return r;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD only\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match req.uri().path() {
        "/metrics" => {
            // Prometheus asks for OpenMetrics; anything else (curl, older
            // scrapers) gets the Prometheus text format.
            let openmetrics = req
                .headers()
                .get(hyper::header::ACCEPT)
                .and_then(|a| a.to_str().ok())
                .is_some_and(|a| a.contains("application/openmetrics-text"));
            let format = if openmetrics {
                metrics::Format::OpenMetrics
            } else {
                metrics::Format::PrometheusText
            };
            let s = state.clone();
            let body = tokio::task::spawn_blocking(move || {
                let scrape = metrics::scrape(&s.targets, &s.opts);
                let mut lifetime = s.lifetime.lock().unwrap_or_else(|e| e.into_inner());
                lifetime.add_all(&scrape.skipped);
                let mut body = Vec::with_capacity(64 * 1024);
                metrics::render_as(&scrape, Some(&lifetime), format, &mut body).map(|_| body)
            })
            .await;
            match body {
                Ok(Ok(body)) => {
                    let mut r = Response::new(Full::new(Bytes::from(body)));
                    r.headers_mut().insert(
                        CONTENT_TYPE,
                        HeaderValue::from_static(format.content_type()),
                    );
                    r
                }
                _ => plain(StatusCode::INTERNAL_SERVER_ERROR, "scrape failed\n"),
            }
        }
        "/" => {
            let mut r = Response::new(Full::new(Bytes::from_static(
                b"<html><head><title>vmmap</title></head><body><h1>vmmap</h1><p><a href=\"/metrics\">/metrics</a></p></body></html>\n",
            )));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        }
        _ => plain(StatusCode::NOT_FOUND, "only /metrics is here\n"),
    }
}
