//! Where steps run: overlayfs snapshots ([`overlay`]), RUN in an OCI container through youki's
//! embedded `libcontainer` ([`container`]) on its [`network`], and file operations confined to a
//! root ([`rootfs`]).
#![deny(missing_docs)]

pub mod container;
mod error;
pub mod network;
pub mod overlay;
pub mod rootfs;
pub mod signals;
pub mod user;

pub use error::{Error, Result};
/// Errno, for callers that explain mount failures.
pub use nix::errno::Errno;
