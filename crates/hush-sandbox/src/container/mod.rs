//! RUN in an OCI container through youki's `libcontainer`, embedded.
//!
//! `libcontainer` forks and sets up namespaces from the calling process, which must not be
//! multi-threaded while it does; hush's builds are. So the parent writes an OCI bundle
//! (`config.json` whose root is the step's overlay) and re-executes its own binary as a
//! single-threaded helper ([`helper_main`]) that creates, starts, waits for and deletes the
//! container. The helper's stdout/stderr are the RUN's. [`spec`] makes the container's OCI spec
//! (docker's defaults), [`helper`] is the process that owns it.
//!
//! Secrets are written to a tmpfs mounted for this RUN only (`nodev,nosuid`, `noexec` unless a
//! mode asks for x) and bind-mounted read-only at their targets; the tmpfs is unmounted when the
//! RUN ends, so the bytes never touch a disk.

mod helper;
mod spec;

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

pub use helper::helper_main;
use helper::protected_exe;
use spec::{filter_for, oci_spec_for, Filter, BPF_FILE};
pub use spec::{parse_ulimit, Limits, DEFAULT_PIDS_LIMIT};

use crate::error::IoContext;
use crate::{Error, Result};

/// The `argv[1]` that makes the hush binary act as the container helper.
pub const HELPER_ARG: &str = "__hush-container-helper";

/// Start compiling docker's seccomp filter for root RUNs (~8 ms with libseccomp, once per
/// process) on a thread of its own, so that the first RUN, which comes after the context and
/// base images are read, finds it ready. A build calls this after [`crate::isolate_mounts`].
pub fn prepare() {
    std::thread::spawn(|| {
        let _ = spec::root_filter();
    });
}

/// A mount for the container.
#[derive(Debug, Clone)]
pub struct BindMount {
    /// Host path.
    pub source: PathBuf,
    /// Path in the container.
    pub target: String,
    /// Read-only.
    pub readonly: bool,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// argv.
    pub argv: Vec<String>,
    /// `K=V`.
    pub env: Env,
    /// Working directory.
    pub cwd: String,
    /// User and group ids.
    pub ids: crate::user::Ids,
    /// Its network namespace.
    pub network: crate::network::Network,
    /// Bind mounts.
    pub binds: Vec<BindMount>,
    /// tmpfs mounts (target, size in bytes).
    pub tmpfs: Vec<(String, Option<u64>)>,
    /// Resource limits.
    pub limits: Limits,
    /// `RUN --security=insecure` (allowed by `--allow security.insecure`): every capability, no
    /// seccomp filter, no device rules, nothing masked — `docker run --privileged`.
    pub insecure: bool,
}

/// A RUN's environment, `K=V` each. The values of `RUN --mount=type=secret,env=VAR` are secrets:
/// the strings are zeroized on drop, and `Debug` shows the names only.
#[derive(Clone, Default)]
pub struct Env(Vec<String>);

impl Env {
    /// Add `key=value` (in a string of its exact size: growing it would leave copies behind).
    pub fn push(&mut self, key: &str, value: &str) {
        let mut s = String::with_capacity(key.len() + 1 + value.len());
        s.push_str(key);
        s.push('=');
        s.push_str(value);
        self.0.push(s);
    }

    /// The `K=V` strings.
    pub fn vars(&self) -> &[String] {
        &self.0
    }
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.0
                    .iter()
                    .map(|v| v.split('=').next().unwrap_or_default()),
            )
            .finish()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(zeroize::Zeroize::zeroize);
    }
}

/// A private tmpfs holding one RUN's secret files. Unmounted on drop.
#[derive(Debug)]
pub struct SecretDir {
    dir: PathBuf,
    mounted: bool,
    count: usize,
}

impl SecretDir {
    /// Mount a fresh tmpfs at `dir` (created if needed). `exec`: allow executing files on it.
    pub fn mount(dir: &Path, exec: bool) -> Result<Self> {
        fs::create_dir_all(dir).ctx("create", dir)?;
        let mut flags = MsFlags::MS_NODEV | MsFlags::MS_NOSUID;
        if !exec {
            flags |= MsFlags::MS_NOEXEC;
        }
        mount(
            Some("tmpfs"),
            dir,
            Some("tmpfs"),
            flags,
            Some("mode=0700,size=64m"),
        )
        .ctx("mount secret tmpfs at", dir)?;
        Ok(SecretDir {
            dir: dir.to_path_buf(),
            mounted: true,
            count: 0,
        })
    }

    /// A 0700 directory without a tmpfs, for where none can be mounted (the solver's test
    /// double of the executor; a build without `CAP_SYS_ADMIN`): its files are on the disk until
    /// it is dropped, then overwritten with zeros and removed.
    pub fn unmounted(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).ctx("create", dir)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).ctx("chmod", dir)?;
        Ok(SecretDir {
            dir: dir.to_path_buf(),
            mounted: false,
            count: 0,
        })
    }

    /// Write one secret file; returns its host path.
    pub fn add(
        &mut self,
        secret: &hush_secrets::Secret,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<PathBuf> {
        let p = self.add_file(secret.expose(), mode)?;
        nix::unistd::chown(&p, Some(uid.into()), Some(gid.into())).ctx("chown", &p)?;
        Ok(p)
    }

    /// A fresh path on the tmpfs for something the caller creates (an ssh-agent socket).
    pub fn new_path(&mut self, suffix: &str) -> PathBuf {
        self.count += 1;
        self.dir.join(format!("s{}{suffix}", self.count))
    }

    /// Write a file (a secret's bytes or a heredoc script) with `mode`; returns its host path.
    pub fn add_file(&mut self, bytes: &[u8], mode: u32) -> Result<PathBuf> {
        self.count += 1;
        let p = self.dir.join(format!("s{}", self.count));
        fs::write(&p, bytes).ctx("write file", &p)?;
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).ctx("chmod", &p)?;
        Ok(p)
    }
}

impl Drop for SecretDir {
    fn drop(&mut self) {
        if self.mounted {
            let _ = umount2(&self.dir, MntFlags::MNT_DETACH);
            self.mounted = false;
        } else {
            for n in 1..=self.count {
                let p = self.dir.join(format!("s{n}"));
                if let Ok(m) = fs::symlink_metadata(&p) {
                    if m.is_file() {
                        let _ = fs::write(&p, vec![0u8; m.len() as usize]);
                    }
                }
                let _ = fs::remove_file(&p);
            }
        }
        let _ = fs::remove_dir(&self.dir);
    }
}

/// Mount points the container itself needs, for the stub layer.
pub fn base_stubs(spec: &RunSpec) -> Vec<crate::overlay::Stub> {
    use crate::overlay::Stub;
    let mut v = vec![
        Stub::Dir("/proc".into()),
        Stub::Dir("/sys".into()),
        Stub::Dir("/dev".into()),
    ];
    for b in &spec.binds {
        if b.source.is_dir() {
            v.push(Stub::Dir(b.target.clone()));
        } else {
            v.push(Stub::File(b.target.clone()));
        }
    }
    for (t, _) in &spec.tmpfs {
        v.push(Stub::Dir(t.clone()));
    }
    v
}

/// The length of `v` as JSON.
fn json_len(v: &impl serde::Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    serde_json::to_writer(&mut c, v).expect("spec serializes");
    c.0
}

/// Every string the container's process gets must be a C string. The error names the string,
/// never its value (an environment value can be a secret's).
fn check_no_nul(spec: &RunSpec) -> Result<()> {
    let what = if let Some(i) = spec.argv.iter().position(|a| a.contains('\0')) {
        format!("argument {}", i + 1)
    } else if let Some(e) = spec.env.vars().iter().find(|e| e.contains('\0')) {
        match e.split_once('=') {
            Some((k, _)) if !k.contains('\0') => format!("environment variable {k}"),
            _ => "environment variable name".into(),
        }
    } else if spec.cwd.contains('\0') {
        "working directory".into()
    } else {
        return Ok(());
    };
    Err(Error::NulByte { what })
}

/// Run `spec` with `rootfs` as `/`. `bundle` is a private scratch directory. Output chunks
/// (stdout and stderr, interleaved as they come) go to `output`. Returns the exit code.
pub fn run(
    bundle: &Path,
    rootfs: &Path,
    spec: &RunSpec,
    output: &mut dyn FnMut(&[u8]),
) -> Result<i32> {
    // Named after this process and its PID namespace: the next hush sweeps the cgroups of a dead
    // one (`cgroups::sweep_stale`), and only its own namespace's.
    let id = format!(
        "hush-{}-{}-{:08x}",
        std::process::id(),
        crate::cgroups::pid_namespace(),
        rand::random::<u32>()
    );
    check_no_nul(spec)?;
    let mut s = oci_spec_for(rootfs, spec, &format!("/hush/{id}"))?;
    fs::create_dir_all(bundle).ctx("create", bundle)?;
    let cfg = bundle.join("config.json");
    // The spec holds the env, secrets included: serialised into a buffer of its final size (no
    // reallocation leaves a copy behind), and both zeroized once on the tmpfs.
    let mut json = zeroize::Zeroizing::new(Vec::with_capacity(json_len(&s)));
    serde_json::to_writer(&mut *json, &s).expect("spec serializes");
    if let Some(env) = s.process_mut().as_mut().and_then(|p| p.env_mut().as_mut()) {
        env.iter_mut().for_each(zeroize::Zeroize::zeroize);
    }
    drop(s);
    fs::write(&cfg, &*json).ctx("write", &cfg)?;
    drop(json);
    if filter_for(spec) == Filter::Precompiled {
        let bpf = bundle.join(BPF_FILE);
        let filter = spec::root_filter()?;
        fs::write(&bpf, filter).ctx("write", &bpf)?;
    }
    let exe = protected_exe(bundle)?;
    let (reader, writer) = std::io::pipe().ctx("create", "pipe")?;
    let writer2 = writer.try_clone().ctx("create", "pipe")?;
    let parent = nix::unistd::getpid();
    let mut cmd = Command::new(exe);
    cmd.arg(HELPER_ARG)
        .arg(bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer2);
    // SAFETY: between fork and exec the closure makes only async-signal-safe system calls
    // (prctl, getppid, setsid, _exit) and touches no memory shared with other threads.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            // The helper outlives nothing: when the thread that runs this RUN dies (hush killed
            // with SIGKILL included), the helper is told with SIGTERM and kills the container.
            // Its own session keeps it out of a `kill -9 -PGID` of hush's group: it must live
            // long enough to kill the container and remove its cgroups.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0
                || libc::getppid() != parent.as_raw()
            {
                libc::_exit(125);
            }
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().ctx("start container helper for", bundle)?;
    // The command holds the pipe's write ends: without them, the read below ends when the
    // helper and its container have closed theirs.
    drop(cmd);
    let mut reader = reader;
    let mut buf = vec![0u8; 64 * 1024];
    let mut told = false;
    loop {
        // Poll with a timeout: the signal may be delivered to another thread, so a blocked read
        // would never see EINTR; checking the flag between polls always does.
        if crate::signals::interrupted() && !told {
            // Tell the helper to kill the container; keep reading until it is gone.
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            told = true;
        }
        let ready = {
            use std::os::fd::AsFd;
            let mut fds = [nix::poll::PollFd::new(
                reader.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(200u16))
        };
        match ready {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => {
                return Err(Error::Io {
                    action: "wait for output of",
                    path: bundle.into(),
                    source: e.into(),
                })
            }
        }
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => output(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::Io {
                    action: "read output of",
                    path: bundle.into(),
                    source: e,
                })
            }
        }
    }
    let status = child.wait().ctx("wait for", bundle)?;
    use std::os::unix::process::ExitStatusExt;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}
