//! Cgroups left by RUN containers whose hush was killed.
//!
//! A RUN's container `hush-PID-RANDOM` (PID: the hush that ran it) has the cgroup
//! `hush/hush-PID-RANDOM` in every hierarchy (each v1 controller, or the v2 tree); hush before
//! 0.2 left libcontainer's default `:youki:hush-PID-RANDOM` at the hierarchy's root. The helper
//! removes it when the RUN ends, and kills the container when hush dies; a helper killed by
//! hand never does. A cgroup whose hush is gone is stale: the processes still in it are the
//! orphans of a dead build (a RUN that cleared its parent-death signal) and are killed, then the
//! cgroup is removed.

use std::fs;
use std::path::{Path, PathBuf};

/// Where cgroup hierarchies are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// What a sweep of stale cgroups did.
#[derive(Debug, Default)]
pub struct Swept {
    /// Cgroup directories removed.
    pub removed: Vec<PathBuf>,
    /// Those that could not be removed.
    pub kept: Vec<(PathBuf, std::io::Error)>,
}

/// Kill what is left in the cgroups of hush containers whose hush is gone, and remove them.
pub fn sweep_stale() -> Swept {
    sweep_in(
        Path::new(CGROUP_ROOT),
        &|pid| Path::new("/proc").join(pid.to_string()).exists(),
        &|pid| {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        },
    )
}

fn sweep_in(root: &Path, alive: &dyn Fn(u32) -> bool, kill: &dyn Fn(u32)) -> Swept {
    let mut out = Swept::default();
    // The v2 tree is the root itself; v1 controllers (and a hybrid's v2) are its subdirectories.
    let mut hierarchies = vec![root.to_path_buf()];
    if let Ok(rd) = fs::read_dir(root) {
        hierarchies.extend(
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path()),
        );
    }
    let mut stale = Vec::new();
    for h in hierarchies {
        for (dir, prefix) in [(h.join("hush"), "hush-"), (h, ":youki:hush-")] {
            let Ok(rd) = fs::read_dir(&dir) else { continue };
            for e in rd.flatten() {
                let name = e.file_name();
                match name.to_str().and_then(|n| creator_pid(n, prefix)) {
                    Some(pid) if !alive(pid) => stale.push(e.path()),
                    _ => {}
                }
            }
        }
    }
    for cg in &stale {
        let procs = fs::read_to_string(cg.join("cgroup.procs")).unwrap_or_default();
        for p in procs.lines().filter_map(|l| l.trim().parse().ok()) {
            kill(p);
        }
    }
    for cg in stale {
        // A killed process leaves its cgroups a moment later.
        let mut tries = 0;
        loop {
            match fs::remove_dir(&cg) {
                Ok(()) => out.removed.push(cg),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) if err.raw_os_error() == Some(libc::EBUSY) && tries < 50 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                }
                Err(err) => out.kept.push((cg, err)),
            }
            break;
        }
    }
    out
}

/// The pid in a hush container's cgroup name `PREFIX` `PID-HEX`.
fn creator_pid(name: &str, prefix: &str) -> Option<u32> {
    let (pid, hex) = name.strip_prefix(prefix)?.split_once('-')?;
    let hex_ok = !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit());
    let pid_ok = !pid.is_empty() && pid.chars().all(|c| c.is_ascii_digit());
    (hex_ok && pid_ok).then(|| pid.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn only_hush_container_cgroups_of_dead_pids_go_and_their_processes_are_killed() {
        assert_eq!(creator_pid("hush-123-00ab", "hush-"), Some(123));
        assert_eq!(
            creator_pid(":youki:hush-123-00ab", ":youki:hush-"),
            Some(123)
        );
        for other in ["other-1-2", "hush-1-", "hush-x-1", "hush-1-zz"] {
            assert_eq!(creator_pid(other, "hush-"), None, "{other}");
        }
        let t = tempfile::tempdir().unwrap();
        let cpu = t.path().join("cpu");
        for d in [
            "hush/hush-1-aa",
            "hush/hush-2-bb",
            "hush/web-1-aa",
            "system.slice",
        ] {
            fs::create_dir_all(cpu.join(d)).unwrap();
        }
        fs::create_dir_all(t.path().join(":youki:hush-1-cc")).unwrap();
        // A stale cgroup with a process in it: a real one empties when the process is killed;
        // this fake stays non-empty, so its removal fails and is reported.
        fs::write(cpu.join("hush/hush-1-aa/cgroup.procs"), "42\n").unwrap();
        let killed = RefCell::new(Vec::new());
        let s = sweep_in(t.path(), &|pid| pid == 2, &|p| killed.borrow_mut().push(p));
        assert_eq!(killed.into_inner(), vec![42]);
        assert_eq!(s.removed, vec![t.path().join(":youki:hush-1-cc")]);
        assert_eq!(s.kept.len(), 1, "ENOTEMPTY is reported: {:?}", s.kept);
        for d in [
            "hush/hush-1-aa",
            "hush/hush-2-bb",
            "hush/web-1-aa",
            "system.slice",
        ] {
            assert!(cpu.join(d).is_dir(), "{d}");
        }
    }
}
