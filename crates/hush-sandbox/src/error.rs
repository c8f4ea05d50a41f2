use std::path::PathBuf;

/// Errors of the sandbox.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A filesystem or system call failed.
    #[error("failed to {action} {path}")]
    Io {
        /// What.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Mounting the overlay failed.
    #[error("failed to mount overlay at {path}")]
    Mount {
        /// The mount point.
        path: PathBuf,
        /// Why.
        #[source]
        source: nix::Error,
    },
    /// An image and its stage's steps stack more layers than one overlay can mount.
    #[error("failed to mount {layers} layers: hush stacks at most {max} (docker's overlay2 driver allows 125); squash some RUN steps")]
    TooManyLayers {
        /// Layers asked for.
        layers: usize,
        /// The limit.
        max: usize,
    },
    /// The container could not be created or started.
    #[error("failed to start the build container: {0}")]
    Container(String),
    /// `pasta` (package `passt`) is not installed; the private network needs it.
    #[error("failed to find pasta (package passt), which the default RUN network needs")]
    PastaMissing,
    /// pasta did not come up.
    #[error("failed to start pasta for the build network: {message}")]
    Pasta {
        /// What pasta said, or how it ended.
        message: String,
    },
    /// Setting up the build network failed.
    #[error("failed to {action}")]
    Network {
        /// What.
        action: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// USER names someone the image does not know.
    #[error("unable to find user {0}: no matching entries in passwd file")]
    UnknownUser(String),
    /// A group the image does not know.
    #[error("unable to find group {0}: no matching entries in group file")]
    UnknownGroup(String),
    /// A path that resolves outside its root.
    #[error("path {0:?} resolves outside the root")]
    Escape(String),
    /// The built-in seccomp policy did not parse, or libseccomp could not compile it.
    #[error("failed to read the seccomp policy: {0}")]
    Seccomp(String),
    /// An argument, environment string or the working directory of a RUN holds a NUL byte,
    /// which no process can be given (the container's init would panic on it).
    #[error("failed to start the build container: its {what} holds a NUL byte")]
    NulByte {
        /// Which string: `argument 2`, `environment variable PATH`, … (never its value).
        what: String,
    },
    /// Layer handling.
    #[error(transparent)]
    Oci(#[from] hush_oci::Error),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) trait IoContext<T> {
    fn ctx(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            action,
            path: path.into(),
            source,
        })
    }
}

impl<T> IoContext<T> for nix::Result<T> {
    fn ctx(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::Io {
            action,
            path: path.into(),
            source: e.into(),
        })
    }
}
