//! The OCI spec of a RUN: docker's capabilities, device rules, masked paths and seccomp policy,
//! and the limits a build sets.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilities, LinuxCapabilitiesBuilder, LinuxDeviceCgroup,
    LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemoryBuilder, LinuxNamespaceBuilder,
    LinuxNamespaceType, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder, MountBuilder,
    PosixRlimit, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec,
    UserBuilder,
};

use super::RunSpec;
use crate::{Error, Result};

/// What one RUN may use: buildx's `--ulimit`, docker's `--memory`, podman's `--pids-limit`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Processes and threads at once (a fork bomb stops here).
    pub pids: i64,
    /// Memory in bytes, none: unlimited.
    pub memory: Option<i64>,
    /// `--ulimit`s, replacing the default of the same type.
    pub ulimits: Vec<PosixRlimit>,
    /// The size of `/dev/shm` in bytes (`--shm-size`); none: 64 MiB, docker's default.
    pub shm_size: Option<u64>,
}

/// The default pids limit of a RUN: room for a parallel build, not for a fork bomb.
pub const DEFAULT_PIDS_LIMIT: i64 = 4096;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            pids: DEFAULT_PIDS_LIMIT,
            memory: None,
            ulimits: Vec::new(),
            shm_size: None,
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
/// capability — compiled in each container, ~7.5 ms for the three x86 ABIs. A root RUN loads the
/// same filter compiled once per build, just before it executes its command (~0.1 ms), after
/// `no_new_privs`: root loses nothing, but a user it starts (`su app -c 'sudo …'`) cannot regain
/// privileges, where docker lets it (the README says so).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Filter {
    /// `RUN --security=insecure`: none.
    None,
    /// Compiled by hush, loaded by the executor (`DieWithHelper`, in `helper.rs`).
    Precompiled,
    /// In the OCI spec, for libcontainer.
    InSpec,
}

pub(super) fn filter_for(spec: &RunSpec) -> Filter {
    if spec.insecure {
        Filter::None
    } else if spec.ids.uid == 0 {
        Filter::Precompiled
    } else {
        Filter::InSpec
    }
}

/// docker's filter for a root RUN (docker's capabilities), compiled once per process.
pub(super) fn root_filter() -> Result<&'static [u8]> {
    static BPF: std::sync::OnceLock<std::result::Result<Vec<u8>, String>> =
        std::sync::OnceLock::new();
    BPF.get_or_init(|| {
        crate::seccomp::default_profile(&docker_capabilities())
            .and_then(|p| crate::seccomp::compile(&p))
            .map_err(|e| e.to_string())
    })
    .as_deref()
    .map_err(|e| Error::Seccomp(e.clone()))
}

/// The file in the bundle that holds a precompiled filter for the helper.
pub(super) const BPF_FILE: &str = "seccomp.bpf";

pub(super) fn oci_spec_for(rootfs: &Path, spec: &RunSpec, cgroup: &str) -> Result<Spec> {
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
        .env(spec.env.vars().to_vec())
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
    s.set_hostname(Some(crate::network::HOSTNAME.into()));
    s.set_root(Some(
        RootBuilder::default()
            .path(rootfs)
            .readonly(false)
            .build()
            .map_err(bad)?,
    ));
    let mut mounts = s.mounts().clone().unwrap_or_default();
    // No cgroup filesystem: libcontainer mounts cgroup v1 hierarchies read-write whatever the
    // spec says, and a RUN could lift its own pids and memory limits, create cgroups on the
    // host's hierarchy and freeze itself out of reach of SIGKILL. A build step has no use for it.
    mounts.retain(|m| m.destination() != Path::new("/sys/fs/cgroup"));
    if let Some(size) = spec.limits.shm_size {
        // The default spec's /dev/shm is a 64 MiB tmpfs: `--shm-size` sets its size.
        for m in mounts
            .iter_mut()
            .filter(|m| m.destination() == Path::new("/dev/shm"))
        {
            let mut opts: Vec<String> = m
                .options()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|o| !o.starts_with("size="))
                .collect();
            opts.push(format!("size={size}"));
            m.set_options(Some(opts));
        }
    }
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
        crate::network::Network::None => namespaces.push(
            net.path(crate::network::loopback_namespace()?)
                .build()
                .map_err(bad)?,
        ),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run_spec(uid: u32, insecure: bool) -> RunSpec {
        RunSpec {
            argv: vec!["true".into()],
            env: Default::default(),
            cwd: "/".into(),
            ids: crate::user::Ids { uid, gid: uid },
            network: crate::network::Network::Host,
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
    fn shm_size_sets_the_size_of_dev_shm_only() {
        let shm = |spec: &Spec| -> Vec<String> {
            spec.mounts()
                .as_ref()
                .unwrap()
                .iter()
                .find(|m| m.destination() == Path::new("/dev/shm"))
                .expect("a /dev/shm mount")
                .options()
                .clone()
                .unwrap_or_default()
        };
        let default = shm(&spec(0, false));
        assert!(default.contains(&"size=65536k".to_string()), "{default:?}");
        let mut rs = run_spec(0, false);
        rs.limits.shm_size = Some(16 << 20);
        let s = oci_spec_for(Path::new("/rootfs"), &rs, "/hush/hush-1-0").unwrap();
        let sized = shm(&s);
        assert!(sized.contains(&format!("size={}", 16 << 20)), "{sized:?}");
        assert_eq!(sized.iter().filter(|o| o.starts_with("size=")).count(), 1);
        assert_eq!(sized.len(), default.len(), "the other options are kept");
    }

    /// `RUN --mount=type=secret,env=T` puts the value in the env: the spec passes it on to the
    /// container, and its `Debug` shows only the name.
    #[test]
    fn env_values_reach_the_spec_and_never_debug_output() {
        let mut rs = run_spec(0, false);
        rs.env.push("T", "hunter2-correct-horse");
        rs.env.push("PATH", "/bin");
        assert_eq!(format!("{:?}", rs.env), r#"["T", "PATH"]"#);
        assert!(!format!("{rs:?}").contains("hunter2"));
        let s = oci_spec_for(Path::new("/rootfs"), &rs, "/hush/x").unwrap();
        let env = s.process().as_ref().unwrap().env().clone().unwrap();
        assert_eq!(env, ["T=hunter2-correct-horse", "PATH=/bin"]);
    }

    #[test]
    fn nul_bytes_are_an_error_naming_the_string_not_a_panic() {
        let ok = run_spec(0, false);
        assert!(super::super::check_no_nul(&ok).is_ok());
        let with = |f: &dyn Fn(&mut RunSpec)| {
            let mut s = run_spec(0, false);
            f(&mut s);
            super::super::check_no_nul(&s).unwrap_err().to_string()
        };
        let cases = [
            (with(&|s| s.argv.push("a\0b".into())), "argument 2"),
            (
                with(&|s| s.env.push("TOKEN", "s3cr\0t")),
                "environment variable TOKEN",
            ),
            (
                with(&|s| s.env.push("A\0B", "1")),
                "environment variable name",
            ),
            (with(&|s| s.cwd = "/a\0".into()), "working directory"),
        ];
        for (msg, what) in cases {
            assert_eq!(
                msg,
                format!("failed to start the build container: its {what} holds a NUL byte")
            );
            assert!(!msg.contains("s3cr"));
        }
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
    fn a_run_gets_the_default_pids_limit_and_no_cgroup_filesystem() {
        let s = spec(0, false);
        let r = s.linux().as_ref().unwrap().resources().as_ref().unwrap();
        assert_eq!(r.pids().as_ref().unwrap().limit(), DEFAULT_PIDS_LIMIT);
        assert!(r.memory().is_none());
        let mounts = s.mounts().as_ref().unwrap();
        assert!(mounts
            .iter()
            .all(|m| m.destination() != Path::new("/sys/fs/cgroup")));
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
