//! An overlayfs mount of a stack of snapshots with a fresh upper directory.
//!
//! Mount points a step needs (`/proc`, `/etc/hosts`, `/run/secrets/<id>`, …) live in a *stub*
//! directory stacked as the topmost lower layer, so they exist in the merged view without ever
//! being created in the upper directory: the step's layer holds no mount stubs and its parent
//! directories keep their timestamps, with no cleanup pass afterwards.

use std::fs;
use std::path::{Path, PathBuf};

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::IoContext;
use crate::{Error, Result};

/// The most layers (an image's and a stage's steps, plus hush's stub layer) one overlay stacks:
/// each layer's `/proc/self/fd/N` must fit in mount(2)'s page of options (overlayfs itself
/// allows 500). docker's overlay2 allows 128; an image deeper than this fails with a clear
/// error instead of EINVAL.
pub const MAX_LAYERS: usize = 200;

/// A mounted overlay. Unmounts on drop if [`Overlay::finish`] was not called.
#[derive(Debug)]
pub struct Overlay {
    dir: PathBuf,
    mounted: bool,
}

/// A mount point to pre-create in the stub layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stub {
    /// A directory.
    Dir(String),
    /// An empty file.
    File(String),
}

impl Overlay {
    /// Mount `lowers` (topmost first) with a new upper dir, all under `dir` (which must exist and
    /// be on the same filesystem as where the upper will be kept).
    pub fn mount(dir: &Path, lowers: &[PathBuf], stubs: &[Stub]) -> Result<Overlay> {
        let (upper, work, merged, stub) = (
            dir.join("upper"),
            dir.join("work"),
            dir.join("merged"),
            dir.join("stub"),
        );
        for d in [&upper, &work, &merged, &stub] {
            fs::create_dir_all(d).ctx("create", d)?;
        }
        for s in stubs {
            let (path, is_dir) = match s {
                Stub::Dir(p) => (p, true),
                Stub::File(p) => (p, false),
            };
            let rel = hush_oci::layer::safe_relative(path)?;
            if rel.as_os_str().is_empty() {
                continue;
            }
            let full = stub.join(&rel);
            if let Some(parent) = full.parent() {
                fs::create_dir_all(parent).ctx("create", parent)?;
            }
            if is_dir {
                fs::create_dir_all(&full).ctx("create", &full)?;
            } else if !full.exists() {
                fs::write(&full, b"").ctx("create", &full)?;
            }
        }
        let mut all: Vec<&Path> = vec![&stub];
        all.extend(lowers.iter().map(PathBuf::as_path));
        if all.len() > MAX_LAYERS {
            return Err(Error::TooManyLayers {
                layers: all.len() - 1,
                max: MAX_LAYERS - 1,
            });
        }
        // Each directory by a descriptor, named `/proc/self/fd/N` in the options: ~17 bytes a
        // layer where a path in the store takes ~45. The options of mount(2) must fit in a page
        // (4096 bytes: a 76-layer stack of store paths did not), and every read of
        // /proc/self/mountinfo prints them — libcontainer's cgroup v1 manager reads it ~27 times
        // per RUN, and a deep stack made that cost grow with each step.
        let open = |p: &Path| {
            nix::fcntl::open(
                p,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map(|fd| {
                // SAFETY: open returned a new descriptor that nothing else owns.
                unsafe { OwnedFd::from_raw_fd(fd) }
            })
            .map_err(std::io::Error::from)
            .ctx("open", p)
        };
        let fds = all.iter().map(|p| open(p)).collect::<Result<Vec<_>>>()?;
        let (upper_fd, work_fd) = (open(&upper)?, open(&work)?);
        let name = |fd: &OwnedFd| format!("/proc/self/fd/{}", fd.as_raw_fd());
        let lowerdir: Vec<String> = fds.iter().map(name).collect();
        let opts = format!(
            "lowerdir={},upperdir={},workdir={},index=off,redirect_dir=off,metacopy=off,volatile",
            lowerdir.join(":"),
            name(&upper_fd),
            name(&work_fd)
        );
        // nodev: a device node in a layer (an image's, or one a RUN makes with mknod) cannot be
        // opened from the rootfs, whatever the cgroup's device rules are (cgroup v2 needs an eBPF
        // program libcontainer is not built with here). The RUN's /dev is a mount of its own.
        mount(
            Some("overlay"),
            &merged,
            Some("overlay"),
            MsFlags::MS_NODEV,
            Some(opts.as_str()),
        )
        .map_err(|source| Error::Mount {
            path: merged.clone(),
            source,
        })?;
        Ok(Overlay {
            dir: dir.to_path_buf(),
            mounted: true,
        })
    }

    /// The merged view.
    pub fn merged(&self) -> PathBuf {
        self.dir.join("merged")
    }

    /// The upper directory (the step's changes).
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    /// Unmount; the upper dir then holds exactly the step's changes.
    pub fn finish(mut self) -> Result<PathBuf> {
        self.unmount()?;
        let _ = fs::remove_dir_all(self.dir.join("work"));
        Ok(self.upper())
    }

    fn unmount(&mut self) -> Result<()> {
        if self.mounted {
            let m = self.merged();
            umount2(&m, MntFlags::empty())
                .or_else(|_| umount2(&m, MntFlags::MNT_DETACH))
                .ctx("unmount", &m)?;
            self.mounted = false;
        }
        Ok(())
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = self.unmount();
    }
}
