//! The solver's two seams with the machine: where a step's filesystem is mounted
//! ([`Snapshotter`]) and where a RUN executes ([`Executor`]). The binary wires in
//! [`Backend::sandbox`] (overlayfs and youki's libcontainer, which need root); the solver's
//! unit tests wire in doubles that need neither, so cache keys, mount mapping and leak reports
//! are tested without root (youki's `Syscall` trait and its recording double are the model).

use std::path::{Path, PathBuf};

use hush_sandbox::container::{RunSpec, SecretDir};
use hush_sandbox::overlay::{Overlay, Stub};

use crate::Result;

/// Mounts a step's filesystem.
pub trait Snapshotter: Sync {
    /// A writable view of `lowers` (topmost first), under `dir` (which exists), whose changes
    /// go to a fresh upper directory. `stubs` are mount points that must exist in the view
    /// without being part of the changes.
    fn mount(&self, dir: &Path, lowers: &[PathBuf], stubs: &[Stub]) -> Result<Box<dyn Snapshot>>;
}

/// A mounted view; unmounted when dropped.
pub trait Snapshot: Send {
    /// The merged view.
    fn merged(&self) -> PathBuf;
    /// Where the changes go.
    fn upper(&self) -> PathBuf;
    /// Unmount, keeping the changes: the upper directory, in overlayfs format (the layer).
    fn finish(self: Box<Self>) -> Result<PathBuf>;
}

/// Runs RUN steps.
pub trait Executor: Sync {
    /// The directory for one RUN's secret files and scripts (`exec`: files on it may be run).
    fn secret_dir(&self, dir: &Path, exec: bool) -> Result<SecretDir>;
    /// Run `spec` with `rootfs` as `/`; `bundle` is a private scratch directory; output chunks
    /// go to `output`. The exit code.
    fn run(
        &self,
        bundle: &Path,
        rootfs: &Path,
        spec: &RunSpec,
        output: &mut dyn FnMut(&[u8]),
    ) -> Result<i32>;
}

/// What a build runs on.
#[derive(Clone, Copy)]
pub struct Backend<'a> {
    /// Mounts snapshots.
    pub snapshots: &'a dyn Snapshotter,
    /// Runs RUNs.
    pub executor: &'a dyn Executor,
    /// Fetches the images the store lacks (`--pull`); none: the store only.
    pub registry: Option<&'a dyn crate::Puller>,
}

impl Backend<'static> {
    /// overlayfs snapshots and RUN in a container (hush-sandbox), images from the store only:
    /// what a build runs on (the binary adds the registry).
    pub fn sandbox() -> Self {
        Backend {
            snapshots: &Sandbox,
            executor: &Sandbox,
            registry: None,
        }
    }
}

/// hush-sandbox behind the seams.
struct Sandbox;

impl Snapshotter for Sandbox {
    fn mount(&self, dir: &Path, lowers: &[PathBuf], stubs: &[Stub]) -> Result<Box<dyn Snapshot>> {
        Ok(Box::new(Overlay::mount(dir, lowers, stubs)?))
    }
}

impl Snapshot for Overlay {
    fn merged(&self) -> PathBuf {
        Overlay::merged(self)
    }

    fn upper(&self) -> PathBuf {
        Overlay::upper(self)
    }

    fn finish(self: Box<Self>) -> Result<PathBuf> {
        Ok(Overlay::finish(*self)?)
    }
}

impl Executor for Sandbox {
    fn secret_dir(&self, dir: &Path, exec: bool) -> Result<SecretDir> {
        Ok(SecretDir::mount(dir, exec)?)
    }

    fn run(
        &self,
        bundle: &Path,
        rootfs: &Path,
        spec: &RunSpec,
        output: &mut dyn FnMut(&[u8]),
    ) -> Result<i32> {
        Ok(hush_sandbox::container::run(bundle, rootfs, spec, output)?)
    }
}
