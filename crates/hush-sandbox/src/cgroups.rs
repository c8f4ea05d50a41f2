//! Cgroups left by RUN containers whose hush was killed.
//!
//! A RUN's container `hush-PID-PIDNS-RANDOM` (PID: the hush that ran it, PIDNS: the inode of
//! its PID namespace) has the cgroup `hush/hush-PID-PIDNS-RANDOM` in every hierarchy (each v1
//! controller, or the v2 tree); hush before 0.2 left libcontainer's default
//! `:youki:hush-PID-RANDOM` at the hierarchy's root. The helper removes it when the RUN ends,
//! and kills the container when hush dies; a helper killed by hand never does. A cgroup made in
//! this PID namespace whose hush is gone is stale: the processes still in it are the orphans of
//! a dead build (a RUN that cleared its parent-death signal) and are killed, then the cgroup is
//! removed. A cgroup of another PID namespace (a hush in a container sharing the host's cgroup
//! tree) is never touched: its pid means nothing here. The old names are only removed when
//! empty.

use std::fs;
use std::path::Path;

/// Where cgroup hierarchies are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// What a sweep of stale cgroups did: the same account as the store's sweep of `tmp/`.
pub use hush_oci::store::Swept;

/// The inode of this process's PID namespace (0 when it cannot be read); it never changes.
pub fn pid_namespace() -> u64 {
    static NS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *NS.get_or_init(|| {
        fs::metadata("/proc/self/ns/pid").map_or(0, |m| std::os::unix::fs::MetadataExt::ino(&m))
    })
}

/// Kill what is left in the cgroups of hush containers whose hush is gone, and remove them.
pub fn sweep_stale() -> Swept {
    sweep_in(
        Path::new(CGROUP_ROOT),
        pid_namespace(),
        &|pid| Path::new("/proc").join(pid.to_string()).exists(),
        &|pid| {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        },
    )
}

fn sweep_in(root: &Path, ns: u64, alive: &dyn Fn(u32) -> bool, kill: &dyn Fn(u32)) -> Swept {
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
    // (cgroup, whether its processes are ours to kill)
    let mut stale = Vec::new();
    for h in hierarchies {
        if let Ok(rd) = fs::read_dir(h.join("hush")) {
            for e in rd.flatten() {
                let name = e.file_name();
                match name.to_str().and_then(creator) {
                    Some((pid, n)) if n == ns && !alive(pid) => stale.push((e.path(), true)),
                    _ => {}
                }
            }
        }
        if let Ok(rd) = fs::read_dir(&h) {
            for e in rd.flatten() {
                let name = e.file_name();
                match name.to_str().and_then(legacy_creator) {
                    Some(pid) if !alive(pid) => stale.push((e.path(), false)),
                    _ => {}
                }
            }
        }
    }
    for (cg, ours) in &stale {
        if !ours {
            continue;
        }
        let procs = fs::read_to_string(cg.join("cgroup.procs")).unwrap_or_default();
        // 0 stands for a process of another PID namespace (cgroup v2): never a pid to signal.
        for p in procs.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
            if p > 0 {
                kill(p);
            }
        }
    }
    for (cg, _) in stale {
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

fn number(s: &str) -> Option<u64> {
    (!s.is_empty() && s.chars().all(|c| c.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn hex(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// The pid and PID namespace in a hush container's cgroup name `hush-PID-PIDNS-HEX`.
fn creator(name: &str) -> Option<(u32, u64)> {
    let mut parts = name.strip_prefix("hush-")?.splitn(3, '-');
    let (pid, ns, rand) = (parts.next()?, parts.next()?, parts.next()?);
    hex(rand).then_some(())?;
    Some((u32::try_from(number(pid)?).ok()?, number(ns)?))
}

/// The pid in an old hush container's cgroup name `:youki:hush-PID-HEX`.
fn legacy_creator(name: &str) -> Option<u32> {
    let (pid, rand) = name.strip_prefix(":youki:hush-")?.split_once('-')?;
    hex(rand).then_some(())?;
    u32::try_from(number(pid)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn only_hush_container_cgroups_of_dead_pids_go_and_their_processes_are_killed() {
        assert_eq!(creator("hush-123-77-00ab"), Some((123, 77)));
        assert_eq!(legacy_creator(":youki:hush-123-00ab"), Some(123));
        for other in [
            "other-1-2-3",
            "hush-1-2-",
            "hush-x-1-aa",
            "hush-1-2-zz",
            "hush-1-aa",
        ] {
            assert_eq!(creator(other), None, "{other}");
        }
        let t = tempfile::tempdir().unwrap();
        let cpu = t.path().join("cpu");
        // What stays: a stale group still holding a process, a live one, another PID namespace's,
        // a group hush did not make, and no container's at all.
        let kept = [
            "hush/hush-1-7-aa",
            "hush/hush-2-7-bb",
            "hush/hush-1-8-cc",
            "hush/web-1-7-aa",
            "system.slice",
        ];
        for d in kept {
            fs::create_dir_all(cpu.join(d)).unwrap();
        }
        fs::create_dir_all(t.path().join(":youki:hush-1-cc")).unwrap();
        // A stale cgroup with processes in it: a real one empties when they are killed; this fake
        // stays non-empty, so its removal fails and is reported. `0` (a process of another PID
        // namespace, on cgroup v2) is never signalled: kill(0) would hit our own group.
        fs::write(cpu.join("hush/hush-1-7-aa/cgroup.procs"), "42\n0\n").unwrap();
        // Another PID namespace's cgroup: its pid 1 means nothing here.
        fs::write(cpu.join("hush/hush-1-8-cc/cgroup.procs"), "43\n").unwrap();
        let killed = RefCell::new(Vec::new());
        let s = sweep_in(t.path(), 7, &|pid| pid == 2, &|p| {
            killed.borrow_mut().push(p)
        });
        assert_eq!(killed.into_inner(), vec![42]);
        assert_eq!(s.removed, vec![t.path().join(":youki:hush-1-cc")]);
        assert_eq!(s.kept.len(), 1, "ENOTEMPTY is reported: {:?}", s.kept);
        for d in kept {
            assert!(cpu.join(d).is_dir(), "{d}");
        }
    }
}
