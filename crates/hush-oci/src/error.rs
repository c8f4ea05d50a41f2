use std::path::PathBuf;

use crate::Digest;

/// Errors of the image store and layer handling.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A filesystem operation failed.
    #[error("failed to {action} {path}")]
    Io {
        /// What we tried.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An extended attribute a layer gives a file could not be set.
    #[error("failed to set extended attribute {name:?} on {path}")]
    Xattr {
        /// The attribute's name.
        name: String,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Written or read content does not hash to its name.
    #[error("digest mismatch for {expected}: content hashes to {actual}")]
    DigestMismatch {
        /// The digest we were told.
        expected: Digest,
        /// The digest of the bytes.
        actual: Digest,
    },
    /// A blob longer or shorter than its descriptor says (a size that lies).
    #[error(
        "size mismatch for {digest}: its descriptor says {expected} bytes, the blob has {actual}"
    )]
    SizeMismatch {
        /// The blob.
        digest: Digest,
        /// The size its descriptor gives.
        expected: u64,
        /// The bytes read (so far, when it went on past `expected`).
        actual: u64,
    },
    /// An image config that does not list one diff id per layer.
    #[error("the image config lists {diff_ids} diff ids for {layers} layers")]
    ConfigLayers {
        /// `rootfs.diff_ids` in the config.
        diff_ids: usize,
        /// Layers the image has.
        layers: usize,
    },
    /// A digest string that is not `sha256:<64 hex>`.
    #[error("invalid digest {0:?}")]
    InvalidDigest(String),
    /// No image by that name or id.
    #[error("image {0:?} not found")]
    ImageNotFound(String),
    /// An image name that is not a valid reference.
    #[error(transparent)]
    Reference(#[from] crate::reference::ReferenceError),
    /// A tar entry that would land outside its root.
    #[error("unsafe path {path:?} in layer: {reason}")]
    UnsafePath {
        /// The entry's path as written in the tar.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// JSON that is not what it should be.
    #[error("failed to parse {what}")]
    Json {
        /// Which document.
        what: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// An archive without what it needs.
    #[error("invalid archive {path}: {reason}")]
    InvalidArchive {
        /// The archive.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A store root that belongs to another user than the one running hush.
    #[error(
        "refusing to use store {path}: it belongs to uid {owner}, not to uid {user} running hush"
    )]
    ForeignStore {
        /// The store root.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Who runs hush (the effective uid).
        user: u32,
    },
    /// A stream longer, or an archive that unpacks to more, than the limit (decompression
    /// bombs).
    #[error("more than the limit of {limit} bytes uncompressed")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// A member of an archive that cannot be used.
    #[error("failed to read {member} of {archive}")]
    Member {
        /// The archive, as the user named it.
        archive: PathBuf,
        /// The member's name.
        member: String,
        /// Why.
        #[source]
        source: Box<Error>,
    },
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attach the path and action to an io error.
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
