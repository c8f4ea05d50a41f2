//! A secret left in a file of a stage that reaches no output (the article's builder stage, whose
//! result the final stage copies): the build goes on with a warning, and that layer is kept for
//! the build only — never in the store, the cache or the image, gone after an error or a
//! `kill -9` (with the next command's sweep), rebuilt every time. In a stage the image is built
//! from, or copied into one, the same file fails the build. Needs root and busybox-static.

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

const PASSWORD: &str = "Pw-7xQ2mZr9kT4vL";

fn secrets_json() -> String {
    format!("{{\"username\": \"builduser\", \"password\": \"{PASSWORD}\"}}\n")
}

/// The bytes that must appear nowhere: the password, and the file and the password in base64.
fn needles() -> Vec<Vec<u8>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        PASSWORD.as_bytes().to_vec(),
        b64.encode(secrets_json()).into_bytes(),
        b64.encode(PASSWORD).into_bytes(),
    ]
}

/// The article's pattern: the builder writes the secret to a file and builds with it; a later
/// step of the builder and the final stage (COPY --from and a bind mount from=) read that layer.
const BUILDER: &str = "FROM busybox:local AS builder
RUN --mount=type=secret,id=s cat /run/secrets/s > /tmp/cfg && grep -q password /tmp/cfg && echo built > /artifact
RUN test -f /tmp/cfg && echo seen > /seen
";

/// A builder step that runs long enough to be interrupted (after saying so).
const SLOW: &str = "RUN echo sleeping && sleep 60\n";

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let e = Env {
            dir: common::busybox_store("hush-tainted-"),
        };
        std::fs::write(e.dir.path().join("secrets.json"), secrets_json()).unwrap();
        std::fs::create_dir(e.dir.path().join("ctx")).unwrap();
        e
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn hush(&self, args: &[&str]) -> Output {
        common::run_in(&self.root(), args, self.dir.path())
    }

    fn build_args(&self, dockerfile: &str, extra: &[&str]) -> Vec<String> {
        let df = self.dir.path().join("Dockerfile");
        std::fs::write(&df, dockerfile).unwrap();
        let mut args: Vec<String> = [
            "build",
            "--progress=plain",
            "-f",
            df.to_str().unwrap(),
            "--secret",
            "id=s,src=secrets.json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push("ctx".into());
        args
    }

    fn build(&self, dockerfile: &str, extra: &[&str]) -> (Option<i32>, String) {
        let args = self.build_args(dockerfile, extra);
        let o = self.hush(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let log = common::log(&o);
        assert_no_secret_in(&log, "the build's output");
        (o.status.code(), log)
    }

    /// Start a build of `dockerfile` (whose builder ends with [`SLOW`]) and return once that
    /// step's command runs, the tainted layer below it: the child, and its log when it ends.
    fn spawn_until_running(&self, dockerfile: &str) -> (Child, std::thread::JoinHandle<String>) {
        let mut child = Command::new(common::hush())
            .env("HUSH_ROOT", self.root())
            .current_dir(self.dir.path())
            .args(self.build_args(dockerfile, &[]))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line.clone());
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                // Plain progress shows the RUN's output as `#N sleeping`.
                Ok(line) if line.starts_with('#') && line.ends_with(" sleeping") => break,
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("the slow step never ran: {}", log.join().unwrap());
                }
            }
        }
        assert!(!self.tainted_dirs().is_empty(), "no tainted layer kept");
        (child, log)
    }

    /// The files under the store that hold any of the needles.
    fn secret_files(&self) -> Vec<PathBuf> {
        let needles = needles();
        walkdir::WalkDir::new(self.root())
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .filter(|e| {
                let bytes = std::fs::read(e.path()).unwrap_or_default();
                needles
                    .iter()
                    .any(|n| bytes.windows(n.len()).any(|w| w == n.as_slice()))
            })
            .map(|e| e.path().to_path_buf())
            .collect()
    }

    /// The tainted snapshots being kept in work directories right now.
    fn tainted_dirs(&self) -> Vec<PathBuf> {
        let Ok(sessions) = std::fs::read_dir(self.root().join("tmp")) else {
            return Vec::new();
        };
        sessions
            .filter_map(Result::ok)
            .filter_map(|s| std::fs::read_dir(s.path()).ok())
            .flatten()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("tainted-"))
            .map(|e| e.path())
            .collect()
    }
}

fn assert_no_secret_in(text: &str, what: &str) {
    for n in needles() {
        let n = String::from_utf8(n).unwrap();
        assert!(!text.contains(&n), "{what} shows the secret: {text}");
    }
}

/// `#N`, the id plain progress gives the first step whose title contains `title`.
fn step_id(log: &str, title: &str) -> String {
    log.lines()
        .find(|l| l.starts_with('#') && l.contains(" [") && l.contains(title))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no step {title:?} in {log}"))
        .to_string()
}

fn was_cached(log: &str, title: &str) -> bool {
    let id = step_id(log, title);
    log.lines().any(|l| l == format!("{id} CACHED"))
}

#[test]
fn builder_stage_secret_file_is_discarded_and_the_image_builds() {
    if !common::can_run(&["busybox"]) {
        return;
    }
    let e = Env::new();
    let df = format!(
        "{BUILDER}FROM busybox:local
COPY --from=builder /artifact /seen /out/
RUN --mount=type=bind,from=builder,source=/tmp/cfg,target=/c grep -q password /c && echo mounted > /out/mounted
"
    );
    let (code, log) = e.build(&df, &["-t", "app"]);
    assert_eq!(code, Some(0), "{log}");
    let warning = log
        .lines()
        .find(|l| l.contains("discarded"))
        .unwrap_or_else(|| panic!("no warning: {log}"));
    for part in [
        "stage \"builder\"",
        "Dockerfile:2",
        "/tmp/cfg",
        "secret \"s\"",
        "the stage reaches no output",
        "a COPY --from of that file would fail the build",
    ] {
        assert!(warning.contains(part), "{part:?} missing from {warning}");
    }
    assert_eq!(e.secret_files(), Vec::<PathBuf>::new(), "{log}");
    assert!(e.tainted_dirs().is_empty());

    // The image has what the builder made from the secret, and not the secret.
    let out = e.dir.path().join("out");
    let o = e.hush(&["save", "-o", out.to_str().unwrap(), "app"]);
    assert!(o.status.success(), "{}", common::log(&o));
    let saved = std::fs::read(&out).unwrap();
    for n in needles() {
        assert!(!saved.windows(n.len()).any(|w| w == n.as_slice()));
    }
    let (code, log) = e.build(
        "FROM app\nRUN cat /out/artifact /out/seen /out/mounted && ! test -e /tmp/cfg\n",
        &["--no-cache"],
    );
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("built") && log.contains("seen") && log.contains("mounted"),
        "{log}"
    );

    // A rebuild runs the tainted step again (it has no cache record); the steps after it come
    // from the cache on top of it, and the image is the same.
    let id = |e: &Env| String::from_utf8(e.hush(&["inspect", "app"]).stdout).unwrap();
    let before = id(&e);
    let (code, log) = e.build(&df, &["-t", "app"]);
    assert_eq!(code, Some(0), "{log}");
    assert!(!was_cached(&log, "cat /run/secrets/s"), "{log}");
    assert!(was_cached(&log, "test -f /tmp/cfg"), "{log}");
    assert!(was_cached(&log, "COPY --from=builder"), "{log}");
    assert!(log.contains("discarded"), "{log}");
    assert_eq!(id(&e), before);
    assert_eq!(e.secret_files(), Vec::<PathBuf>::new());
}

#[test]
fn the_secret_file_in_a_stage_that_ships_fails_the_build() {
    if !common::can_run(&["busybox"]) {
        return;
    }
    let e = Env::new();
    // Copied into the final stage: refused at that COPY.
    let copied = format!("{BUILDER}FROM busybox:local\nCOPY --from=builder /tmp/cfg /cfg\n");
    let (code, log) = e.build(&copied, &["-t", "bad"]);
    assert_eq!(code, Some(3), "{log}");
    assert!(
        log.contains("found in /cfg") && log.contains("written by COPY --from=builder"),
        "{log}"
    );
    assert!(log.contains("Dockerfile:5"), "{log}");
    // The builder is the target.
    let (code, log) = e.build(&copied, &["--target", "builder", "-t", "bad"]);
    assert_eq!(code, Some(3), "{log}");
    assert!(
        log.contains("found in /tmp/cfg") && log.contains("Dockerfile:2"),
        "{log}"
    );
    assert!(!log.contains("discarded"), "{log}");
    // The final stage is built FROM the builder.
    let from = format!("{BUILDER}FROM builder AS final\nRUN rm /tmp/cfg\n");
    let (code, log) = e.build(&from, &["-t", "bad"]);
    assert_eq!(code, Some(3), "{log}");
    assert!(log.contains("stage \"builder\""), "{log}");
    assert!(!e.hush(&["inspect", "bad"]).status.success());
    assert_eq!(e.secret_files(), Vec::<PathBuf>::new());
}

#[test]
fn no_tainted_snapshot_survives_an_error_or_a_kill() {
    if !common::can_run(&["busybox"]) {
        return;
    }
    let e = Env::new();
    // A step after the tainted one fails.
    let failing =
        format!("{BUILDER}RUN exit 7\nFROM busybox:local\nCOPY --from=builder /artifact /a\n");
    let (code, log) = e.build(&failing, &[]);
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("discarded") && log.contains("exit code: 7"),
        "{log}"
    );
    assert_eq!(e.secret_files(), Vec::<PathBuf>::new());

    // Ctrl-C while the tainted layer is held: the build unwinds and removes it.
    let slow = format!("{BUILDER}{SLOW}FROM busybox:local\nCOPY --from=builder /artifact /a\n");
    let (child, log) = e.spawn_until_running(&slow);
    // SAFETY: kill(2) on the pid of a child not yet waited for.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let status = child.wait_with_output().unwrap().status;
    assert_eq!(status.code(), Some(130), "{}", log.join().unwrap());
    assert_eq!(e.secret_files(), Vec::<PathBuf>::new());

    // hush is killed while the tainted layer is held; the next command sweeps it.
    let (mut child, log) = e.spawn_until_running(&slow);
    child.kill().unwrap();
    child.wait().unwrap();
    log.join().unwrap();
    let held = e.secret_files();
    assert!(
        !held.is_empty() && held.iter().all(|p| p.starts_with(e.root().join("tmp"))),
        "while the build ran the secret was only in its work dir: {held:?}"
    );
    let o = e.hush(&["images"]);
    assert!(o.status.success(), "{}", common::log(&o));
    assert_eq!(e.secret_files(), Vec::<PathBuf>::new());
    assert!(e.tainted_dirs().is_empty());
}

/// A cached layer that holds this build's secret (made by a `--leak-check=warn` build) is not
/// taken in a stage that reaches no output: the step runs again and its layer is discarded.
#[test]
fn a_cached_layer_holding_the_secret_is_rebuilt_in_a_builder_stage() {
    if !common::can_run(&["busybox"]) {
        return;
    }
    let e = Env::new();
    let df = format!("{BUILDER}FROM busybox:local\nCOPY --from=builder /artifact /a\n");
    let (code, log) = e.build(&df, &["--leak-check=warn"]);
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("discarded"), "warn keeps its meaning: {log}");
    let (code, log) = e.build(&df, &[]);
    assert_eq!(code, Some(0), "{log}");
    assert!(!was_cached(&log, "cat /run/secrets/s"), "{log}");
    assert!(log.contains("discarded"), "{log}");
}
