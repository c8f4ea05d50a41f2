//! Where steps run: overlayfs snapshots ([`overlay`]), RUN in an OCI container through youki's
//! embedded `libcontainer` ([`container`]) on its [`network`], and file operations confined to a
//! root ([`rootfs`]).
#![deny(missing_docs)]

pub mod cgroups;
pub mod container;
mod error;
pub mod mounts;
pub mod network;
pub mod overlay;
pub mod rootfs;
mod seccomp;
pub mod signals;
pub mod user;

pub use error::{Error, Result};

/// Give this process a mount namespace of its own, whose mounts do not propagate to the host's
/// (the host's still reach it). Every overlay and tmpfs a build mounts then lives there: no
/// other process sees them, and when the build's last process ends — killed with SIGKILL
/// included — the kernel unmounts them all, secrets' tmpfs included. Must be called before the
/// process starts a thread; without the privilege to do it (not root), mounts stay shared and
/// the overlay mount reports that hush needs root.
pub fn isolate_mounts() {
    use nix::mount::{mount, MsFlags};
    use nix::sched::{unshare, CloneFlags};
    if unshare(CloneFlags::CLONE_NEWNS).is_ok() {
        let _ = mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_SLAVE,
            None::<&str>,
        );
        MOUNTS_ISOLATED.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Did [`isolate_mounts`] give this process a mount namespace of its own?
static MOUNTS_ISOLATED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub(crate) fn mounts_isolated() -> bool {
    MOUNTS_ISOLATED.load(std::sync::atomic::Ordering::SeqCst)
}
/// Errno, for callers that explain mount failures.
pub use nix::errno::Errno;
