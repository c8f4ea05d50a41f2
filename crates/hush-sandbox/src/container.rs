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

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilities, LinuxCapabilitiesBuilder, LinuxDeviceCgroup,
    LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemoryBuilder, LinuxNamespaceBuilder,
    LinuxNamespaceType, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder, MountBuilder,
    PosixRlimit, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec,
    UserBuilder,
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
    /// Resource limits.
    pub limits: Limits,
    /// `RUN --security=insecure` (allowed by `--allow security.insecure`): every capability, no
    /// seccomp filter, no device rules, nothing masked — `docker run --privileged`.
    pub insecure: bool,
}

/// What one RUN may use: buildx's `--ulimit`, docker's `--memory`, podman's `--pids-limit`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Processes and threads at once (a fork bomb stops here).
    pub pids: i64,
    /// Memory in bytes, none: unlimited.
    pub memory: Option<i64>,
    /// `--ulimit`s, replacing the default of the same type.
    pub ulimits: Vec<PosixRlimit>,
}

/// The default pids limit of a RUN: room for a parallel build, not for a fork bomb.
pub const DEFAULT_PIDS_LIMIT: i64 = 4096;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            pids: DEFAULT_PIDS_LIMIT,
            memory: None,
            ulimits: Vec::new(),
        }
    }
}

/// Parse a `--ulimit` as docker does: `NAME=SOFT[:HARD]` (`nofile=1024:4096`, `nproc=512`),
/// `-1` for unlimited.
pub fn parse_ulimit(s: &str) -> std::result::Result<PosixRlimit, String> {
    let (name, values) = s
        .split_once('=')
        .ok_or_else(|| format!("invalid ulimit {s:?}: expected NAME=SOFT[:HARD]"))?;
    let typ: PosixRlimitType = format!("RLIMIT_{}", name.to_ascii_uppercase())
        .parse()
        .map_err(|_| format!("invalid ulimit {s:?}: unknown type {name:?}"))?;
    let num = |v: &str| match v {
        "-1" => Ok(u64::MAX),
        _ => v
            .parse::<u64>()
            .map_err(|_| format!("invalid ulimit {s:?}: {v:?} is not a number")),
    };
    let (soft, hard) = match values.split_once(':') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(values)?, num(values)?),
    };
    if soft > hard {
        return Err(format!(
            "invalid ulimit {s:?}: the soft limit is above the hard limit"
        ));
    }
    PosixRlimitBuilder::default()
        .typ(typ)
        .soft(soft)
        .hard(hard)
        .build()
        .map_err(|e| e.to_string())
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
fn docker_capabilities() -> HashSet<Capability> {
    use oci_spec::runtime::Capability as C;
    [
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
    .collect()
}

/// Every capability hush itself may hold (its bounding set), for `--security=insecure`: what
/// `docker run --privileged` gives. Capability numbers are the kernel's (`capability.h`).
fn all_capabilities() -> HashSet<Capability> {
    "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE \
     NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO \
     SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME \
     SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG \
     WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF CHECKPOINT_RESTORE"
        .split_whitespace()
        .enumerate()
        // SAFETY: PR_CAPBSET_READ takes a capability number and reads no memory.
        .filter(|(n, _)| unsafe { libc::prctl(libc::PR_CAPBSET_READ, *n as libc::c_ulong) } == 1)
        .filter_map(|(_, c)| c.parse().ok())
        .collect()
}

/// The capability sets of a RUN (moby's rules): the bounding set is `caps`; root gets them
/// effective and permitted; another user gets none (it can still gain what a file grants, up to
/// the bounding set, as under docker); inheritable and ambient are always empty, so nothing
/// passes through an `exec` by itself.
fn capability_sets(
    caps: &HashSet<Capability>,
    uid: u32,
) -> std::result::Result<LinuxCapabilities, oci_spec::OciSpecError> {
    let held = if uid == 0 {
        caps.clone()
    } else {
        HashSet::new()
    };
    LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(held.clone())
        .permitted(held)
        .inheritable(HashSet::new())
        .ambient(HashSet::new())
        .build()
}

/// docker's device cgroup rules: no device may be read or written but the harmless ones a
/// process expects (`/dev/null`, `zero`, `full`, `random`, `urandom`, `tty`, `console`, `ptmx`,
/// `pts/*`, `net/tun`); `mknod` itself is allowed (CAP_MKNOD is in docker's set) but a node
/// made for a disk cannot be opened.
fn device_rules() -> std::result::Result<Vec<LinuxDeviceCgroup>, oci_spec::OciSpecError> {
    let rule = |allow: bool, typ: Option<LinuxDeviceType>, major, minor, access: &str| {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .access(access.to_string());
        if let Some(t) = typ {
            b = b.typ(t);
        }
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        b.build()
    };
    use LinuxDeviceType::{B, C};
    [
        rule(false, None, None, None, "rwm"),
        rule(true, Some(C), None, None, "m"),
        rule(true, Some(B), None, None, "m"),
        rule(true, Some(C), Some(1), Some(3), "rwm"),
        rule(true, Some(C), Some(1), Some(5), "rwm"),
        rule(true, Some(C), Some(1), Some(7), "rwm"),
        rule(true, Some(C), Some(1), Some(8), "rwm"),
        rule(true, Some(C), Some(1), Some(9), "rwm"),
        rule(true, Some(C), Some(5), Some(0), "rwm"),
        rule(true, Some(C), Some(5), Some(1), "rwm"),
        rule(true, Some(C), Some(5), Some(2), "rwm"),
        rule(true, Some(C), Some(136), None, "rwm"),
        rule(true, Some(C), Some(10), Some(200), "rwm"),
    ]
    .into_iter()
    .collect()
}

/// Paths docker hides (`maskedPaths`) or makes read-only in every container.
const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];
const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn resources(spec: &RunSpec) -> std::result::Result<LinuxResources, oci_spec::OciSpecError> {
    let mut r = LinuxResourcesBuilder::default().pids(
        LinuxPidsBuilder::default()
            .limit(spec.limits.pids)
            .build()?,
    );
    if !spec.insecure {
        r = r.devices(device_rules()?);
    }
    if let Some(bytes) = spec.limits.memory {
        r = r.memory(LinuxMemoryBuilder::default().limit(bytes).build()?);
    }
    r.build()
}

/// How a RUN gets docker's seccomp filter. Loading a filter without CAP_SYS_ADMIN needs
/// `no_new_privs`, which would stop `sudo` after `USER app` (docker does not set it): so a
/// non-root RUN gets the filter from libcontainer, loaded while the init still holds every
/// capability — compiled in each container, ~7.5 ms for the three x86 ABIs. A root RUN, which
/// `no_new_privs` changes nothing for (it cannot gain what it holds), loads the same filter
/// compiled once per build, just before it executes its command: ~0.1 ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filter {
    /// `RUN --security=insecure`: none.
    None,
    /// Compiled by hush, loaded by the executor ([`DieWithHelper`]).
    Precompiled,
    /// In the OCI spec, for libcontainer.
    InSpec,
}

fn filter_for(spec: &RunSpec) -> Filter {
    if spec.insecure {
        Filter::None
    } else if spec.ids.uid == 0 {
        Filter::Precompiled
    } else {
        Filter::InSpec
    }
}

/// The file in the bundle that holds a precompiled filter for the helper.
const BPF_FILE: &str = "seccomp.bpf";

fn oci_spec_for(rootfs: &Path, spec: &RunSpec, cgroup: &str) -> Result<Spec> {
    let bad = |e: oci_spec::OciSpecError| Error::Container(e.to_string());
    let mut s = Spec::default();
    let user = UserBuilder::default()
        .uid(spec.ids.uid)
        .gid(spec.ids.gid)
        .build()
        .map_err(bad)?;
    let mut caps = if spec.insecure {
        all_capabilities()
    } else {
        docker_capabilities()
    };
    spec.network.restrict_capabilities(&mut caps);
    let mut rlimits = s
        .process()
        .as_ref()
        .and_then(|p| p.rlimits().clone())
        .unwrap_or_default();
    for u in &spec.limits.ulimits {
        rlimits.retain(|r| r.typ() != u.typ());
        rlimits.push(*u);
    }
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
        .rlimits(rlimits)
        .build()
        .map_err(bad)?;
    // Unset, not `false`: libcontainer then loads the filter before it drops capabilities.
    process.set_no_new_privileges(None);
    process.set_capabilities(Some(capability_sets(&caps, spec.ids.uid).map_err(bad)?));
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
    linux.set_resources(Some(resources(spec).map_err(bad)?));
    linux.set_cgroups_path(Some(PathBuf::from(cgroup)));
    if spec.insecure {
        // BuildKit's security.insecure: a privileged container, as `docker run --privileged`.
        linux.set_masked_paths(None);
        linux.set_readonly_paths(None);
    } else {
        linux.set_masked_paths(Some(MASKED_PATHS.iter().map(|p| p.to_string()).collect()));
        linux.set_readonly_paths(Some(READONLY_PATHS.iter().map(|p| p.to_string()).collect()));
    }
    if filter_for(spec) == Filter::InSpec {
        linux.set_seccomp(Some(crate::seccomp::default_profile(&caps)?));
    }
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
    let id = format!("hush-{}-{:08x}", std::process::id(), rand::random::<u32>());
    let s = oci_spec_for(rootfs, spec, &format!("/hush/{id}"))?;
    fs::create_dir_all(bundle).ctx("create", bundle)?;
    let cfg = bundle.join("config.json");
    fs::write(&cfg, serde_json::to_vec(&s).expect("spec serializes")).ctx("write", &cfg)?;
    if filter_for(spec) == Filter::Precompiled {
        let bpf = bundle.join(BPF_FILE);
        let filter = crate::seccomp::docker_root_bpf(&docker_capabilities())?;
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

/// hush's own binary, as the helper must run it (CVE-2019-5736). The helper's process becomes
/// the container's init until it executes the RUN's command, and a command such as a
/// `#!/proc/self/exe` script re-executes whatever that process runs, inside the container, with
/// the image's dynamic linker: were it the binary as hush was started, the container could keep
/// a descriptor to it and overwrite it once hush stops.
///
/// In a build's private mount namespace ([`crate::isolate_mounts`]) the binary is bind-mounted
/// read-only at `bundle/hush` (on the RUN's tmpfs, gone with it): every path to it from the
/// container, `/proc/self/fd/N` reopened included, is on that read-only mount and writing fails
/// with EROFS. Two mount calls, where a copy of the binary costs ~60 ms (86 MB with its line
/// tables). Where that mount cannot be made, the helper runs from a sealed memfd copy (runc's
/// cloned binary), made once per process.
fn protected_exe(bundle: &Path) -> Result<PathBuf> {
    let target = bundle.join("hush");
    let bind = || -> nix::Result<()> {
        // The binary by its path in this namespace (a mount made before the namespace was, as
        // `/proc/self/exe`'s is, cannot be bound here), if that path still is this binary.
        let errno =
            |e: std::io::Error| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
        let path = fs::read_link("/proc/self/exe").map_err(errno)?;
        let (a, b) = (
            fs::metadata("/proc/self/exe").map_err(errno)?,
            fs::metadata(&path).map_err(errno)?,
        );
        use std::os::unix::fs::MetadataExt;
        if (a.dev(), a.ino()) != (b.dev(), b.ino()) {
            return Err(nix::errno::Errno::ESTALE);
        }
        fs::File::create(&target).map_err(errno)?;
        mount(
            Some(&path),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )?;
        let ro = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID;
        if let Err(e) = mount(None::<&str>, &target, None::<&str>, ro, None::<&str>) {
            let _ = umount2(&target, MntFlags::MNT_DETACH);
            return Err(e);
        }
        Ok(())
    };
    if in_private_mount_namespace() && bind().is_ok() {
        return Ok(target);
    }
    let _ = fs::remove_file(&target);
    sealed_exe()
}

/// Is this process's mount namespace another than its parent's (made by
/// [`crate::isolate_mounts`])? Only there may hush mount over its own binary unseen.
fn in_private_mount_namespace() -> bool {
    let ns = |p: &str| fs::read_link(p).ok();
    let mine = ns("/proc/self/ns/mnt");
    mine.is_some() && mine != ns(&format!("/proc/{}/ns/mnt", nix::unistd::getppid()))
}

/// hush's binary as a sealed in-memory copy: nobody can write it. Made once per process.
fn sealed_exe() -> Result<PathBuf> {
    use std::os::fd::{AsRawFd, OwnedFd};
    static SEALED: std::sync::OnceLock<std::result::Result<OwnedFd, String>> =
        std::sync::OnceLock::new();
    let fd = SEALED.get_or_init(|| {
        let seal = || -> std::io::Result<OwnedFd> {
            use nix::fcntl::{fcntl, FcntlArg, SealFlag};
            use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
            let fd = memfd_create(
                c"hush-helper",
                MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING,
            )?;
            let mut file = fs::File::from(fd);
            let mut exe = fs::File::open("/proc/self/exe")?;
            std::io::copy(&mut exe, &mut file)?;
            fcntl(
                file.as_raw_fd(),
                FcntlArg::F_ADD_SEALS(
                    SealFlag::F_SEAL_SEAL
                        | SealFlag::F_SEAL_SHRINK
                        | SealFlag::F_SEAL_GROW
                        | SealFlag::F_SEAL_WRITE,
                ),
            )?;
            Ok(OwnedFd::from(file))
        };
        seal().map_err(|e| e.to_string())
    });
    match fd {
        // The descriptor is close-on-exec; the kernel opens the path before it closes it.
        Ok(fd) => Ok(PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))),
        Err(e) => Err(Error::Container(format!(
            "failed to make a sealed copy of hush's binary to run the container from: {e}"
        ))),
    }
}

/// The helper process: create, start, wait for and delete the container of `bundle`.
/// Exit code: the container's (128+signal when killed), or 125 when it could not start.
pub fn helper_main(bundle: &Path, id: &str) -> i32 {
    crate::signals::install();
    match helper(bundle, id) {
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

/// The default executor, after asking the kernel to SIGKILL the container's init when the
/// helper dies (the whole PID namespace goes with it). A belt to the helper's braces: a RUN
/// that changes its credentials clears this, but the helper still kills the init when hush
/// dies, and the next hush removes what a dead one left.
///
/// It also loads a precompiled seccomp filter (see [`Filter`]), last before the command runs; a
/// filter that fails to load fails the RUN.
#[derive(Clone)]
struct DieWithHelper {
    default: libcontainer::workload::default::DefaultExecutor,
    filter: Option<Vec<u8>>,
}

impl libcontainer::workload::Executor for DieWithHelper {
    fn exec(&self, spec: &Spec) -> std::result::Result<(), libcontainer::workload::ExecutorError> {
        // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and changes no memory.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
        if let Some(bpf) = &self.filter {
            crate::seccomp::load(bpf).map_err(|e| {
                libcontainer::workload::ExecutorError::Other(format!(
                    "failed to load the seccomp filter: {e}"
                ))
            })?;
        }
        self.default.exec(spec)
    }

    fn validate(
        &self,
        spec: &Spec,
    ) -> std::result::Result<(), libcontainer::workload::ExecutorValidationError> {
        self.default.validate(spec)
    }

    fn setup_envs(
        &self,
        envs: std::collections::HashMap<String, String>,
    ) -> std::result::Result<(), libcontainer::workload::ExecutorSetEnvsError> {
        self.default.setup_envs(envs)
    }
}

fn helper(bundle: &Path, id: &str) -> Result<i32> {
    use libcontainer::container::builder::ContainerBuilder;
    use libcontainer::syscall::syscall::SyscallType;
    use libcontainer::workload::default::DefaultExecutor;
    let state = bundle.join("state");
    let bpf = bundle.join(BPF_FILE);
    let filter = match fs::read(&bpf) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).ctx("read", &bpf),
    };
    let err = |e: libcontainer::error::LibcontainerError| Error::Container(e.to_string());
    let mut c = ContainerBuilder::new(id.to_string(), SyscallType::default())
        .with_executor(DieWithHelper {
            default: DefaultExecutor {},
            filter,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run_spec(uid: u32, insecure: bool) -> RunSpec {
        RunSpec {
            argv: vec!["true".into()],
            env: Vec::new(),
            cwd: "/".into(),
            ids: crate::user::Ids { uid, gid: uid },
            network: crate::network::Network::None,
            binds: Vec::new(),
            tmpfs: Vec::new(),
            limits: Limits::default(),
            insecure,
        }
    }

    fn spec(uid: u32, insecure: bool) -> Spec {
        oci_spec_for(
            Path::new("/rootfs"),
            &run_spec(uid, insecure),
            "/hush/hush-1-0",
        )
        .unwrap()
    }

    #[test]
    fn each_run_gets_the_filter_exactly_one_way() {
        // Root: the precompiled filter, loaded by the executor; not compiled again per RUN.
        let root = spec(0, false);
        let linux = root.linux().as_ref().unwrap();
        assert!(linux.seccomp().is_none());
        assert_eq!(filter_for(&run_spec(0, false)), Filter::Precompiled);
        // Another user: libcontainer loads it, without no_new_privs.
        let user = spec(1000, false);
        assert!(user.linux().as_ref().unwrap().seccomp().is_some());
        assert_eq!(user.process().as_ref().unwrap().no_new_privileges(), None);
        // Insecure: none, nothing masked, no device rules.
        let insecure = spec(0, true);
        let linux = insecure.linux().as_ref().unwrap();
        assert!(linux.seccomp().is_none() && linux.masked_paths().is_none());
        assert!(linux.resources().as_ref().unwrap().devices().is_none());
        assert_eq!(filter_for(&run_spec(0, true)), Filter::None);
    }

    #[test]
    fn ulimits_parse_as_docker_takes_them() {
        let u = parse_ulimit("nofile=1024:4096").unwrap();
        assert_eq!((u.soft(), u.hard()), (1024, 4096));
        assert_eq!(parse_ulimit("nproc=-1").unwrap().hard(), u64::MAX);
        for bad in ["nofile", "bogus=1", "nofile=a", "nofile=9:1"] {
            assert!(parse_ulimit(bad).is_err(), "{bad}");
        }
    }
}
