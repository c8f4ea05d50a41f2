//! What dispatching a stage produces: the image configuration it builds up, and the
//! filesystem steps the solver runs.

use std::collections::{BTreeMap, BTreeSet};

use super::mounts::Mount;
use super::InlineFile;
use crate::error::Location;

/// The image configuration a stage builds up (the Dockerfile-visible part of an OCI config).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageState {
    /// `ENV`, in order, unique keys.
    pub env: Vec<(String, String)>,
    /// `WORKDIR` (empty = unset, i.e. `/`).
    pub workdir: String,
    /// `USER`.
    pub user: String,
    /// `SHELL` (default `/bin/sh -c`).
    pub shell: Option<Vec<String>>,
    /// `CMD`.
    pub cmd: Option<Vec<String>>,
    /// `ENTRYPOINT`.
    pub entrypoint: Option<Vec<String>>,
    /// `LABEL`s.
    pub labels: BTreeMap<String, String>,
    /// `EXPOSE`d ports (`80/tcp`).
    pub exposed_ports: BTreeSet<String>,
    /// `VOLUME`s.
    pub volumes: BTreeSet<String>,
    /// `STOPSIGNAL`.
    pub stop_signal: Option<String>,
    /// `HEALTHCHECK`.
    pub healthcheck: Option<HealthState>,
    /// `ONBUILD` triggers.
    pub onbuild: Vec<String>,
    /// `MAINTAINER` (the author field).
    pub author: Option<String>,
    /// The ARGs in scope when the stage ends, with their values: a stage built `FROM` this one
    /// starts with them (BuildKit's rule). Build-time only: never part of an image config.
    pub args: Vec<(String, String)>,
}

/// A resolved HEALTHCHECK, durations in nanoseconds as in the image config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct HealthState {
    pub test: Vec<String>,
    pub interval: Option<u64>,
    pub timeout: Option<u64>,
    pub start_period: Option<u64>,
    pub start_interval: Option<u64>,
    pub retries: Option<i64>,
}

impl ImageState {
    /// The shell for shell-form commands.
    pub fn shell(&self) -> Vec<String> {
        self.shell
            .clone()
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    pub(crate) fn set_env(&mut self, k: &str, v: &str) {
        match self.env.iter_mut().find(|(ek, _)| ek == k) {
            Some(e) => e.1 = v.to_string(),
            None => self.env.push((k.to_string(), v.to_string())),
        }
    }
}

/// Where COPY reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopySource {
    /// The build context.
    Context,
    /// An earlier stage, by index.
    Stage(usize),
    /// An image reference.
    Image(String),
}

/// One filesystem-changing step of a stage, fully expanded.
#[derive(Debug, Clone)]
pub enum StepKind {
    /// RUN in a container.
    Run {
        /// argv.
        argv: Vec<String>,
        /// Environment (image env plus build args in scope).
        env: Vec<(String, String)>,
        /// Mounts, targets absolute.
        mounts: Vec<Mount>,
        /// `--network`.
        network: super::NetworkMode,
        /// `--security`.
        security: super::SecurityMode,
        /// Heredoc scripts to provide at `/dev/pipes/<name>` (a `#!` heredoc is run as a file).
        scripts: Vec<InlineFile>,
    },
    /// COPY/ADD.
    Copy {
        /// Where from.
        source: CopySource,
        /// Source paths (expanded).
        sources: Vec<String>,
        /// Heredoc files (expanded where asked).
        inline: Vec<InlineFile>,
        /// Destination (absolute; a trailing `/` kept: "copy into").
        dest: String,
        /// `--chown` (expanded).
        chown: Option<String>,
        /// `--chmod`.
        chmod: Option<String>,
        /// ADD (auto-extract local archives).
        add: bool,
        /// ADD `--unpack`.
        unpack: Option<bool>,
        /// `--parents`.
        parents: bool,
        /// `--exclude` patterns.
        exclude: Vec<String>,
        /// `--link`.
        link: bool,
        /// ADD `--checksum` (one remote source): `sha256:…` for an URL, a commit for Git.
        checksum: Option<String>,
        /// ADD `--keep-git-dir` as given (a Git source's `?keep-git-dir=` agrees with it).
        keep_git_dir: Option<bool>,
    },
    /// Create the WORKDIR (with parents) if missing.
    Mkdir {
        /// The absolute path.
        path: String,
    },
}

/// A step with its history text and Dockerfile location.
#[derive(Debug, Clone)]
pub struct Step {
    /// What to do.
    pub kind: StepKind,
    /// The history `created_by`.
    pub created_by: String,
    /// Where it is in the Dockerfile.
    pub location: Location,
    /// The configuration in force at this step (what RUN sees; what the image has after it).
    pub state: ImageState,
}

/// An instruction after dispatch: a filesystem step or a config-only change.
#[derive(Debug, Clone)]
pub enum Dispatched {
    /// Changes the filesystem.
    Step(Box<Step>),
    /// Only changes the configuration.
    Meta {
        /// The history `created_by`.
        created_by: String,
        /// Where.
        location: Location,
    },
}

/// The result of dispatching a stage.
#[derive(Debug, Clone)]
pub struct DispatchedStage {
    /// Steps and metadata changes in order.
    pub items: Vec<Dispatched>,
    /// The final configuration.
    pub state: ImageState,
    /// Build args this stage consumed.
    pub used_args: BTreeSet<String>,
    /// Args whose values its RUN history entries show as `<redacted>`
    /// ([`super::dispatch::HistoryArgs::Safe`]).
    pub redacted_args: BTreeSet<String>,
}
