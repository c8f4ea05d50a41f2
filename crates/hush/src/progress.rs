//! Renders build progress: BuildKit's plain format (`#N [stage] INSTRUCTION`, output lines,
//! `#N DONE 0.1s`, `#N CACHED`), a live view for terminals (indicatif: one spinner per running
//! step, output and finished steps scrolling above), JSON lines (`rawjson`), or nothing.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use crate::output::errln;
use hush_dockerfile::Location;
use hush_solver::Reporter;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// `--progress`, as buildx takes it.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ProgressMode {
    /// `tty` on a terminal, else `plain`.
    Auto,
    /// BuildKit's plain format.
    Plain,
    /// The live view.
    Tty,
    /// JSON lines.
    Rawjson,
    /// Nothing but errors.
    Quiet,
}

/// The reporter for `--progress MODE` (`quiet` also for `-q`).
pub(crate) fn reporter(mode: ProgressMode, quiet: bool) -> Box<dyn Reporter> {
    match mode {
        _ if quiet => Box::new(Plain::new(true)),
        ProgressMode::Quiet => Box::new(Plain::new(true)),
        ProgressMode::Rawjson => Box::new(Json::default()),
        ProgressMode::Tty | ProgressMode::Auto if std::io::stderr().is_terminal() => {
            Box::new(Tty::new())
        }
        ProgressMode::Tty => {
            // indicatif draws nothing where there is no terminal: say so, and print plain.
            errln!("note: --progress=tty: stderr is not a terminal, printing plain progress");
            Box::new(Plain::new(false))
        }
        ProgressMode::Auto | ProgressMode::Plain => Box::new(Plain::new(false)),
    }
}

/// Output bytes of each step, cut into lines (steps of parallel stages interleave).
#[derive(Default)]
struct Lines(Mutex<HashMap<usize, Vec<u8>>>);

impl Lines {
    /// The complete lines of `chunk` after what step `id` had pending.
    fn push(&self, id: usize, chunk: &[u8]) -> Vec<String> {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let p = all.entry(id).or_default();
        p.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(pos) = p.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = p.drain(..=pos).collect();
            out.push(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
        }
        out
    }

    /// What is left of step `id`'s output (a last line without a newline).
    fn rest(&self, id: usize) -> Option<String> {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        all.remove(&id)
            .filter(|r| !r.is_empty())
            .map(|r| String::from_utf8_lossy(&r).into_owned())
    }
}

struct Plain {
    quiet: bool,
    lines: Lines,
}

impl Plain {
    fn new(quiet: bool) -> Self {
        Plain {
            quiet,
            lines: Lines::default(),
        }
    }

    fn line(&self, s: &str) {
        if !self.quiet {
            let mut e = std::io::stderr().lock();
            let _ = writeln!(e, "{s}");
        }
    }
}

impl Reporter for Plain {
    fn step(&self, id: usize, stage: &str, text: &str, _location: Location) {
        self.line(&format!("#{id} [{stage}] {text}"));
    }
    fn cached(&self, id: usize) {
        self.line(&format!("#{id} CACHED"));
    }
    fn output(&self, id: usize, chunk: &[u8]) {
        for l in self.lines.push(id, chunk) {
            self.line(&format!("#{id} {l}"));
        }
    }
    fn done(&self, id: usize, seconds: f64) {
        if let Some(rest) = self.lines.rest(id) {
            self.line(&format!("#{id} {rest}"));
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

/// The live terminal view.
struct Tty {
    multi: MultiProgress,
    bars: Mutex<HashMap<usize, (ProgressBar, String)>>,
    lines: Lines,
}

impl Tty {
    fn new() -> Self {
        Tty {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
            lines: Lines::default(),
        }
    }

    fn print(&self, s: &str) {
        if self.multi.println(s).is_err() {
            errln!("{s}");
        }
    }

    fn finish(&self, id: usize, status: &str) {
        let bar = self
            .bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        if let Some((bar, title)) = bar {
            bar.finish_and_clear();
            self.multi.remove(&bar);
            self.print(&format!("#{id} {title} {status}"));
        }
    }
}

impl Reporter for Tty {
    fn step(&self, id: usize, stage: &str, text: &str, _location: Location) {
        let style = ProgressStyle::with_template("{spinner:.cyan} #{prefix} {wide_msg} {elapsed}")
            .expect("template")
            .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ");
        let title = format!("[{stage}] {text}");
        let bar = self.multi.add(ProgressBar::new_spinner().with_style(style));
        bar.set_prefix(id.to_string());
        bar.set_message(title.clone());
        bar.enable_steady_tick(Duration::from_millis(100));
        self.bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, (bar, title));
    }
    fn cached(&self, id: usize) {
        self.finish(id, "CACHED");
    }
    fn output(&self, id: usize, chunk: &[u8]) {
        for l in self.lines.push(id, chunk) {
            self.print(&format!("#{id} {l}"));
        }
    }
    fn done(&self, id: usize, seconds: f64) {
        if let Some(rest) = self.lines.rest(id) {
            self.print(&format!("#{id} {rest}"));
        }
        self.finish(id, &format!("DONE {seconds:.1}s"));
    }
    fn info(&self, id: usize, message: &str) {
        self.print(&format!("#{id} {message}"));
    }
    fn warn(&self, message: &str) {
        self.print(&format!("WARNING: {message}"));
    }
}

impl Drop for Tty {
    /// A failed or interrupted build leaves its running steps' last state on screen.
    fn drop(&mut self) {
        for (_, (bar, _)) in self
            .bars
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
        {
            bar.abandon();
        }
    }
}

/// One JSON object per event and line, on stderr, for tools.
#[derive(Default)]
struct Json {
    lines: Lines,
}

impl Json {
    fn emit(&self, v: serde_json::Value) {
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "{v}");
    }
}

impl Reporter for Json {
    fn step(&self, id: usize, stage: &str, text: &str, location: Location) {
        self.emit(serde_json::json!({"step": id, "event": "start", "stage": stage, "name": text, "line": location.start_line}));
    }
    fn cached(&self, id: usize) {
        self.emit(serde_json::json!({"step": id, "event": "cached"}));
    }
    fn output(&self, id: usize, chunk: &[u8]) {
        for l in self.lines.push(id, chunk) {
            self.emit(serde_json::json!({"step": id, "event": "log", "data": l}));
        }
    }
    fn done(&self, id: usize, seconds: f64) {
        if let Some(rest) = self.lines.rest(id) {
            self.emit(serde_json::json!({"step": id, "event": "log", "data": rest}));
        }
        self.emit(serde_json::json!({"step": id, "event": "done", "seconds": seconds}));
    }
    fn info(&self, id: usize, message: &str) {
        self.emit(serde_json::json!({"step": id, "event": "info", "message": message}));
    }
    fn warn(&self, message: &str) {
        self.emit(serde_json::json!({"event": "warning", "message": message}));
    }
}
