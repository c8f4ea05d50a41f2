//! Builds a Dockerfile into an image in the store.
//!
//! The frontend gives typed stages; this crate picks the stages `--target` needs, dispatches each
//! on its base image's configuration, and runs every filesystem step in an overlay snapshot:
//! RUN in a container, COPY/ADD and WORKDIR as file operations. Each step has a content-addressed
//! cache key (parent key, the expanded instruction, the inputs' digests; never a secret's value);
//! a hit reuses the layer. A step's upper directory *is* its layer: it is written once as a tar
//! (digest computed while writing) and kept as the snapshot later steps stack on.
#![deny(missing_docs)]

mod backend;
#[cfg(test)]
mod build_tests;
mod cache;
mod config;
mod copy;
mod error;
mod fetch;
mod graph;
pub mod lint;
mod masked;
mod network;
mod plan;
mod platform;
mod preflight;
mod stage;
mod tainted;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use backend::{Backend, Executor, Snapshot, Snapshotter};
pub use cache::read_key_file;
pub use error::{Entitlement, Error, Leak, MissingMount, MountId, Result};
pub use graph::{build, dockerignore_paths, read_dockerignore};
use hush_dockerfile::Location;
/// The leak guard's default minimum length.
pub use hush_scan::DEFAULT_MIN_LEN as DEFAULT_LEAK_MIN_LEN;

/// The default cap on what ADD of one local archive may unpack to: 16 GiB. BuildKit has none,
/// but then a 16 MiB gzip of zeros fills a disk; the largest archives ADDed in practice (JDKs,
/// toolchains, the CUDA toolkit) unpack to a few GiB. `--max-unpack-size` raises it.
pub const DEFAULT_MAX_UNPACK_SIZE: u64 = 16 << 30;

/// The default cap on one `ADD https://…` download: 16 GiB, the unpack cap's size (BuildKit has
/// none; an endless body would fill the disk). The largest files ADDed in practice (the CUDA
/// runfile, JDK and toolchain tarballs) are a few GiB. `--max-download-size` changes it.
pub const DEFAULT_MAX_DOWNLOAD_SIZE: u64 = 16 << 30;

/// Everything a build needs.
pub struct BuildOptions {
    /// The Dockerfile's text.
    pub dockerfile: String,
    /// Its name for messages.
    pub dockerfile_name: String,
    /// The build context directory.
    pub context: PathBuf,
    /// `--target`.
    pub target: Option<String>,
    /// `--build-arg`.
    pub build_args: BTreeMap<String, String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--network` for the RUNs that do not ask for their own: `default` is the build's
    /// private network (pasta), `none` an empty namespace, `host` the host's.
    pub network: hush_dockerfile::instructions::NetworkMode,
    /// `--allow network.host`: RUNs may ask for `--network=host`.
    pub allow_network_host: bool,
    /// `--allow security.insecure`: RUNs may ask for `--security=insecure`.
    pub allow_security_insecure: bool,
    /// `--secret`s.
    pub secrets: hush_secrets::Secrets,
    /// `--ssh` agents.
    pub ssh: hush_secrets::ssh::Agents,
    /// `-t`.
    pub tags: Vec<String>,
    /// `--label`.
    pub labels: BTreeMap<String, String>,
    /// `SOURCE_DATE_EPOCH`: fixed timestamps.
    pub source_date_epoch: Option<i64>,
    /// Which build-arg values RUN history entries record (`--history-build-args`).
    pub history_build_args: HistoryBuildArgs,
    /// What the pre-build lint does (`--lint`).
    pub lint: LintMode,
    /// What the leak guard does on a finding.
    pub leak_check: LeakCheck,
    /// Shorter values are reported as too short to guard.
    pub leak_min_len: usize,
    /// What each RUN may use (`--pids-limit`, `--memory`, `--ulimit`).
    pub limits: hush_sandbox::container::Limits,
    /// The most bytes ADD may unpack from one local archive.
    pub max_unpack_size: u64,
    /// The most bytes one `ADD https://…` may download.
    pub max_download_size: u64,
    /// What ADD's downloads trust and go through (`--registry-ca`; proxies from the
    /// environment), hush-registry's agent as for pulls.
    pub http: hush_registry::Options,
    /// `--pull`.
    pub pull: PullPolicy,
    /// `--add-host`: more lines of every RUN's `/etc/hosts`.
    pub add_hosts: Vec<(String, std::net::IpAddr)>,
    /// The shared key secret values are fingerprinted under (`HUSH_CACHE_KEY_FILE`, see
    /// [`read_key_file`]); none: the store's own.
    pub cache_key: Option<hush_secrets::Secret>,
}

/// `--pull`: when an image a Dockerfile names (`FROM`, `COPY --from`, `--mount from=`) is
/// fetched from its registry (buildx's `--pull`, docker's `--pull=missing|always|never`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// When the store lacks it (the default).
    #[default]
    Missing,
    /// Always: the tag is checked again, and what changed is fetched (`--pull`).
    Always,
    /// Never: the build uses the store only (offline).
    Never,
}

/// Why a pull failed (the registry client's error).
pub type PullError = Box<dyn std::error::Error + Send + Sync>;

/// Fetches an image from its registry into the store: hush-registry, wired in by the binary.
pub trait Puller: Sync {
    /// Pull `name` (as the Dockerfile names it) for `platform` (`os/arch[/variant]`, the
    /// host's when none) into the store, and return the stored image.
    fn pull(
        &self,
        name: &str,
        platform: Option<&str>,
    ) -> std::result::Result<hush_oci::store::Image, PullError>;
}

/// `--history-build-args`: which build-arg values RUN history entries record (docker writes
/// them all). See [`hush_dockerfile::instructions::dispatch::HistoryArgs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HistoryBuildArgs {
    /// Every value, as docker does.
    All,
    /// Every value but those of secret-looking names and of values that are a `--secret`'s or
    /// match a detector rule (`NAME=<redacted>`, with a warning). The default.
    #[default]
    Safe,
    /// None: `RUN /bin/sh -c …` only.
    None,
}

/// `--lint`: what the lint run before the build does. Separate from `--leak-check`: relaxing the
/// lint leaves the leak guard as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LintMode {
    /// Errors (and warnings under `# check=error=true`) stop the build (the default).
    #[default]
    Error,
    /// Everything is reported as a warning.
    Warn,
    /// No lint.
    Off,
}

/// `--leak-check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeakCheck {
    /// Fail the build (the default).
    Error,
    /// Report and go on.
    Warn,
    /// Do not scan.
    Off,
}

/// Progress events; the binary renders them.
pub trait Reporter: Sync {
    /// A step starts (`[stage n/m] INSTRUCTION`).
    fn step(&self, id: usize, stage: &str, text: &str, location: Location);
    /// A step was found in the cache.
    fn cached(&self, id: usize);
    /// Output of a RUN.
    fn output(&self, id: usize, chunk: &[u8]);
    /// A note about a step (e.g. how many ssh signatures it asked for).
    fn info(&self, id: usize, message: &str);
    /// A step is done.
    fn done(&self, id: usize, seconds: f64);
    /// Something the user should know.
    fn warn(&self, message: &str);
}
