use std::path::PathBuf;

use hush_dockerfile::Location;

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Dockerfile is wrong.
    #[error(transparent)]
    Dockerfile(#[from] hush_dockerfile::ParseError),
    /// A step failed at a Dockerfile location.
    #[error("{message}")]
    Step {
        /// What happened.
        message: String,
        /// Where.
        location: Location,
        /// What to do.
        hint: Option<String>,
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

    pub(crate) fn step(message: impl Into<String>, location: Location) -> Self {
        Error::Step {
            message: message.into(),
            location,
            hint: None,
        }
    }

    /// Where in the Dockerfile, when known (line 0: nowhere in it, e.g. a build arg).
    pub fn location(&self) -> Option<Location> {
        match self {
            Error::Dockerfile(e) => Some(e.location),
            Error::Step { location, .. }
            | Error::RunFailed { location, .. }
            | Error::MissingImage { location, .. }
            | Error::InvalidImageName { location, .. }
            | Error::Pull { location, .. } => Some(*location),
            Error::Leak(l) => Some(l.location),
            Error::CacheLeak { location, .. } => Some(*location),
            Error::Masked { location, .. } => *location,
            _ => None,
        }
        .filter(|l| l.start_line > 0)
    }

    /// The error with every secret form in its text masked as `****`, as the build's output
    /// is: what is shown of a step (its command, its output's last lines) and anything else that
    /// can hold a build arg's or a path's text.
    pub(crate) fn masked(self, guard: &hush_scan::Guard) -> Self {
        if guard.is_empty() {
            return self;
        }
        let mask = |s: &str| guard.mask_str(s);
        match self {
            Error::Step {
                message,
                location,
                hint,
            } => Error::Step {
                message: mask(&message),
                location,
                hint: hint.as_deref().map(mask),
            },
            Error::RunFailed {
                command,
                code,
                location,
                tail,
            } => Error::RunFailed {
                command: mask(&command),
                code,
                location,
                tail: tail.iter().map(|l| mask(l)).collect(),
            },
            Error::Leak(mut l) => {
                l.instruction = mask(&l.instruction);
                l.path = mask(&l.path);
                Error::Leak(l)
            }
            other => {
                let mut text = other.to_string();
                let mut source = std::error::Error::source(&other);
                while let Some(s) = source {
                    text.push_str(": ");
                    text.push_str(&s.to_string());
                    source = s.source();
                }
                let masked = mask(&text);
                if masked == text {
                    other
                } else {
                    Error::Masked {
                        message: masked,
                        location: other.location(),
                    }
                }
            }
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
