//! Helpers shared by the end-to-end test binaries.
#![allow(dead_code)] // each test binary uses a different subset

pub mod dockerd;
pub mod http;
pub mod registry;
pub mod sshd;
pub mod token;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The hush binary under test (`HUSH_BIN`, else the one cargo built).
pub fn hush() -> PathBuf {
    std::env::var_os("HUSH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_hush")))
}

/// Is `cmd` on PATH?
pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A test that cannot meet a precondition (`why`) is skipped, saying so — except under CI
/// (`CI=true`, as GitHub Actions and most CI systems set it), where it fails: a CI run that
/// skipped the end-to-end tests would pass without testing anything.
pub fn skip(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true, and this test cannot run: {why}");
    }
    eprintln!("SKIP: {why}");
}

/// Root and the listed tools are there; otherwise [`skip`] says why the test cannot run.
pub fn can_run(tools: &[&str]) -> bool {
    let root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    let missing: Vec<&&str> = tools
        .iter()
        .filter(|t| !(have(t) || Path::new(t).exists()))
        .collect();
    if !root || !missing.is_empty() {
        skip(&format!(
            "needs root and {tools:?} (missing: {missing:?}, root: {root})"
        ));
    }
    root && missing.is_empty()
}

/// stdout and stderr together.
pub fn log(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Make a busybox rootfs tarball with the project's script.
pub fn busybox_tar(out: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/make-busybox-rootfs.sh");
    assert!(Command::new("bash")
        .arg(script)
        .arg(out)
        .status()
        .unwrap()
        .success());
}

/// The busybox rootfs tarball, made once per test binary (its tests share it; a test that
/// imports it copies it into a store of its own).
pub fn shared_busybox_tar() -> &'static Path {
    static TAR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    TAR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        // One file per test binary, made again by its next run.
        let exe = std::env::current_exe().unwrap();
        let name = exe.file_stem().unwrap().to_string_lossy();
        let tar = dir.join(format!("busybox-{name}.tar"));
        busybox_tar(&tar);
        tar
    })
}

/// One directory for all the tests of this binary whose `root/` is a hush store holding
/// `busybox:local`; under cargo's target dir, emptied when the binary starts (a static has no
/// drop: it outlives the tests, but not the next run).
pub fn shared_store() -> &'static Path {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let name = exe.file_stem().unwrap().to_string_lossy().into_owned();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("store-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let tar = shared_busybox_tar().to_str().unwrap();
        let o = run_in(&dir.join("root"), &["import", tar, "busybox:local"], &dir);
        assert!(o.status.success(), "{}", log(&o));
        dir
    })
}

/// A temporary directory named `prefix…` whose `root/` is a hush store holding `busybox:local`.
pub fn busybox_store(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    let tar = shared_busybox_tar().to_str().unwrap();
    let o = run_in(
        &dir.path().join("root"),
        &["import", tar, "busybox:local"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", log(&o));
    dir
}

/// Run `job(0..n)` on `n` threads while `looped` runs again and again on another (after `pause`
/// each time) until they are all done: the jobs' results, and every run of `looped`.
pub fn while_looping<T: Send>(
    n: usize,
    job: impl Fn(usize) -> T + Sync,
    pause: std::time::Duration,
    looped: impl Fn() -> Output + Sync,
) -> (Vec<T>, Vec<Output>) {
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let looper = s.spawn(|| {
            let mut outs = Vec::new();
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                std::thread::sleep(pause);
                outs.push(looped());
            }
            outs
        });
        let job = &job;
        let jobs: Vec<_> = (0..n).map(|i| s.spawn(move || job(i))).collect();
        let results = jobs.into_iter().map(|j| j.join().unwrap()).collect();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        (results, looper.join().unwrap())
    })
}

/// Run hush with `HUSH_ROOT=root` in `dir`.
pub fn run_in(root: &Path, args: &[&str], dir: &Path) -> Output {
    Command::new(hush())
        .env("HUSH_ROOT", root)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

/// Compile `tests/<src>` (a C file) into `dir`, named after it, with `flags`.
pub fn compile(src: &str, dir: &Path, flags: &[&str]) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(src);
    let out = dir.join(src.file_stem().expect("a file name"));
    let o = Command::new("gcc")
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .output()
        .unwrap();
    assert!(o.status.success(), "gcc {}: {}", src.display(), log(&o));
    out
}

/// Every file under `dir` holding `needle` (a grep of a store for a credential).
pub fn files_holding(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            std::fs::read(e.path())
                .map(|b| b.windows(needle.len()).any(|w| w == needle))
                .unwrap_or(false)
        })
        .map(|e| e.path().to_path_buf())
        .collect()
}

/// `umoci unpack` of `layout:latest` into `bundle` (an independent reader): its rootfs.
pub fn umoci_unpack(layout: &Path, bundle: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(bundle);
    let u = Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:latest", layout.display()))
        .arg(bundle)
        .output()
        .unwrap();
    assert!(u.status.success(), "umoci: {}", log(&u));
    bundle.join("rootfs")
}

/// Wait (at most 2 s) until something listens on 127.0.0.1:`port`.
pub fn wait_for_port(port: u16) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
