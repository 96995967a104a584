//! Parser throughput on a captured 60,000-mapping smaps
//! (`VMMAP_SMAPS_FIXTURE=path`), or on a synthetic one of the same shape
//! when no capture is given. `bench/snapshot.sh` captures one.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vmmap_core::proc::smaps;

fn synthetic(n: usize) -> Vec<u8> {
    let mut s = String::new();
    for i in 0..n {
        let start = 0x7f00_0000_0000u64 + (i as u64) * 0x5000;
        s.push_str(&format!(
            "{:x}-{:x} rw-p 00000000 00:00 0 \n",
            start,
            start + 0x4000
        ));
        for f in smaps::Field::PER_VMA.iter() {
            s.push_str(&format!(
                "{:<16}{:>8} kB\n",
                format!("{}:", f.kernel_name()),
                i % 64
            ));
        }
        s.push_str("THPeligible:           0\nVmFlags: rd wr mr mw me ac \n");
    }
    s.into_bytes()
}

fn bench(c: &mut Criterion) {
    let text = match std::env::var_os("VMMAP_SMAPS_FIXTURE") {
        Some(p) => {
            // cargo runs benches from the crate directory; a path relative
            // to the workspace root (as the README gives it) works too.
            let p = std::path::PathBuf::from(p);
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
            let p = if p.exists() { p } else { root.join(p) };
            std::fs::read(&p)
                .unwrap_or_else(|e| panic!("read VMMAP_SMAPS_FIXTURE {}: {e}", p.display()))
        }
        None => synthetic(60_000),
    };
    let mut g = c.benchmark_group("smaps");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.sample_size(20);
    g.bench_function("parse_60k", |b| {
        b.iter(|| smaps::parse(&text).expect("parses"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
