//! Single-core throughput of the detector rules and the leak guard on real files.
//!
//! `cargo bench -p hush-scan` reads up to `HUSH_BENCH_MB` MiB (default 256) of the files under
//! `HUSH_BENCH_CORPUS` (default `/usr`: binaries, libraries, docs, scripts — what images hold),
//! then times each scanner over it on one thread, as `hush audit` runs them per chunk.

use std::path::Path;
use std::time::Instant;

use hush_scan::rules::Rules;
use hush_scan::Guard;

const CHUNK: usize = 4 << 20;

fn collect(dir: &Path, out: &mut Vec<u8>, limit: usize) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        if out.len() >= limit {
            return;
        }
        let Ok(t) = e.file_type() else { continue };
        if t.is_dir() {
            collect(&e.path(), out, limit);
        } else if t.is_file() {
            if let Ok(b) = std::fs::read(e.path()) {
                out.extend_from_slice(&b[..b.len().min(limit - out.len())]);
            }
        }
    }
}

fn time(name: &str, corpus: &[u8], mut f: impl FnMut(&[u8]) -> usize) {
    let mut best = f64::MAX;
    let mut hits = 0;
    for _ in 0..3 {
        let t = Instant::now();
        hits = corpus.chunks(CHUNK).map(&mut f).sum();
        best = best.min(t.elapsed().as_secs_f64());
    }
    let mb = corpus.len() as f64 / 1e6;
    println!(
        "{name:<28} {mb:>8.0} MB  {best:>7.3} s  {:>8.0} MB/s/core  ({hits} hits)",
        mb / best
    );
}

fn main() {
    let root = std::env::var("HUSH_BENCH_CORPUS").unwrap_or_else(|_| "/usr".into());
    let mb: usize = std::env::var("HUSH_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let mut corpus = Vec::with_capacity(mb << 20);
    collect(Path::new(&root), &mut corpus, mb << 20);
    if corpus.is_empty() {
        eprintln!("no files under {root}");
        return;
    }
    let rules = Rules::new();
    time("detector rules", &corpus, |c| rules.scan(c).len());
    let guard = Guard::new(
        [
            ("token", &b"s3cr3t-Value-0123456789abcdef"[..]),
            (
                "json",
                &br#"{"user":"admin","password":"correct-horse-battery"}"#[..],
            ),
        ],
        hush_scan::DEFAULT_MIN_LEN,
    );
    time("leak guard (2 secrets)", &corpus, |c| {
        let mut s = guard.scan_with(false);
        s.feed("bench", c);
        s.finish().len()
    });
    // What the layers of steps that mount a secret get: wrapped base64 and hex too.
    time("leak guard, + wrapped", &corpus, |c| {
        guard.scan_bytes("bench", c).len()
    });
}
