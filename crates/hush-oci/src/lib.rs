//! Images on disk: the content-addressed [`store::Store`], image configs and manifests
//! ([`image`]), layers as tar streams ([`layer`]), images read from the store, a docker-archive or
//! an OCI layout ([`source`]) and written out ([`export`]).
//!
//! Layers are kept twice in the store, both immutable: as an uncompressed tar blob (what
//! manifests reference and exports copy) and as an unpacked snapshot directory in overlayfs
//! format (what builds stack as lower dirs). Compression happens on export.
#![deny(missing_docs)]

pub mod archive;
pub mod bounded;
pub mod compress;
/// The `tar` crate, re-exported for writers of archives of our blobs.
pub use tar;
pub mod digest;
mod error;
pub mod export;
pub mod image;
pub mod layer;
pub mod reference;
pub mod source;
pub mod store;
pub mod tarindex;

pub use digest::Digest;
pub use error::{Error, Result};
