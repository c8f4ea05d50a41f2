//! Pull and push images over the [OCI distribution API], as a blocking client.
//!
//! - [`pull`](fn@pull) fetches an image (an OCI index or manifest, a docker manifest list or schema2
//!   manifest; the platform picked from an index) into the [`hush_oci::store::Store`]: every
//!   manifest and blob is checked against its digest and size while it streams, layers
//!   download a few at a time and are unpacked as their bytes arrive, a layer the store has is
//!   not fetched again, and nothing is committed until everything has been checked.
//! - [`push`](fn@push) sends an image of the store: blobs the registry has are skipped (`HEAD`), a blob
//!   it has in another repository is mounted, layers are gzipped deterministically (the same
//!   layer pushes as the same blob), the manifest goes last.
//! - [`RegistryImage`] reads an image of a registry as a `hush_oci::source::ImageSource`
//!   (what `hush audit REF` and `hush history REF` read), storing nothing.
//! - Credentials come from docker's `config.json` (`auths`, `credsStore`, `credHelpers`), as
//!   `docker login` writes them ([`DockerConfig`]); the bearer-token flow and basic auth are
//!   spoken as the registry's `WWW-Authenticate` asks. A credential is a
//!   [`hush_secrets::Secret`]: it never reaches an error, a log line or a progress event.
//!
//! Libraries never print: what happens is reported to a [`Progress`].
//!
//! ```no_run
//! # fn main() -> Result<(), hush_registry::Error> {
//! let store = hush_oci::store::Store::open("/var/lib/hush")?;
//! let reference = hush_registry::ImageRef::parse("127.0.0.1:5000/app:1")?;
//! let pulled = hush_registry::pull(&store, &reference, &hush_registry::Options::default(), &())?;
//! println!("{}", pulled.digest);
//! # Ok(()) }
//! ```
//!
//! [OCI distribution API]: https://github.com/opencontainers/distribution-spec/blob/main/spec.md
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod auth;
mod client;
mod credentials;
mod dockerconfig;
pub mod download;
mod error;
mod login;
mod manifest;
mod mirrors;
mod options;
mod progress;
mod pull;
mod push;
mod readahead;
mod reference;
mod remote;
mod sources;
mod verify;

pub use credentials::Credentials;
pub use dockerconfig::DockerConfig;
pub use error::{Error, Result};
pub use login::{login, logout};
pub use mirrors::Tried;
pub use options::{Options, Platform};
pub use progress::{Event, Progress};
pub use pull::{pull, Pulled};
pub use push::{push, Pushed};
pub use reference::ImageRef;
pub use remote::RegistryImage;
