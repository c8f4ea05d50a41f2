//! Renders build progress: BuildKit's plain format (`#N [stage] INSTRUCTION`, output lines,
//! `#N DONE 0.1s`, `#N CACHED`) or nothing (`--progress=quiet`).

use std::io::Write;
use std::sync::Mutex;

use hush_dockerfile::Location;

pub(crate) struct Plain {
    quiet: bool,
    partial: Mutex<Vec<u8>>,
}

impl Plain {
    pub(crate) fn new(quiet: bool) -> Self {
        Plain {
            quiet,
            partial: Mutex::new(Vec::new()),
        }
    }

    fn line(&self, s: &str) {
        if !self.quiet {
            let mut e = std::io::stderr().lock();
            let _ = writeln!(e, "{s}");
        }
    }
}

impl hush_solver::Reporter for Plain {
    fn step(&self, id: usize, stage: &str, text: &str, _location: Location) {
        self.line(&format!("#{id} [{stage}] {text}"));
    }
    fn cached(&self, id: usize) {
        self.line(&format!("#{id} CACHED"));
    }
    fn output(&self, id: usize, chunk: &[u8]) {
        let mut p = self.partial.lock().unwrap_or_else(|e| e.into_inner());
        p.extend_from_slice(chunk);
        while let Some(pos) = p.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = p.drain(..=pos).collect();
            self.line(&format!(
                "#{id} {}",
                String::from_utf8_lossy(&line[..line.len() - 1])
            ));
        }
    }
    fn done(&self, id: usize, seconds: f64) {
        let rest: Vec<u8> =
            std::mem::take(&mut *self.partial.lock().unwrap_or_else(|e| e.into_inner()));
        if !rest.is_empty() {
            self.line(&format!("#{id} {}", String::from_utf8_lossy(&rest)));
        }
        self.line(&format!("#{id} DONE {seconds:.1}s"));
    }
    fn info(&self, id: usize, message: &str) {
        self.line(&format!("#{id} {message}"));
    }
    fn warn(&self, message: &str) {
        self.line(&format!("WARNING: {message}"));
    }
}
