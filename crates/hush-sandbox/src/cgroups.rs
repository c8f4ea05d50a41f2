//! Cgroups left by RUN containers whose hush was killed.
//!
//! libcontainer puts a container `ID` in the cgroup `:youki:ID` at the root of each hierarchy
//! (every v1 controller, and the v2 tree), and removes it when the helper deletes the container.
//! A helper killed with `kill -9`, or one whose work dir was swept while its container still ran,
//! never does. hush names its containers `hush-PID-RANDOM` with the pid of the process that
//! created them, so a cgroup of that form whose process is gone is stale. Removal is `rmdir`
//! only, which the kernel refuses for a cgroup that still holds a process: nothing running is
//! ever touched.

use std::fs;
use std::path::{Path, PathBuf};

/// Where cgroup hierarchies are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// What a sweep of stale cgroups did.
#[derive(Debug, Default)]
pub struct Swept {
    /// Cgroup directories removed.
    pub removed: Vec<PathBuf>,
    /// Those that could not be removed for another reason than still holding processes.
    pub kept: Vec<(PathBuf, std::io::Error)>,
}

/// Remove the cgroups of hush containers whose creating process is gone.
pub fn sweep_stale() -> Swept {
    sweep_in(Path::new(CGROUP_ROOT), &|pid| {
        Path::new("/proc").join(pid.to_string()).exists()
    })
}

fn sweep_in(root: &Path, alive: &dyn Fn(u32) -> bool) -> Swept {
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
    for h in hierarchies {
        let Ok(rd) = fs::read_dir(&h) else { continue };
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(pid) = name.to_str().and_then(creator_pid) else {
                continue;
            };
            if alive(pid) {
                continue;
            }
            match fs::remove_dir(e.path()) {
                Ok(()) => out.removed.push(e.path()),
                Err(err) if err.raw_os_error() == Some(libc::EBUSY) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => out.kept.push((e.path(), err)),
            }
        }
    }
    out
}

/// The pid in a hush container's cgroup name `:youki:hush-PID-HEX`.
fn creator_pid(name: &str) -> Option<u32> {
    let (pid, hex) = name.strip_prefix(":youki:hush-")?.split_once('-')?;
    let hex_ok = !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit());
    let pid_ok = !pid.is_empty() && pid.chars().all(|c| c.is_ascii_digit());
    (hex_ok && pid_ok).then(|| pid.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hush_container_cgroups_of_dead_pids_go() {
        assert_eq!(creator_pid(":youki:hush-123-00ab"), Some(123));
        for other in [
            ":youki:other-1-2",
            "hush-1-2",
            ":youki:hush-1-",
            ":youki:hush-x-1",
        ] {
            assert_eq!(creator_pid(other), None, "{other}");
        }
        let t = tempfile::tempdir().unwrap();
        let cpu = t.path().join("cpu");
        for d in [
            ":youki:hush-1-aa",
            ":youki:hush-2-bb",
            ":youki:web-1-aa",
            "system.slice",
        ] {
            fs::create_dir_all(cpu.join(d)).unwrap();
        }
        fs::create_dir_all(t.path().join(":youki:hush-1-cc")).unwrap();
        // A stale cgroup with a process in it: here a non-empty directory, which rmdir refuses.
        fs::write(cpu.join(":youki:hush-1-aa/cgroup.procs"), "42\n").unwrap();
        let s = sweep_in(t.path(), &|pid| pid == 2);
        assert_eq!(s.removed, vec![t.path().join(":youki:hush-1-cc")]);
        assert_eq!(s.kept.len(), 1, "ENOTEMPTY is reported: {:?}", s.kept);
        for d in [
            ":youki:hush-1-aa",
            ":youki:hush-2-bb",
            ":youki:web-1-aa",
            "system.slice",
        ] {
            assert!(cpu.join(d).is_dir(), "{d}");
        }
    }
}
