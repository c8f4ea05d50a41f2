//! The store against local users, concurrent prunes and crashes, and signals while hush waits
//! (issue 10, rows 8–12 and 17). Each test is the attack or the accident, as root with a store of
//! its own in a directory that other users may traverse (as `/var/lib` is).

mod common;
use common::{hush, log, run_in};

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn can_run() -> bool {
    common::can_run(&["busybox", "setpriv"])
}

/// The busybox rootfs tarball, made once per run.
fn busybox() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hush-security-store");
        std::fs::create_dir_all(&dir).unwrap();
        let tar = dir.join("busybox.tar");
        common::busybox_tar(&tar);
        tar
    })
}

/// A store with busybox:local, in a directory other users can traverse (0755, like /var/lib),
/// made by hush itself.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("hush-sec-store-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = Env { dir };
        let o = e.hush(&["import", busybox().to_str().unwrap(), "busybox:local"]);
        assert!(o.status.success(), "{}", log(&o));
        e
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn hush(&self, args: &[&str]) -> Output {
        run_in(&self.root(), args, self.dir.path())
    }

    /// Start hush; its stdin is a pipe nobody writes to (kept open with the `Child`).
    fn spawn(&self, args: &[&str]) -> Child {
        Command::new(hush())
            .env("HUSH_ROOT", self.root())
            .current_dir(self.dir.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// A build context `name` with this Dockerfile (and `files`).
    fn ctx(&self, name: &str, dockerfile: &str) -> PathBuf {
        let c = self.dir.path().join(name);
        std::fs::create_dir_all(&c).unwrap();
        std::fs::write(c.join("Dockerfile"), dockerfile).unwrap();
        c
    }

    fn build(&self, ctx: &Path, tag: &str) -> Output {
        self.hush(&[
            "build",
            "--progress=plain",
            "-t",
            tag,
            ctx.to_str().unwrap(),
        ])
    }

    /// Everything under `tmp/` (the store's work dirs), as paths.
    fn tmp_entries(&self) -> Vec<PathBuf> {
        walk(&self.root().join("tmp"))
    }

    fn mounts(&self) -> Vec<String> {
        let root = self.root().display().to_string();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(&root))
            .map(String::from)
            .collect()
    }
}

impl Drop for Env {
    /// A test that failed half-way may leave a killed hush's mounts: the sweep of a prune removes
    /// them, so that the temp dir can go.
    fn drop(&mut self) {
        let _ = self.hush(&["prune"]);
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            out.push(p.clone());
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.extend(walk(&p));
            }
        }
    }
    out
}

/// Run a shell command as `nobody` (uid/gid 65534, no groups).
fn as_nobody(script: &str) -> Output {
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
        ])
        .arg(script)
        .output()
        .unwrap()
}

fn denied(o: &Output) -> bool {
    !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("Permission denied")
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: &str) {
    let s = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(s.success());
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Row 9: a setuid-root binary in an image and a 0600 file in a loaded image are not reachable
/// through the store by another user. (The host's `id` is the setuid file: run from the snapshot
/// path, it uses the host's libraries; busybox would drop the privilege by itself.)
#[test]
fn nobody_cannot_exec_setuid_files_of_snapshots_nor_read_blobs() {
    if !can_run() {
        return;
    }
    let e = Env::new();
    let c = e.ctx(
        "suid",
        "FROM busybox:local\nCOPY id /bin/rootid\nRUN chmod 4755 /bin/rootid && echo topsecret-9 > /secret && chmod 600 /secret\n",
    );
    std::fs::copy("/usr/bin/id", c.join("id")).unwrap();
    let o = e.build(&c, "suid");
    assert!(o.status.success(), "{}", log(&o));
    // A loaded image keeps its layers as blobs: save it and load it back.
    let tar = e.dir.path().join("suid.tar");
    let o = e.hush(&["save", "suid", "-o", tar.to_str().unwrap()]);
    assert!(o.status.success(), "{}", log(&o));
    for args in [
        &["rmi", "suid"][..],
        &["prune", "-a"],
        &["load", "-i", tar.to_str().unwrap()],
    ] {
        let o = e.hush(args);
        assert!(o.status.success(), "{args:?}: {}", log(&o));
    }
    let rootid = walk(&e.root().join("snapshots"))
        .into_iter()
        .find(|p| p.ends_with("bin/rootid") && mode(p) == 0o4755)
        .expect("the setuid copy is in a snapshot");
    let blob = walk(&e.root().join("blobs"))
        .into_iter()
        .find(|p| {
            Command::new("tar")
                .arg("-xOf")
                .arg(p)
                .arg("secret")
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("topsecret-9"))
        })
        .expect("the layer with the 0600 file is a blob");

    let o = as_nobody(&rootid.display().to_string());
    assert!(
        denied(&o),
        "nobody ran a setuid-root file of the store: {}",
        log(&o)
    );
    let o = as_nobody(&format!("tar -xOf {} secret", blob.display()));
    assert!(
        denied(&o),
        "nobody read a 0600 file of an image: {}",
        log(&o)
    );
    let o = as_nobody(&format!("ls {}/snapshots", e.root().display()));
    assert!(denied(&o), "nobody listed the snapshots: {}", log(&o));
    assert_eq!(mode(&e.root()), 0o700);
    assert_eq!(mode(&blob), 0o600);
}

/// Row 9: a store made by an older hush (0755) is tightened when opened; a store root that
/// another user owns is refused, naming the path and what to do.
#[test]
fn an_open_store_is_tightened_and_a_foreign_one_refused() {
    if !can_run() {
        return;
    }
    let e = Env::new();
    for d in ["", "snapshots", "blobs", "tmp"] {
        std::fs::set_permissions(e.root().join(d), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let o = e.hush(&["images"]);
    assert!(o.status.success(), "{}", log(&o));
    for d in ["", "snapshots", "blobs", "tmp"] {
        assert_eq!(mode(&e.root().join(d)), 0o700, "{d:?} was not tightened");
    }

    std::os::unix::fs::chown(e.root(), Some(65534), Some(65534)).unwrap();
    let o = e.hush(&["images"]);
    std::os::unix::fs::chown(e.root(), Some(0), Some(0)).unwrap();
    let l = log(&o);
    assert_eq!(o.status.code(), Some(1), "{l}");
    assert!(l.contains(&e.root().display().to_string()), "{l}");
    assert!(
        l.contains("belongs to uid 65534") && l.contains("chown"),
        "{l}"
    );
}

/// Row 10: "copy the secret, use it, rm it in the same RUN": while the RUN runs, its upper and
/// merged dirs are not readable by another user.
#[test]
fn a_running_step_is_not_readable_by_other_users() {
    if !can_run() {
        return;
    }
    let e = Env::new();
    let c = e.ctx(
        "run",
        "FROM busybox:local\nRUN echo topsecret-10 > /marker && sleep 3 && rm /marker\n",
    );
    let child = e.spawn(&["build", "--progress=plain", c.to_str().unwrap()]);
    let mut upper = None;
    wait_for("the RUN's marker file", Duration::from_secs(20), || {
        upper = e
            .tmp_entries()
            .into_iter()
            .find(|p| p.ends_with("upper/marker"));
        upper.is_some()
    });
    let upper = upper.unwrap();
    // The merged view is mounted in the build's own mount namespace: reach it through the
    // build's root, as another user would have to.
    let merged = PathBuf::from(format!("/proc/{}/root", child.id())).join(
        upper
            .parent()
            .unwrap()
            .with_file_name("merged")
            .join("marker")
            .strip_prefix("/")
            .unwrap(),
    );
    assert!(std::fs::read_to_string(&merged)
        .unwrap()
        .contains("topsecret-10"));
    for p in [&upper, &merged] {
        let o = as_nobody(&format!("cat {}", p.display()));
        assert!(denied(&o), "nobody read {}: {}", p.display(), log(&o));
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", log(&o));
}

/// Row 11: `RUN --mount=type=cache` directories are private to the store's owner and
/// `prune --all` removes them.
#[test]
fn cache_mounts_are_private_and_pruned() {
    if !can_run() {
        return;
    }
    let e = Env::new();
    let c = e.ctx(
        "cache",
        "FROM busybox:local\nRUN --mount=type=cache,target=/c echo topsecret-11 > /c/token\n",
    );
    let o = e.build(&c, "cache");
    assert!(o.status.success(), "{}", log(&o));
    let token = walk(&e.root())
        .into_iter()
        .find(|p| p.ends_with("token"))
        .expect("the cache mount's file is in the store");
    let o = as_nobody(&format!("cat {}", token.display()));
    assert!(denied(&o), "nobody read a cache mount: {}", log(&o));

    let o = e.hush(&["prune", "-a"]);
    assert!(o.status.success(), "{}", log(&o));
    assert!(!token.exists(), "prune -a left the cache mount");
    let c = e.ctx(
        "cache2",
        "FROM busybox:local\nRUN --mount=type=cache,target=/c test ! -e /c/token\n",
    );
    let o = e.build(&c, "cache2");
    assert!(o.status.success(), "the cache came back: {}", log(&o));
}

/// Row 12: builds and a `prune -a` loop on one store. Every build succeeds (a prune waits for
/// running builds) and every tagged image has all its blobs and snapshots (`save` reads and
/// re-verifies each).
#[test]
fn prune_during_builds_never_leaves_an_image_without_its_layers() {
    if !can_run() {
        return;
    }
    let e = Env::new();
    let ctxs: Vec<PathBuf> = (0..8)
        .map(|i| {
            let c = e.ctx(
                &format!("b{i}"),
                &format!(
                    "FROM busybox:local\nRUN echo shared > /shared\nRUN echo {} > /half && dd if=/dev/urandom of=/big bs=64k count=8 2>/dev/null\nCOPY Dockerfile /b{i}\n",
                    i % 2
                ),
            );
            std::fs::write(c.join("payload"), format!("{i}")).unwrap();
            c
        })
        .collect();
    let (builds, prunes) = common::while_looping(
        ctxs.len(),
        |i| {
            // Staggered, so that prunes fall between builds as well as wait for them.
            std::thread::sleep(Duration::from_millis(200 * i as u64));
            e.build(&ctxs[i], &format!("img{i}"))
        },
        Duration::ZERO,
        || e.hush(&["prune", "-a"]),
    );
    assert!(prunes.len() > 1, "the prune loop ran during the builds");
    for p in &prunes {
        assert!(p.status.success(), "prune failed: {}", log(p));
    }
    for (i, b) in builds.iter().enumerate() {
        assert!(b.status.success(), "build {i} failed: {}", log(b));
    }
    // One more prune after the builds: tagged images must survive it too.
    let o = e.hush(&["prune", "-a"]);
    assert!(o.status.success(), "{}", log(&o));
    let images = String::from_utf8_lossy(&e.hush(&["images"]).stdout).to_string();
    for i in 0..8 {
        let name = format!("img{i}");
        assert!(images.contains(&name), "{name} missing: {images}");
        let out = e.dir.path().join(format!("{name}.tar"));
        let o = e.hush(&["save", &name, "-o", out.to_str().unwrap()]);
        assert!(o.status.success(), "{name} lost a layer: {}", log(&o));
    }
}

/// Start `args`, wait until `ready` holds, `kill -9` it; then the next commands clean up after
/// it: `images`, `prune` and a rebuild succeed, and nothing is left in `tmp/` or mounted.
fn killed_then_cleaned(e: &Env, args: &[&str], what: &str, ready: impl FnMut() -> bool) {
    let mut child = e.spawn(args);
    wait_for(what, Duration::from_secs(30), ready);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !e.tmp_entries().is_empty(),
        "the killed hush left nothing: no test"
    );

    let o = e.hush(&["images"]);
    assert!(o.status.success(), "{}", log(&o));
    assert!(
        e.tmp_entries().is_empty(),
        "the next command did not clean up: {:?}\n{}",
        e.tmp_entries(),
        log(&o)
    );
    assert!(e.mounts().is_empty(), "{:?}", e.mounts());
    let o = e.hush(&["prune"]);
    assert!(o.status.success(), "{}", log(&o));
    let c = e.ctx("again", "FROM busybox:local\nRUN echo again > /again\n");
    let o = e.build(&c, "again");
    assert!(o.status.success(), "{}", log(&o));
    assert!(e.tmp_entries().is_empty(), "{:?}", e.tmp_entries());
}

/// Row 8: `kill -9` while a RUN runs.
#[test]
fn kill_9_during_a_run_is_cleaned_up_by_the_next_command() {
    if !can_run() {
        return;
    }
    let e = Env::new();
    let c = e.ctx(
        "run",
        "FROM busybox:local\nRUN touch /started && sleep 30\n",
    );
    killed_then_cleaned(
        &e,
        &["build", "--progress=plain", c.to_str().unwrap()],
        "the RUN to start",
        || e.tmp_entries().iter().any(|p| p.ends_with("upper/started")),
    );
}

/// Row 8: `kill -9` of hush and its container helper (as when a service manager kills the
/// group): the container's cgroups, named per run, are removed by the next command.
#[test]
fn kill_9_of_hush_and_its_helper_leaves_no_cgroup_behind() {
    if !can_run() {
        return;
    }
    let e = Env::new();
    let c = e.ctx("run", "FROM busybox:local\nRUN touch /started && sleep 2\n");
    let mut child = Command::new(hush())
        .env("HUSH_ROOT", e.root())
        .args(["build", "--progress=plain", c.to_str().unwrap()])
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the RUN to start", Duration::from_secs(20), || {
        e.tmp_entries().iter().any(|p| p.ends_with("upper/started"))
    });
    let pid = child.id();
    // The helper may be a child of any of hush's threads.
    let mut pids: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .map(|t| std::fs::read_to_string(t.path().join("children")).unwrap_or_default())
        .collect::<Vec<String>>()
        .join(" ")
        .split_whitespace()
        .map(String::from)
        .collect();
    pids.push(pid.to_string());
    let ours = || -> Vec<PathBuf> {
        walk_depth(Path::new("/sys/fs/cgroup"), 3)
            .into_iter()
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy();
                pids.iter()
                    .any(|pid| n.starts_with(&format!("hush-{pid}-")))
            })
            .collect()
    };
    // While its helper lives, no hush removes the run's cgroups (a concurrent test's hush may
    // once it is dead).
    assert!(
        !ours().is_empty(),
        "the run has no cgroup named after it: no test"
    );
    assert!(Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .status()
        .unwrap()
        .success());
    child.wait().unwrap();
    // The container's own `sleep 2` ends by itself.
    std::thread::sleep(Duration::from_secs(3));
    let o = e.hush(&["images"]);
    assert!(o.status.success(), "{}", log(&o));
    assert!(ours().is_empty(), "stale cgroups: {:?}", ours());
    assert!(e.tmp_entries().is_empty(), "{:?}", e.tmp_entries());
}

/// Directories down to `depth` levels under `dir`.
fn walk_depth(dir: &Path, depth: usize) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if depth == 0 {
        return out;
    }
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.push(e.path());
            out.extend(walk_depth(&e.path(), depth - 1));
        }
    }
    out
}

/// Row 8: `kill -9` while a COPY of a big tree runs.
#[test]
fn kill_9_during_a_copy_is_cleaned_up_by_the_next_command() {
    if !can_run() {
        return;
    }
    let e = Env::new();
    let c = e.ctx("copy", "FROM busybox:local\nCOPY tree /tree\n");
    for d in 0..40 {
        let dir = c.join(format!("tree/d{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..500 {
            std::fs::write(dir.join(format!("f{f}")), format!("{d}/{f}")).unwrap();
        }
    }
    killed_then_cleaned(
        &e,
        &["build", "--progress=plain", c.to_str().unwrap()],
        "the COPY to start",
        || e.tmp_entries().iter().any(|p| p.ends_with("tree/d0")),
    );
}

/// Row 8: `kill -9` during an OCI export (its layout is assembled under `tmp/` first).
#[test]
fn kill_9_during_an_oci_export_is_cleaned_up_by_the_next_command() {
    if !can_run() {
        return;
    }
    let e = Env::new();
    let c = e.ctx(
        "big",
        "FROM busybox:local\nRUN dd if=/dev/urandom of=/big bs=1M count=128 2>/dev/null\n",
    );
    let o = e.build(&c, "big");
    assert!(o.status.success(), "{}", log(&o));
    let dest = format!(
        "type=oci,dest={},compression=gzip",
        e.dir.path().join("big.tar").display()
    );
    killed_then_cleaned(
        &e,
        &["build", "-o", &dest, c.to_str().unwrap()],
        "the export to start",
        || {
            e.tmp_entries()
                .iter()
                .any(|p| p.to_string_lossy().contains("oci-out-"))
        },
    );
}

/// Row 8: a killed command's work dir with a mount still in use (a process has its cwd there):
/// `prune` succeeds and reports it, instead of failing with EBUSY; once the mount is free, the
/// next command removes it.
#[test]
fn prune_skips_and_reports_a_busy_leftover() {
    if !can_run() {
        return;
    }
    let e = Env::new();
    let left = e.root().join("tmp/step-999999-0123456789abcdef");
    let bundle = left.join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    // A process that no longer exists (pid_max is at most 2^22).
    std::fs::write(left.join("owner"), "4999999 1\n").unwrap();
    let mount = |args: &[&str]| {
        assert!(Command::new(args[0])
            .args(&args[1..])
            .status()
            .unwrap()
            .success())
    };
    mount(&["mount", "-t", "tmpfs", "tmpfs", bundle.to_str().unwrap()]);
    let mut busy = Command::new("sleep")
        .arg("30")
        .current_dir(&bundle)
        .spawn()
        .unwrap();
    let o = e.hush(&["prune"]);
    let l = log(&o);
    busy.kill().unwrap();
    busy.wait().unwrap();
    let held = left.exists();
    if !held {
        // Detached lazily by a hush that should not have: clean up for the next test.
        let _ = Command::new("umount").arg("-l").arg(&bundle).status();
    }
    assert!(o.status.success(), "prune failed on a busy leftover: {l}");
    assert!(
        held,
        "a busy mount was detached and the tree under it deleted: {l}"
    );
    assert!(
        l.contains(&left.display().to_string()) && l.contains("warning"),
        "{l}"
    );
    let o = e.hush(&["images"]);
    assert!(o.status.success(), "{}", log(&o));
    assert!(!left.exists(), "{}", log(&o));
    assert!(e.mounts().is_empty(), "{:?}", e.mounts());
}

/// Row 17: hush blocked in `open` of a FIFO nobody writes (or reading a Dockerfile from a silent
/// stdin) ends on SIGTERM and SIGINT within a second, with exit code 130.
#[test]
fn signals_end_a_wait_for_a_secret_fifo() {
    if !can_run() || !common::have("mkfifo") {
        return;
    }
    let e = Env::new();
    let fifo = e.dir.path().join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let c = e.ctx(
        "s",
        "FROM busybox:local\nRUN --mount=type=secret,id=s cat /run/secrets/s\n",
    );
    let secret = format!("id=s,src={}", fifo.display());
    let cases: [(&str, Vec<&str>); 4] = [
        (
            "build",
            vec!["build", "--secret", &secret, c.to_str().unwrap()],
        ),
        ("audit", vec!["audit", "busybox:local", "--secret", &secret]),
        (
            "build -f - (stdin)",
            vec!["build", "-f", "-", c.to_str().unwrap()],
        ),
        (
            "lint -f - (stdin)",
            vec!["lint", "-f", "-", c.to_str().unwrap()],
        ),
    ];
    for (what, args) in &cases {
        for sig in ["TERM", "INT"] {
            let mut child = e.spawn(args);
            std::thread::sleep(Duration::from_millis(500));
            assert!(child.try_wait().unwrap().is_none(), "{what} did not wait");
            signal(&child, sig);
            let t = Instant::now();
            let status = loop {
                if let Some(s) = child.try_wait().unwrap() {
                    break s;
                }
                if t.elapsed() > Duration::from_millis(1500) {
                    child.kill().unwrap();
                    panic!("{what} ignored signal {sig} for 1.5 s");
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            assert_eq!(status.code(), Some(130), "{what}, signal {sig}");
        }
    }
    assert!(e.tmp_entries().is_empty(), "{:?}", e.tmp_entries());
}

/// Row 17: a prune waiting for a build says so once, and Ctrl-C ends the wait.
#[test]
fn a_prune_waiting_for_a_build_says_so_and_ends_on_ctrl_c() {
    if !can_run() {
        return;
    }
    let e = Env::new();
    let c = e.ctx(
        "slow",
        "FROM busybox:local\nRUN touch /started && sleep 4\n",
    );
    let build = e.spawn(&["build", "--progress=plain", c.to_str().unwrap()]);
    wait_for("the RUN to start", Duration::from_secs(20), || {
        e.tmp_entries().iter().any(|p| p.ends_with("upper/started"))
    });
    let mut prune = e.spawn(&["prune", "-a"]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        prune.try_wait().unwrap().is_none(),
        "prune did not wait for the build"
    );
    signal(&prune, "INT");
    let o = prune.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", log(&o));
    let l = log(&o);
    assert_eq!(l.matches("waiting for").count(), 1, "{l}");
    let o = build.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", log(&o));
}
