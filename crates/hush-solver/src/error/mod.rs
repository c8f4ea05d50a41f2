//! Why a build failed: one variant per cause, with typed fields (ids, paths, platforms, the
//! entitlement, the lint finding, the source error) and its Dockerfile location.
//! [`Error::hint`] says what to do and [`Error::location`] where ([`hint`]); before an error
//! leaves the build, [`Error::masked`] replaces every secret form in its text ([`mask`]).

mod hint;
mod mask;

use std::fmt;
use std::path::PathBuf;

use hush_dockerfile::instructions::platform::Platform;
use hush_dockerfile::Location;

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Dockerfile is wrong.
    #[error(transparent)]
    Dockerfile(#[from] hush_dockerfile::ParseError),
    /// `required` secret or ssh mounts of the plan that the build was not given, all at once
    /// (checked before any step runs).
    #[error(
        "required {} not given: {}{}",
        if mounts.len() == 1 { "mount is" } else { "mounts are" },
        MissingMount::list(mounts),
        if mounts.iter().any(|m| matches!(m.id, MountId::Ssh(_))) { " (no SSH key forwarded)" } else { "" }
    )]
    MissingMounts {
        /// Each missing id once, where it is first asked for, in Dockerfile order (never empty).
        mounts: Vec<MissingMount>,
    },
    /// A secret that a RUN mounts `required` was not given.
    #[error("secret {id} not found")]
    MissingSecret {
        /// The secret's id.
        id: String,
        /// The RUN.
        location: Location,
    },
    /// An ssh agent that a RUN mounts `required` was not given.
    #[error("no SSH key {id:?} forwarded from the client")]
    MissingSsh {
        /// The ssh id.
        id: String,
        /// The RUN.
        location: Location,
    },
    /// `RUN --mount=type=secret,env=VAR` of a secret that is no text.
    #[error("secret {id} is not valid UTF-8 and cannot be put in env {var}")]
    SecretNotUtf8 {
        /// The secret's id.
        id: String,
        /// The variable.
        var: String,
        /// The RUN.
        location: Location,
    },
    /// A RUN asks for what the build was not entitled to (`--allow` not given).
    #[error("RUN {} needs the {entitlement} entitlement, which this build was not given", entitlement.flag())]
    NotEntitled {
        /// What it asks for.
        entitlement: Entitlement,
        /// The RUN.
        location: Location,
    },
    /// An error of the lint that runs before the build (`--lint=error`).
    #[error(
        "{} ({}){}",
        finding.message,
        finding.rule,
        match more { 0 => String::new(), n => format!(" (and {n} more lint error(s): `hush lint` lists them)") }
    )]
    Lint {
        /// The first error.
        finding: Box<hush_dockerfile::lint::Finding>,
        /// How many more errors there are.
        more: usize,
    },
    /// Stages that read each other (`COPY --from`, `FROM`, `--mount=from=`) in a loop.
    #[error("circular dependency between stages")]
    CircularStages {
        /// The stage found again while planning it.
        stage: usize,
        /// Its FROM.
        location: Location,
    },
    /// `FROM --platform=P image` where the store's `image` is for another platform.
    #[error("FROM --platform={asked}: the image {image} in the store is for {found}, not {asked}")]
    PlatformMismatch {
        /// The image.
        image: String,
        /// The platform the stage asks for.
        asked: Box<Platform>,
        /// The image's.
        found: Box<Platform>,
        /// The FROM.
        location: Location,
    },
    /// A RUN in a stage for another platform than the host's.
    #[error("this stage is for {stage} and this host runs {host}: hush cannot run another platform's programs (no emulation), and {}", match run_line { Some(l) => format!("the stage RUNs on line {l}"), None => "its base image has an ONBUILD RUN".to_string() })]
    ForeignPlatformRun {
        /// The stage's platform.
        stage: Box<Platform>,
        /// The host's.
        host: Box<Platform>,
        /// The stage's FROM: the error is there, before any step of the build runs.
        location: Location,
        /// The line of the stage's first RUN (none: a RUN trigger of the base image).
        run_line: Option<usize>,
    },
    /// A step read a stage that had not been built (a bug in the scheduler).
    #[error("stage {stage} was not built")]
    StageNotBuilt {
        /// The stage's index.
        stage: usize,
        /// The step.
        location: Location,
    },
    /// A RUN on the build's private network, which was not started (a bug in hush).
    #[error("the build's private network was not started (a bug in hush)")]
    NoPrivateNetwork {
        /// The RUN.
        location: Location,
    },
    /// The user a RUN runs as (`USER`) is not in the image.
    #[error("failed to resolve the user {user:?} to run as")]
    User {
        /// `USER`'s value.
        user: String,
        /// The RUN.
        location: Location,
        /// Why (an unknown user or group, as docker says it).
        #[source]
        source: Box<hush_sandbox::Error>,
    },
    /// `COPY --chown=` names a user or group that is not in the image.
    #[error("failed to resolve --chown={owner}")]
    Chown {
        /// `--chown`'s value.
        owner: String,
        /// The COPY.
        location: Location,
        /// Why (an unknown user or group, as docker says it).
        #[source]
        source: Box<hush_sandbox::Error>,
    },
    /// `ADD https://…` could not be downloaded.
    #[error("failed to download {url}")]
    Download {
        /// The URL, without credentials.
        url: String,
        /// The ADD.
        location: Location,
        /// Why.
        #[source]
        source: Box<hush_registry::download::DownloadError>,
    },
    /// `ADD --checksum=` is not what was downloaded (BuildKit's words). Nothing is kept.
    #[error("digest mismatch for {url}: {actual} (expected: {expected})")]
    ChecksumMismatch {
        /// The URL, without credentials.
        url: String,
        /// `--checksum`.
        expected: String,
        /// What the body hashes to.
        actual: String,
        /// The ADD.
        location: Location,
    },
    /// A remote source changed between the cache key and the fetch.
    #[error("{url} changed while the build fetched it")]
    RemoteChanged {
        /// The URL, without credentials.
        url: String,
        /// The ADD.
        location: Location,
    },
    /// `ADD` of a Git source failed.
    #[error("failed to fetch the git source {url}")]
    Git {
        /// The remote, without credentials.
        url: String,
        /// The ADD.
        location: Location,
        /// Why.
        #[source]
        source: Box<crate::fetch::GitError>,
    },
    /// A source taken for remote that is not (dispatch tells them apart; a bug if seen).
    #[error("{source_path} is not a URL or a Git source")]
    NotRemote {
        /// The source.
        source_path: String,
        /// The ADD.
        location: Location,
    },
    /// A COPY/ADD source without a wildcard that does not exist (or is excluded by
    /// `.dockerignore`), in BuildKit's words.
    #[error("failed to compute cache key: {path:?}: not found")]
    CopySourceNotFound {
        /// The source cleaned, from the root (`/a/b`).
        path: String,
        /// The source as written.
        src: String,
        /// It is read from the build context (else from `--from`'s stage or image).
        from_context: bool,
        /// The COPY.
        location: Location,
    },
    /// No COPY/ADD source matched (wildcards that match nothing) and there is no heredoc.
    #[error("no source files were specified (none of {sources:?} matched)")]
    NoSourceFiles {
        /// The sources as written.
        sources: Vec<String>,
        /// They are read from the build context (else from `--from`'s stage or image).
        from_context: bool,
        /// The COPY.
        location: Location,
    },
    /// `COPY --chmod=` that is neither octal nor symbolic.
    #[error("invalid chmod parameter {chmod:?}")]
    InvalidChmod {
        /// `--chmod`'s value.
        chmod: String,
        /// The COPY.
        location: Location,
    },
    /// A local archive that ADD would unpack to more than `--max-unpack-size`.
    #[error("failed to unpack {path}: it unpacks to more than {limit} bytes (the cap)")]
    UnpackTooLarge {
        /// The archive, in its source.
        path: String,
        /// The cap.
        limit: u64,
        /// The ADD.
        location: Location,
    },
    /// A worker of a parallel copy failed; its error is the one reported.
    #[error("stopped: copying a file failed")]
    CopyStopped,
    /// `RUN --mount=type=bind,source=` that does not exist.
    #[error("bind mount source {path:?} not found")]
    BindSourceNotFound {
        /// The source as written.
        path: String,
        /// The RUN.
        location: Location,
    },
    /// A RUN exited non-zero.
    #[error("process \"{command}\" did not complete successfully: exit code: {code}")]
    RunFailed {
        /// The command as shown.
        command: String,
        /// Exit code.
        code: i32,
        /// Where.
        location: Location,
        /// The last lines of its output.
        tail: Vec<String>,
    },
    /// A secret's bytes were found in what the build wrote.
    #[error("{0}")]
    Leak(Box<Leak>),
    /// A layer that holds a secret (kept for the build only, see the guard) was about to reach
    /// an output. The output chain never holds one; this is the last check, should that break.
    #[error("refusing to store an image with layer {diff_id}, which holds a secret: a build-only layer reached an output")]
    TaintedOutput {
        /// The layer.
        diff_id: String,
    },
    /// An error whose text held a secret (a path or a name made from a build arg equal to a
    /// secret's value): its text and causes, masked, in one message.
    #[error("{message}")]
    Masked {
        /// The error and its causes, masked.
        message: String,
        /// Where, when known.
        location: Option<Location>,
        /// What to do, masked.
        hint: Option<String>,
    },
    /// A RUN with a secret wrote it into a cache mount (which outlives the build); the cache
    /// mount was emptied.
    #[error("secret leaked into a cache mount: secret {secret:?} ({form}) found in {path}; the cache mount was emptied")]
    CacheLeak {
        /// The secret's id.
        secret: String,
        /// Which form matched, as findings name it ([`hush_scan::FormKind`]'s text: the
        /// type would make every `Result` of this crate larger).
        form: String,
        /// Where: the mount's target and the file under it.
        path: String,
        /// The RUN.
        location: Location,
    },
    /// Ctrl-C or SIGTERM.
    #[error("interrupted")]
    Interrupted,
    /// `--target` names no stage.
    #[error("target stage {0:?} could not be found")]
    NoTarget(String),
    /// An image (a FROM's, a `--from`'s) that is not in the store, nor a stage's name.
    #[error("image {name:?} not found in hush's store, and no stage is named so")]
    MissingImage {
        /// The reference.
        name: String,
        /// Where.
        location: Location,
        /// The stage whose name is nearest, when one is close (a typo of it).
        nearest_stage: Option<String>,
    },
    /// A `FROM`, `COPY --from` or `--mount from=` that names neither a stage nor a valid image
    /// reference.
    #[error("{source}")]
    InvalidImageName {
        /// Why it is not one.
        #[source]
        source: hush_oci::reference::ReferenceError,
        /// Where.
        location: Location,
    },
    /// An image could not be pulled from its registry.
    #[error("failed to pull {name}")]
    Pull {
        /// As the Dockerfile names it.
        name: String,
        /// Where.
        location: Location,
        /// The registry client's error.
        #[source]
        source: crate::PullError,
    },
    /// `HUSH_CACHE_KEY_FILE` holds fewer bytes than a key needs.
    #[error("the cache key file {path} (HUSH_CACHE_KEY_FILE) holds {len} bytes, fewer than the 32 a key needs")]
    CacheKeyTooShort {
        /// The file.
        path: PathBuf,
        /// How many bytes it holds.
        len: usize,
    },
    /// A filesystem problem.
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
    /// The store.
    #[error(transparent)]
    Oci(#[from] hush_oci::Error),
    /// The sandbox.
    #[error(transparent)]
    Sandbox(#[from] hush_sandbox::Error),
}

impl Error {
    /// `name` is no image of the store; `stages` are the Dockerfile's stage names, for a
    /// suggestion (`--from=bulder` → `builder`).
    pub(crate) fn missing_image(name: &str, location: Location, stages: &[Option<String>]) -> Self {
        let names: Vec<&str> = stages.iter().flatten().map(String::as_str).collect();
        Error::MissingImage {
            name: name.into(),
            location,
            nearest_stage: hush_dockerfile::did_you_mean(name, &names).map(str::to_string),
        }
    }
}

/// Where a secret was found.
#[derive(Debug, thiserror::Error)]
#[error("secret leaked into {place}: secret {secret:?} ({form}) found in {path} at byte {offset}, written by {instruction} in stage {stage:?}")]
pub struct Leak {
    /// `layer` or `image config`.
    pub place: &'static str,
    /// The secret's id.
    pub secret: String,
    /// Which form matched.
    pub form: hush_scan::FormKind,
    /// Path in the layer, or config field.
    pub path: String,
    /// Byte offset in that file.
    pub offset: u64,
    /// The instruction that wrote it.
    pub instruction: String,
    /// The stage.
    pub stage: String,
    /// Where.
    pub location: Location,
    /// How many findings in all.
    pub count: usize,
}

/// A `required` mount that the build was not given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingMount {
    /// Which.
    pub id: MountId,
    /// The first RUN that asks for it.
    pub location: Location,
}

impl MissingMount {
    /// `secret "a" (line 3), ssh "default" (line 5)`.
    fn list(mounts: &[MissingMount]) -> String {
        let items: Vec<String> = mounts
            .iter()
            .map(|m| format!("{} (line {})", m.id, m.location.start_line))
            .collect();
        items.join(", ")
    }
}

/// A secret or ssh id that a RUN mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountId {
    /// `--mount=type=secret,id=…`.
    Secret(String),
    /// `--mount=type=ssh,id=…` (`default` when none is given).
    Ssh(String),
}

impl fmt::Display for MountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MountId::Secret(id) => write!(f, "secret {id:?}"),
            MountId::Ssh(id) => write!(f, "ssh {id:?}"),
        }
    }
}

/// What a RUN may ask for only with `--allow` (buildx's entitlements).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entitlement {
    /// `network.host`: `RUN --network=host`.
    NetworkHost,
    /// `security.insecure`: `RUN --security=insecure`.
    SecurityInsecure,
}

impl Entitlement {
    /// The RUN flag that needs it.
    pub fn flag(self) -> &'static str {
        match self {
            Entitlement::NetworkHost => "--network=host",
            Entitlement::SecurityInsecure => "--security=insecure",
        }
    }
}

impl fmt::Display for Entitlement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Entitlement::NetworkHost => "network.host",
            Entitlement::SecurityInsecure => "security.insecure",
        })
    }
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
