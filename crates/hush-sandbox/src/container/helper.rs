//! The helper process that owns a RUN's container, and the binary it runs from.

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::Spec;

use super::BPF_FILE;
use crate::error::IoContext;
use crate::{Error, Result};

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
pub(super) fn protected_exe(bundle: &Path) -> Result<PathBuf> {
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
    if crate::mounts_isolated() && bind().is_ok() {
        return Ok(target);
    }
    let _ = fs::remove_file(&target);
    sealed_exe()
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
    // libcontainer's intermediate and init processes are forks of this one; one that loses its
    // parent half-way (a signal interrupted the start) is reparented here rather than to the
    // host's init, where it kept RUN's output pipe open and hush waiting for it forever.
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes a flag and changes no memory.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
    let code = match helper(bundle, id) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hush: {e}");
            125
        }
    };
    kill_descendants();
    code
}

/// Kill and reap every process left under this one (its children, and the orphans it adopted
/// as a subreaper), until none is left.
fn kill_descendants() {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    loop {
        // Listed again each time: an orphan can be adopted after a listing.
        for pid in children() {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
        match waitpid(None, Some(WaitPidFlag::__WALL | WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => std::thread::sleep(std::time::Duration::from_millis(5)),
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => break, // ECHILD: none left
        }
    }
}

/// This process's children, from `/proc/self/task/*/children`.
fn children() -> Vec<nix::unistd::Pid> {
    let mut out = Vec::new();
    for task in fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let list = fs::read_to_string(task.path().join("children")).unwrap_or_default();
        out.extend(
            list.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .map(nix::unistd::Pid::from_raw),
        );
    }
    out
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
/// It also loads a precompiled seccomp filter (see [`Filter`](super::spec::Filter)), last before the command runs; a
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
        // Rust ignores SIGPIPE in hush (and so in this helper), and an ignored signal stays
        // ignored across exec: the RUN's command gets the default, as under docker, so that
        // `yes | head -1` ends quietly instead of printing "Broken pipe".
        // SAFETY: signal() with SIG_DFL installs no handler and touches no memory.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
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
