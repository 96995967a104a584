//! What the interactive view adds to collection.
//!
//! refresh_60k: F5 on a process with 60,000 mappings
//! (`../shared/bench/maps_fixture.c`, built into `target/bench/`): a
//! snapshot alone, against a snapshot plus what the UI does with it (the
//! collector's `Response::Snapshot` handed to `App::on_response`, which
//! replaces the main view's snapshot, and a draw into a 200x50
//! `TestBackend`). Under `cargo bench` it then times the two alternately
//! and prints one line with the ratio of their medians (target: at most
//! 1.2x). Skipped, with a message, when maps_fixture.c is not there.
//!
//! first_frame: opening an ordinary process (a shell waiting on its
//! input): snapshot, `App::new` and the first draw.
//!
//! Every process started here is killed at the end, also on a panic (and
//! maps_fixture also when the benchmark is killed, through setpriv).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use vmmap_core::collect::{self, Options};
use vmmap_tui::app::App;
use vmmap_tui::collector::Response;
use vmmap_tui::Settings;

const WIDTH: u16 = 200;
const HEIGHT: u16 = 50;
const MAPPINGS: u64 = 60_000;
const TARGET_RATIO: f64 = 1.2;

/// A child process killed (and reaped) on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds maps_fixture into target/bench/ (again when the source is
/// newer); None, with the reason, when its source is missing or the build
/// fails.
fn maps_fixture() -> Result<PathBuf, String> {
    let src = root().join("../shared/bench/maps_fixture.c");
    if !src.exists() {
        return Err(format!("{} not found", src.display()));
    }
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root().join("target"), PathBuf::from)
        .join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let bin = dir.join("maps_fixture_tui");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&bin).is_none() || modified(&bin) < modified(&src) {
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
        let st = Command::new(&cc)
            .args(["-O2", "-o"])
            .arg(&bin)
            .arg(&src)
            .status()
            .map_err(|e| format!("cannot run {cc}: {e}"))?;
        if !st.success() {
            return Err(format!("{cc} {} failed", src.display()));
        }
    }
    Ok(bin)
}

/// Starts `maps_fixture N - 0` and waits for `READY pid n`.
fn start_maps_fixture(bin: &Path, n: u64) -> (Killed, u32) {
    // Through `setpriv --pdeathsig KILL` where it exists, so that the
    // fixture dies with us even if we are killed (Ctrl+C) instead of
    // unwinding; setpriv execs it, so the pid stays the same.
    let setpriv = Command::new("setpriv")
        .arg("--help")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--pdeathsig"));
    let mut cmd = if setpriv {
        let mut c = Command::new("setpriv");
        c.args(["--pdeathsig", "KILL", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    let mut child = cmd
        .args([n.to_string().as_str(), "-", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
    let out = child.stdout.take().expect("stdout");
    let child = Killed(child);
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .expect("read READY");
    let mut w = line.split_whitespace();
    assert_eq!(w.next(), Some("READY"), "maps_fixture said {line:?}");
    let pid: u32 = w.next().and_then(|p| p.parse().ok()).expect("pid");
    let made: u64 = w.next().and_then(|p| p.parse().ok()).expect("count");
    assert_eq!(pid, child.0.id());
    if made < n {
        eprintln!("WARNING: maps_fixture made only {made} of {n} mappings (vm.max_map_count?)");
    }
    (child, pid)
}

fn terminal() -> Terminal<TestBackend> {
    Terminal::new(TestBackend::new(WIDTH, HEIGHT)).expect("test terminal")
}

/// One refresh as the UI does it: the collector's snapshot, handed to the
/// app (which replaces the main view's snapshot), then a draw.
fn refresh(app: &mut App, term: &mut Terminal<TestBackend>, pid: u32, opts: &Options) {
    let t = Instant::now();
    let snap = collect::snapshot(pid, opts).expect("snapshot");
    app.on_response(Response::Snapshot(pid, Ok((Arc::new(snap), t.elapsed()))));
    term.draw(|f| app.draw(f)).expect("draw");
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn refresh_60k(c: &mut Criterion) {
    let bin = match maps_fixture() {
        Ok(b) => b,
        Err(why) => {
            eprintln!("SKIPPED refresh_60k: {why} (it needs ../shared/bench/maps_fixture.c)");
            return;
        }
    };
    let (_fixture, pid) = start_maps_fixture(&bin, MAPPINGS);
    let opts = Options::default();
    let first = collect::snapshot(pid, &opts).expect("snapshot");
    let regions = first.regions.len();
    let mut app = App::new(Settings::default(), Some((Arc::new(first), Duration::ZERO)));
    let mut term = terminal();
    term.draw(|f| app.draw(f)).expect("draw");

    let mut g = c.benchmark_group("refresh_60k");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    g.bench_function("snapshot", |b| {
        b.iter(|| collect::snapshot(pid, &opts).expect("snapshot"))
    });
    g.bench_function("snapshot+on_response+draw", |b| {
        b.iter(|| refresh(&mut app, &mut term, pid, &opts))
    });
    g.finish();

    // Criterion's medians come from different moments; for the ratio, time
    // the two alternately so that a change in machine load hits both.
    if !std::env::args().any(|a| a == "--bench") {
        return; // test mode (`cargo test --benches`): each ran once, enough.
    }
    let rounds = 15;
    let (mut alone, mut full) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        std::hint::black_box(collect::snapshot(pid, &opts).expect("snapshot"));
        alone.push(t.elapsed());
        let t = Instant::now();
        refresh(&mut app, &mut term, pid, &opts);
        full.push(t.elapsed());
    }
    let (a, f) = (median(alone), median(full));
    let ratio = f.as_secs_f64() / a.as_secs_f64();
    println!(
        "REFRESH RATIO regions={regions} snapshot={:.1}ms snapshot+on_response+draw={:.1}ms \
         ratio={ratio:.3} (target <= {TARGET_RATIO}) {} [medians of {rounds} alternating runs]",
        ms(a),
        ms(f),
        if ratio <= TARGET_RATIO {
            "OK"
        } else {
            "MISSED"
        }
    );
}

fn first_frame(c: &mut Criterion) {
    // An ordinary process: a shell waiting for its input.
    let sh = Killed(
        Command::new("sh")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start sh"),
    );
    let pid = sh.0.id();
    let opts = Options::default();
    // Wait until it has exec'd and is waiting, so every run sees the same.
    let t0 = Instant::now();
    while std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_or(true, |s| !s.contains("(sh) S"))
    {
        assert!(t0.elapsed() < Duration::from_secs(10), "sh did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    let regions = collect::snapshot(pid, &opts)
        .expect("snapshot")
        .regions
        .len();
    let mut g = c.benchmark_group("first_frame");
    g.bench_function("sh: snapshot+App::new+draw", |b| {
        b.iter(|| {
            let t = Instant::now();
            let snap = collect::snapshot(pid, &opts).expect("snapshot");
            let mut app = App::new(Settings::default(), Some((Arc::new(snap), t.elapsed())));
            let mut term = terminal();
            term.draw(|f| app.draw(f)).expect("draw");
            term
        })
    });
    g.finish();
    if std::env::args().any(|a| a == "--bench") {
        let mut v = Vec::new();
        for _ in 0..51 {
            let t = Instant::now();
            let snap = collect::snapshot(pid, &opts).expect("snapshot");
            let mut app = App::new(Settings::default(), Some((Arc::new(snap), t.elapsed())));
            let mut term = terminal();
            term.draw(|f| app.draw(f)).expect("draw");
            v.push(t.elapsed());
        }
        println!(
            "FIRST FRAME sh regions={regions} median={:.2}ms [51 runs]",
            ms(median(v))
        );
    }
}

criterion_group!(benches, refresh_60k, first_frame);
criterion_main!(benches);
