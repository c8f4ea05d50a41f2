//! RUN in an OCI container through youki's `libcontainer`, embedded.
//!
//! `libcontainer` forks and sets up namespaces from the calling process, which must not be
//! multi-threaded while it does; hush's builds are. So the parent writes an OCI bundle
//! (`config.json` whose root is the step's overlay) and re-executes its own binary as a
//! single-threaded helper ([`helper_main`]) that creates, starts, waits for and deletes the
//! container. The helper's stdout/stderr are the RUN's.
//!
//! Secrets are written to a tmpfs mounted for this RUN only (`nodev,nosuid`, `noexec` unless a
//! mode asks for x) and bind-mounted read-only at their targets; the tmpfs is unmounted when the
//! RUN ends, so the bytes never touch a disk.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::{
    LinuxBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, MountBuilder, ProcessBuilder,
    RootBuilder, Spec, UserBuilder,
};

use crate::error::IoContext;
use crate::{Error, Result};

/// The argv[1] that makes the hush binary act as the container helper.
pub const HELPER_ARG: &str = "__hush-container-helper";

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
    pub env: Vec<String>,
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

/// docker's (and BuildKit's) default capability set for build containers.
fn default_capabilities(
) -> std::result::Result<oci_spec::runtime::LinuxCapabilities, oci_spec::OciSpecError> {
    use oci_spec::runtime::Capability as C;
    let caps: std::collections::HashSet<C> = [
        C::Chown,
        C::DacOverride,
        C::Fsetid,
        C::Fowner,
        C::Mknod,
        C::NetRaw,
        C::Setgid,
        C::Setuid,
        C::Setfcap,
        C::Setpcap,
        C::NetBindService,
        C::SysChroot,
        C::Kill,
        C::AuditWrite,
    ]
    .into_iter()
    .collect();
    oci_spec::runtime::LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .build()
}

fn oci_spec_for(rootfs: &Path, spec: &RunSpec) -> Result<Spec> {
    let bad = |e: oci_spec::OciSpecError| Error::Container(e.to_string());
    let mut s = Spec::default();
    let user = UserBuilder::default()
        .uid(spec.ids.uid)
        .gid(spec.ids.gid)
        .build()
        .map_err(bad)?;
    let mut process = ProcessBuilder::default()
        .args(spec.argv.clone())
        .env(spec.env.clone())
        .cwd(if spec.cwd.is_empty() {
            "/".to_string()
        } else {
            spec.cwd.clone()
        })
        .user(user)
        .terminal(false)
        .no_new_privileges(false)
        .build()
        .map_err(bad)?;
    if let Some(p) = s.process() {
        process.set_rlimits(p.rlimits().clone());
    }
    let mut caps = default_capabilities().map_err(bad)?;
    spec.network.restrict_capabilities(&mut caps);
    process.set_capabilities(Some(caps));
    s.set_process(Some(process));
    s.set_hostname(Some("buildkitsandbox".into()));
    s.set_root(Some(
        RootBuilder::default()
            .path(rootfs)
            .readonly(false)
            .build()
            .map_err(bad)?,
    ));
    let mut mounts = s.mounts().clone().unwrap_or_default();
    for b in &spec.binds {
        let mut opts = vec!["rbind".to_string(), "nosuid".into(), "nodev".into()];
        if b.readonly {
            opts.push("ro".into());
        }
        mounts.push(
            MountBuilder::default()
                .destination(&b.target)
                .typ("bind")
                .source(&b.source)
                .options(opts)
                .build()
                .map_err(bad)?,
        );
    }
    for (t, size) in &spec.tmpfs {
        let mut opts = vec!["nosuid".to_string(), "nodev".into(), "mode=1777".into()];
        if let Some(sz) = size {
            opts.push(format!("size={sz}"));
        }
        mounts.push(
            MountBuilder::default()
                .destination(t)
                .typ("tmpfs")
                .source("tmpfs")
                .options(opts)
                .build()
                .map_err(bad)?,
        );
    }
    s.set_mounts(Some(mounts));
    let ns = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
    ];
    let mut namespaces = ns
        .into_iter()
        .map(|t| LinuxNamespaceBuilder::default().typ(t).build().map_err(bad))
        .collect::<Result<Vec<_>>>()?;
    let net = LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::Network);
    match &spec.network {
        crate::network::Network::Host => {}
        crate::network::Network::None => namespaces.push(net.build().map_err(bad)?),
        crate::network::Network::Join(path) => {
            namespaces.push(net.path(path).build().map_err(bad)?)
        }
    }
    let mut linux = s.linux().clone().unwrap_or_else(|| {
        LinuxBuilder::default()
            .build()
            .expect("empty linux section")
    });
    linux.set_namespaces(Some(namespaces));
    // No resource limits or device cgroup rules of our own: a build step is not a service.
    linux.set_resources(None);
    s.set_linux(Some(linux));
    Ok(s)
}

/// Run `spec` with `rootfs` as `/`. `bundle` is a private scratch directory. Output chunks
/// (stdout and stderr, interleaved as they come) go to `output`. Returns the exit code.
pub fn run(
    bundle: &Path,
    rootfs: &Path,
    spec: &RunSpec,
    output: &mut dyn FnMut(&[u8]),
) -> Result<i32> {
    let s = oci_spec_for(rootfs, spec)?;
    fs::create_dir_all(bundle).ctx("create", bundle)?;
    let cfg = bundle.join("config.json");
    fs::write(&cfg, serde_json::to_vec(&s).expect("spec serializes")).ctx("write", &cfg)?;
    let exe = std::env::current_exe().ctx("find", "/proc/self/exe")?;
    let (reader, writer) = std::io::pipe().ctx("create", "pipe")?;
    let writer2 = writer.try_clone().ctx("create", "pipe")?;
    let mut child = Command::new(exe)
        .arg(HELPER_ARG)
        .arg(bundle)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer2)
        .spawn()
        .ctx("start container helper for", bundle)?;
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

/// The helper process: create, start, wait for and delete the container of `bundle`.
/// Exit code: the container's (128+signal when killed), or 125 when it could not start.
pub fn helper_main(bundle: &Path) -> i32 {
    match helper(bundle) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hush: {e}");
            125
        }
    }
}

/// Wait for the container's init; on SIGINT/SIGTERM kill it (a PID 1 ignores signals it has no
/// handler for, so only SIGKILL is sure) and keep waiting. The flag is checked at least every
/// 200 ms: a signal that came before the wait began (while the container started) sets it
/// without interrupting anything, and would otherwise be missed until the RUN ended.
fn wait_killing_on_signal(pid: nix::unistd::Pid) -> i32 {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    use std::os::fd::{AsFd, FromRawFd, OwnedFd};
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    // SAFETY: a non-negative result is a descriptor nothing else owns.
    let pidfd = (raw >= 0).then(|| unsafe { OwnedFd::from_raw_fd(raw as i32) });
    let mut killed = false;
    loop {
        if crate::signals::interrupted() && !killed {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            killed = true;
        }
        // Readable when the process exits; without a pidfd, a plain blocking wait.
        let flags = match &pidfd {
            Some(fd) => {
                let mut fds = [nix::poll::PollFd::new(
                    fd.as_fd(),
                    nix::poll::PollFlags::POLLIN,
                )];
                let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(200u16));
                Some(WaitPidFlag::WNOHANG)
            }
            None => None,
        };
        match waitpid(pid, flags) {
            Ok(WaitStatus::Exited(_, code)) => return if killed { 130 } else { code },
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                return if killed { 130 } else { 128 + sig as i32 }
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 125,
        }
    }
}

fn helper(bundle: &Path) -> Result<i32> {
    use libcontainer::container::builder::ContainerBuilder;
    use libcontainer::syscall::syscall::SyscallType;
    use libcontainer::workload::default::DefaultExecutor;
    crate::signals::install();
    let state = bundle.join("state");
    let id = format!("hush-{}-{:08x}", std::process::id(), rand::random::<u32>());
    let err = |e: libcontainer::error::LibcontainerError| Error::Container(e.to_string());
    let mut c = ContainerBuilder::new(id, SyscallType::default())
        .with_executor(DefaultExecutor {})
        .with_root_path(&state)
        .map_err(err)?
        .as_init(bundle)
        .with_systemd(false)
        .with_detach(false)
        .build()
        .map_err(err)?;
    let started = c.start().map_err(err);
    let code = match (started, c.pid()) {
        (Ok(()), Some(pid)) => wait_killing_on_signal(pid),
        (Err(e), pid) => {
            // Starting can fail half-way (a signal interrupts it): never leave its processes
            // running.
            if let Some(pid) = pid {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(pid, None);
            }
            let _ = c.delete(true);
            return Err(e);
        }
        (Ok(()), None) => 125,
    };
    c.delete(true).map_err(err)?;
    Ok(code)
}
