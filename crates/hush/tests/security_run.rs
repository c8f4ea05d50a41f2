//! A RUN step is an attacker: each test here is an attack a Dockerfile made on the host, and
//! asserts that it fails (issue 10, rows 1–4, 6–8). Needs root, gcc and a static libc to build
//! the attack programs; skipped with a message otherwise.

mod common;
use common::{hush, log, run_in};

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn can_run() -> bool {
    common::can_run(&["busybox", "gcc"])
}

/// A store with busybox:local, of its own.
fn store() -> tempfile::TempDir {
    common::busybox_store("hush-sec-run-")
}

/// Compile one of `tests/attacks/*.c` into `dir` with `flags`.
fn compile(name: &str, dir: &Path, flags: &[&str]) -> PathBuf {
    common::compile(&format!("attacks/{name}.c"), dir, flags)
}

fn context(dockerfile: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("Dockerfile"), dockerfile).unwrap();
    d
}

fn build(root: &Path, ctx: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["build", "--progress=plain", "--no-cache"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    run_in(root, &args, ctx)
}

/// The value of the first `KEY=value` line a RUN printed (`#N KEY=value` in the plain log).
fn probe_value<'a>(log: &'a str, key: &str) -> Option<&'a str> {
    log.lines()
        .filter_map(|l| l.strip_prefix('#')?.split_once(' '))
        .find_map(|(_, rest)| rest.strip_prefix(&format!("{key}=")))
        .map(str::trim)
}

/// Processes whose command line holds `token`.
fn processes_with(token: &str) -> Vec<u32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            if String::from_utf8_lossy(&c).contains(token) {
                v.push(pid);
            }
        }
    }
    v
}

fn mounts_under(dir: &Path) -> Vec<String> {
    let d = dir.to_string_lossy().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&d))
        .map(str::to_string)
        .collect()
}

/// The cgroup directories of containers started by `pid`.
fn cgroups_of(pid: u32) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for ctl in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        for c in std::fs::read_dir(ctl.path().join("hush"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if c.file_name()
                .to_string_lossy()
                .starts_with(&format!("hush-{pid}-"))
            {
                v.push(c.path());
            }
        }
    }
    v
}

/// Kills a process group when a test ends, passed or not.
struct KillGroupOnDrop(i32);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
        unsafe { libc::kill(-self.0, libc::SIGKILL) };
    }
}

/// Row 1 (CVE-2019-5736) and row 8: the image ships its own dynamic linker, the RUN executes a
/// `#!/proc/self/exe` script, keeps a descriptor to whatever binary that is, and tries to write
/// it once no process runs it — after hush's whole process group is killed with SIGKILL, as CI's
/// `timeout -s KILL` does. The binary (a copy, here) must be unchanged, and the container, its
/// mounts and its cgroups must be gone with hush.
#[test]
fn a_run_cannot_overwrite_hush_even_after_hush_is_killed() {
    if !can_run() {
        return;
    }
    let s = store();
    let root = s.path().join("root");
    let ctx = context(
        "FROM busybox:local\n\
         COPY evil_interp /lib64/ld-linux-x86-64.so.2\n\
         COPY --chmod=755 attack /attack\n\
         RUN [\"/attack\"]\n",
    );
    compile(
        "evil_interp",
        ctx.path(),
        &[
            "-static",
            "-nostdlib",
            "-fno-stack-protector",
            "-fno-pic",
            "-no-pie",
            "-O1",
        ],
    );
    std::fs::write(ctx.path().join("attack"), "#!/proc/self/exe\n").unwrap();
    // A copy of hush: the attack, were it to work, would ruin the binary it ran from.
    let copy = s.path().join("hush-copy");
    std::fs::copy(hush(), &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();

    let mut child = Command::new(&copy)
        .env("HUSH_ROOT", &root)
        .args(["build", "--progress=plain", "--no-cache"])
        .arg(ctx.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let hush_pid = child.id();
    let _reaper = KillGroupOnDrop(hush_pid as i32);
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("attack-ran")) {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(l) => seen.push(l),
            Err(_) => panic!("the attack never ran:\n{}", seen.join("\n")),
        }
    }
    assert!(
        seen.iter().any(|l| l.contains("evil-interp: exe=")),
        "the interpreter did not start:\n{}",
        seen.join("\n")
    );
    // The exe the container reaches is a read-only mount of the binary (or a sealed copy in
    // memory), never the file as hush was started.
    let exe_line = seen.iter().find(|l| l.contains("exe=")).unwrap();
    assert!(!exe_line.contains("hush-copy"), "{exe_line}");
    assert!(!cgroups_of(hush_pid).is_empty(), "no cgroup for the RUN");

    // SIGKILL to hush's whole process group.
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
    unsafe { libc::kill(-(hush_pid as i32), libc::SIGKILL) };
    let _ = child.wait();
    // The attacker's loop tries for ten seconds; the container must be gone within two.
    let gone = Instant::now() + Duration::from_secs(5);
    while !processes_with("4711").is_empty() && Instant::now() < gone {
        std::thread::sleep(Duration::from_millis(100));
    }
    let left = processes_with("sleep 4711");
    for p in &left {
        // SAFETY: as above; cleans up after a failing run.
        unsafe { libc::kill(*p as i32, libc::SIGKILL) };
    }
    assert!(left.is_empty(), "the container outlived hush: {left:?}");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        before,
        "the RUN overwrote hush's binary"
    );
    assert_eq!(mounts_under(&root), Vec::<String>::new());
    let cg = Instant::now() + Duration::from_secs(5);
    while !cgroups_of(hush_pid).is_empty() && Instant::now() < cg {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(cgroups_of(hush_pid), Vec::<PathBuf>::new());
}

/// Row 2: `mknod` of the host's disk, then read it. CAP_MKNOD stays (docker keeps it), so the
/// node can be made; the device rules must refuse to open it.
#[test]
fn a_run_cannot_read_a_host_disk_through_mknod() {
    if !can_run() {
        return;
    }
    let s = store();
    let dev = std::fs::metadata("/").unwrap().dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let ctx = context(&format!(
        "FROM busybox:local\n\
         RUN mknod /tmp/disk b {major} {minor} && echo made-node; \
             mknod /tmp/mem c 1 1; \
             if head -c 512 /tmp/disk > /dev/null; then echo disk=read; else echo disk=refused; fi; \
             if head -c 16 /tmp/mem > /dev/null; then echo mem=read; else echo mem=refused; fi; \
             echo zero=$(head -c 4 /dev/zero | wc -c); echo ok > /dev/null && echo null-ok; \
             rm -f /tmp/disk /tmp/mem\n"
    ));
    let o = build(&s.path().join("root"), ctx.path(), &[]);
    let l = log(&o);
    assert!(o.status.success(), "{l}");
    assert!(l.contains("made-node"), "{l}");
    assert_eq!(probe_value(&l, "disk"), Some("refused"), "{l}");
    assert_eq!(probe_value(&l, "mem"), Some("refused"), "{l}");
    // The devices a process expects still work.
    assert!(l.contains("null-ok"), "{l}");
    assert_eq!(probe_value(&l, "zero"), Some("4"), "{l}");
}

/// Rows 3 and 4: the host's kernel keyring, new user and mount namespaces (where most kernel
/// exploits start), `mount`, vsock: refused as under docker's seccomp policy, for root (whose
/// filter hush compiles once per build) and for another user (whose filter libcontainer loads,
/// without `no_new_privs`, so that `sudo` still works); ordinary process creation still works
/// (clone3 answers ENOSYS so that libc falls back to clone).
#[test]
fn a_run_cannot_reach_the_keyring_or_make_namespaces() {
    if !can_run() {
        return;
    }
    let s = store();
    let ctx = context(
        "FROM busybox:local\nCOPY probe /probe\n\
         RUN /probe | sed s/^/root-/; grep -E 'NoNewPrivs|Seccomp:' /proc/self/status | sed s/^/root-/\n\
         USER 65534\n\
         RUN /probe | sed s/^/user-/; grep -E 'NoNewPrivs|Seccomp:' /proc/self/status | sed s/^/user-/\n",
    );
    compile("probe", ctx.path(), &["-static", "-O1"]);
    let o = build(&s.path().join("root"), ctx.path(), &[]);
    let l = log(&o);
    assert!(o.status.success(), "{l}");
    for who in ["root", "user"] {
        for (k, want) in [
            ("keyctl", "EPERM"),
            ("add_key", "EPERM"),
            ("request_key", "EPERM"),
            ("unshare_user", "EPERM"),
            ("unshare_mount", "EPERM"),
            ("clone_newuser", "EPERM"),
            ("clone3", "ENOSYS"),
            ("fork", "ok"),
            ("mount", "EPERM"),
            ("personality_other", "EPERM"),
            ("socket_vsock", "EPERM"),
        ] {
            assert_eq!(
                probe_value(&l, &format!("{who}-{k}")),
                Some(want),
                "{who} {k}:\n{l}"
            );
        }
    }
    assert!(
        l.contains("root-Seccomp:\t2") && l.contains("user-Seccomp:\t2"),
        "{l}"
    );
    assert!(
        l.contains("user-NoNewPrivs:\t0"),
        "sudo must keep working:\n{l}"
    );
}

/// Row 7 and docker's capability sets: root holds docker's default set, nothing inheritable or
/// ambient; after `USER` another user holds nothing effective, permitted, inheritable or ambient.
/// On the private network (pasta) NET_RAW goes too: raw frames could reach the host's loopback
/// through pasta (see `hush_sandbox::network`).
#[test]
fn capabilities_are_dockers_and_a_user_holds_none() {
    if !can_run() {
        return;
    }
    let s = store();
    let ctx = context(
        "FROM busybox:local\n\
         RUN grep -E '^Cap' /proc/self/status | sed 's/^/root-/'\n\
         USER 65534:65534\n\
         RUN grep -E '^Cap' /proc/self/status | sed 's/^/user-/'\n",
    );
    let o = build(&s.path().join("root"), ctx.path(), &["--network=none"]);
    let l = log(&o);
    assert!(o.status.success(), "{l}");
    let cap = |l: &str, who: &str, set: &str| {
        l.lines()
            .find_map(|x| x.split_once(&format!("{who}-Cap{set}:")))
            .map(|(_, v)| u64::from_str_radix(v.trim(), 16).unwrap())
            .unwrap_or_else(|| panic!("no {who} {set} in\n{l}"))
    };
    let private = log(&build(&s.path().join("root"), ctx.path(), &[]));
    // chown dac_override fowner fsetid kill setgid setuid setpcap net_bind_service net_raw
    // sys_chroot mknod audit_write setfcap: docker's default set.
    let docker: u64 = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31]
        .iter()
        .map(|b| 1u64 << b)
        .sum();
    assert_eq!(cap(&l, "root", "Bnd"), docker);
    assert_eq!(cap(&l, "root", "Eff"), docker);
    assert_eq!(cap(&l, "root", "Inh"), 0);
    assert_eq!(cap(&l, "root", "Amb"), 0);
    assert_eq!(cap(&l, "user", "Bnd"), docker);
    let no_raw = docker & !(1 << 13);
    assert_eq!(cap(&private, "root", "Bnd"), no_raw, "{private}");
    assert_eq!(cap(&private, "root", "Eff"), no_raw, "{private}");
    for set in ["Eff", "Prm", "Inh", "Amb"] {
        assert_eq!(cap(&l, "user", set), 0, "user {set}");
        assert_eq!(cap(&private, "user", set), 0, "user {set}");
    }
}

/// Row 6: a fork bomb stops at the pids limit (`--pids-limit`, 4096 by default) and a memory hog
/// at `--memory`; `--ulimit` sets a RUN's limits. The host is not taken down, the build goes on.
#[test]
fn a_fork_bomb_and_a_memory_hog_stop_at_their_limits() {
    if !can_run() {
        return;
    }
    let s = store();
    let root = s.path().join("root");
    let ctx = context(
        "FROM busybox:local\n\
         RUN echo nofile=$(ulimit -n); ls /sys/fs/cgroup | wc -l | sed s/^/cgroupfs=/; \
             (mkdir /sys/fs/cgroup/pids/x || echo max > /sys/fs/cgroup/pids/pids.max) 2>/dev/null \
             && echo lift=done || echo lift=refused\n\
         RUN sh -c 'i=0; while [ $i -lt 300 ]; do sleep 30 & i=$((i+1)); done' 2>/dev/null; \
             set -- /proc/[0-9]*; echo procs=$#; \
             for p in /proc/[0-9]*; do p=${p#/proc/}; [ $p = $$ ] || kill $p; done 2>/dev/null; true\n\
         RUN dd if=/dev/zero of=/dev/null bs=200M count=1 2>/dev/null && echo hog=fed || echo hog=stopped\n",
    );
    let o = build(&root, ctx.path(), &[]);
    let l = log(&o);
    assert!(o.status.success(), "{l}");
    // The RUN sees no cgroup filesystem: it cannot lift its own limits.
    assert_eq!(probe_value(&l, "cgroupfs"), Some("0"), "{l}");
    assert_eq!(probe_value(&l, "lift"), Some("refused"), "{l}");
    let o = build(
        &root,
        ctx.path(),
        &[
            "--pids-limit",
            "64",
            "--memory",
            "64m",
            "--ulimit",
            "nofile=256:512",
        ],
    );
    let l = log(&o);
    assert!(o.status.success(), "{l}");
    assert_eq!(probe_value(&l, "nofile"), Some("256"), "{l}");
    let procs: u32 = probe_value(&l, "procs").unwrap().parse().unwrap();
    assert!(procs <= 64, "{procs} processes under a limit of 64:\n{l}");
    assert_eq!(probe_value(&l, "hog"), Some("stopped"), "{l}");
    let o = build(&root, ctx.path(), &["--ulimit", "nofile=9:1"]);
    assert_eq!(o.status.code(), Some(2), "{}", log(&o));
    assert!(log(&o).contains("soft limit is above the hard limit"));
}

/// docker's masked and read-only paths: the kernel's memory, keys and timers stay hidden, and
/// `/proc/sys` cannot be written.
#[test]
fn masked_and_read_only_paths_are_dockers() {
    if !can_run() {
        return;
    }
    let s = store();
    let ctx = context(
        "FROM busybox:local\n\
         RUN echo timers=$(cat /proc/timer_list | wc -c); echo keys=$(cat /proc/keys | wc -c); \
             echo firmware=$(ls /sys/firmware | wc -l); \
             (echo 1 > /proc/sys/vm/drop_caches) 2>/dev/null && echo sysctl=written || echo sysctl=refused; \
             (echo h > /proc/sysrq-trigger) 2>/dev/null && echo sysrq=written || echo sysrq=refused\n",
    );
    let o = build(&s.path().join("root"), ctx.path(), &[]);
    let l = log(&o);
    assert!(o.status.success(), "{l}");
    assert_eq!(probe_value(&l, "timers"), Some("0"), "{l}");
    assert_eq!(probe_value(&l, "keys"), Some("0"), "{l}");
    assert_eq!(probe_value(&l, "firmware"), Some("0"), "{l}");
    assert_eq!(probe_value(&l, "sysctl"), Some("refused"), "{l}");
    assert_eq!(probe_value(&l, "sysrq"), Some("refused"), "{l}");
}

/// Row 8, the last line of defence: a container whose helper was killed by hand leaves its
/// cgroup, maybe with processes in it. The next build kills them and removes the cgroup.
#[test]
fn the_next_build_reaps_what_a_dead_hush_left_in_its_cgroups() {
    if !can_run() || !Path::new("/sys/fs/cgroup/pids").exists() {
        return;
    }
    let s = store();
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let ns = std::fs::metadata("/proc/self/ns/pid").unwrap().ino();
    let cg = PathBuf::from(format!(
        "/sys/fs/cgroup/pids/hush/hush-{dead}-{ns}-0badc0de"
    ));
    std::fs::create_dir_all(&cg).unwrap();
    let mut orphan = Command::new("sleep").arg("4712").spawn().unwrap();
    std::fs::write(cg.join("cgroup.procs"), orphan.id().to_string()).unwrap();
    let ctx = context("FROM busybox:local\nRUN true\n");
    let o = build(&s.path().join("root"), ctx.path(), &[]);
    assert!(o.status.success(), "{}", log(&o));
    let until = Instant::now() + Duration::from_secs(5);
    while orphan.try_wait().unwrap().is_none() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = orphan.kill();
    let status = orphan.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    assert!(!cg.exists(), "{} left", cg.display());
}

/// `RUN --security=insecure` is BuildKit's privileged step: refused, before any step runs,
/// unless the build passes `--allow security.insecure`; with it, the step holds every capability
/// and no seccomp filter (it may make namespaces). An unknown mode is a parse error.
#[test]
fn security_insecure_needs_its_entitlement_and_is_privileged() {
    if !can_run() {
        return;
    }
    let s = store();
    let root = s.path().join("root");
    let ctx = context(
        "FROM busybox:local\n\
         RUN echo first=ran\n\
         RUN --security=insecure grep -E '^(CapEff|Seccomp):' /proc/self/status | sed 's/^/insecure-/'; \
             unshare -U true && echo unshare=ok\n",
    );
    let o = build(&root, ctx.path(), &[]);
    let l = log(&o);
    assert_eq!(o.status.code(), Some(1), "{l}");
    assert!(
        l.contains("security.insecure") && l.contains("Dockerfile:3"),
        "{l}"
    );
    assert!(l.contains("--allow security.insecure"), "{l}");
    assert_eq!(
        probe_value(&l, "first"),
        None,
        "a step ran before the refusal:\n{l}"
    );

    let o = build(&root, ctx.path(), &["--allow", "security.insecure"]);
    let l = log(&o);
    assert!(o.status.success(), "{l}");
    let eff = l
        .lines()
        .find_map(|x| x.split_once("insecure-CapEff:"))
        .map(|(_, v)| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap_or_else(|| panic!("no CapEff in\n{l}"));
    assert!(eff & (1 << 21) != 0, "no CAP_SYS_ADMIN: {eff:x}");
    assert!(l.contains("insecure-Seccomp:\t0"), "{l}");
    assert_eq!(probe_value(&l, "unshare"), Some("ok"), "{l}");

    let bad = context("FROM busybox:local\nRUN --security=privileged true\n");
    let o = build(&root, bad.path(), &[]);
    assert!(log(&o).contains("unsupported security mode"), "{}", log(&o));
}

/// Red team, finding 1: ONBUILD triggers appear only when their stage is dispatched, after the
/// pre-build check of the Dockerfile's own RUNs. A trigger asking for `--security=insecure` or
/// `--network=host` — from an earlier stage or from a base image — is refused all the same, before
/// it runs; a plain trigger of a base image runs on the private network.
#[test]
fn onbuild_triggers_need_the_same_entitlements() {
    if !can_run() {
        return;
    }
    let s = store();
    let root = s.path().join("root");
    let same = context(
        "FROM busybox:local AS a\n\
         ONBUILD RUN --security=insecure echo trigger=ran\n\
         FROM a\n\
         RUN echo child=ran\n",
    );
    let o = build(&root, same.path(), &[]);
    let l = log(&o);
    assert_eq!(o.status.code(), Some(1), "{l}");
    assert!(l.contains("security.insecure"), "{l}");
    assert_eq!(probe_value(&l, "trigger"), None, "the trigger ran:\n{l}");

    // A base image carrying triggers, built (its triggers do not run in its own build).
    let evil = context(
        "FROM busybox:local\n\
         ONBUILD RUN --network=host echo host=reached\n\
         ONBUILD RUN echo plain=ran\n",
    );
    let o = build(&root, evil.path(), &["-t", "evil:local"]);
    assert!(o.status.success(), "{}", log(&o));
    let victim = context("FROM evil:local\nRUN echo victim=ran\n");
    let o = build(&root, victim.path(), &[]);
    let l = log(&o);
    assert_eq!(o.status.code(), Some(1), "{l}");
    assert!(l.contains("network.host"), "{l}");
    assert_eq!(probe_value(&l, "host"), None, "the trigger ran:\n{l}");
    let o = build(&root, victim.path(), &["--allow", "network.host"]);
    let l = log(&o);
    assert!(o.status.success(), "{l}");
    assert_eq!(probe_value(&l, "plain"), Some("ran"), "{l}");
    assert_eq!(probe_value(&l, "victim"), Some("ran"), "{l}");
}
