//! Subcommands, in `docker buildx build` / `docker image` spelling.

mod audit;
mod build;
mod features;
mod image;
mod lint;
mod outputs;
mod sarif;
mod scan;
mod units;

use std::path::PathBuf;
use std::process::ExitCode;

use crate::output::errln;
use clap::{Parser, Subcommand};
use hush_dockerfile::Location;
use hush_oci::store::Store;

/// hush: a daemonless Dockerfile builder that keeps build secrets out of images.
#[derive(Parser)]
#[command(name = "hush", version, about)]
pub(crate) struct Cli {
    /// Where images, layers and the build cache live (default /var/lib/hush as root,
    /// $XDG_DATA_HOME/hush otherwise).
    #[arg(long, env = "HUSH_ROOT", global = true)]
    root: Option<PathBuf>,
    /// Log hush's decisions (cache keys, hits and misses) and the container runtime's, as
    /// RUST_LOG=debug; RUST_LOG=FILTER chooses what to log (e.g. hush_solver=debug).
    #[arg(short = 'D', long, global = true)]
    pub(crate) debug: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build an image from a Dockerfile.
    Build(Box<build::BuildArgs>),
    /// Look for secrets in an image (store, docker-archive or OCI layout): exit 0 clean, 1 findings.
    Audit(audit::AuditArgs),
    /// Check a Dockerfile (and what it copies) for secrets it would give away; exit 1 on errors.
    Lint(lint::LintArgs),
    /// Import a rootfs tarball as a one-layer image (offline base images).
    Import(image::ImportArgs),
    /// List images.
    Images,
    /// Show an image's configuration as `docker image inspect` does.
    Inspect(image::NameArgs),
    /// Show an image's history as `docker history` does.
    History(image::HistoryArgs),
    /// Write an image as a docker-archive (`docker load` format, and an OCI layout too).
    Save(image::SaveArgs),
    /// Read a docker-archive, an OCI archive or an OCI layout into the store.
    Load(image::LoadArgs),
    /// Remove image names.
    Rmi(image::RmiArgs),
    /// Remove what no image needs (and the build cache with --all).
    Prune(image::PruneArgs),
    /// Which conformance features this hush supports.
    Features(features::FeaturesArgs),
}

/// An error with what the renderer needs.
#[derive(Debug)]
pub(crate) enum CliError {
    Usage(String),
    Build {
        err: Box<hush_solver::Error>,
        file: String,
        text: String,
    },
    Store(hush_oci::Error),
    Secrets(hush_secrets::Error),
    Io {
        what: String,
        source: std::io::Error,
    },
    /// An error of `hush audit`, which exits 2 on errors (1 means findings).
    Audit(Box<CliError>),
    /// Nobody reads stdout any more: the command ends quietly (see `crate::output`).
    StdoutClosed,
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Usage(m) => write!(f, "{m}"),
            CliError::Build { err, .. } => match &**err {
                hush_solver::Error::Dockerfile(e) if e.location.start_line == 0 => {
                    write!(f, "dockerfile parse error: {e}")
                }
                hush_solver::Error::Dockerfile(e) => {
                    write!(
                        f,
                        "dockerfile parse error on line {}: {e}",
                        e.location.start_line
                    )
                }
                err => write!(f, "{err}"),
            },
            CliError::Store(e) => write!(f, "{e}"),
            CliError::Secrets(e) => write!(f, "{e}"),
            CliError::Io { what, .. } => write!(f, "failed to {what}"),
            CliError::Audit(e) => write!(f, "{e}"),
            CliError::StdoutClosed => write!(f, "standard output is closed"),
        }
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CliError::Build { err, .. } => match &**err {
                hush_solver::Error::Dockerfile(_) => None,
                err => std::error::Error::source(err),
            },
            CliError::Store(e) => std::error::Error::source(e),
            CliError::Secrets(e) => std::error::Error::source(e),
            CliError::Io { source, .. } => Some(source),
            CliError::Audit(e) => std::error::Error::source(&**e),
            CliError::Usage(_) | CliError::StdoutClosed => None,
        }
    }
}

impl CliError {
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) | CliError::Audit(_) => 2,
            CliError::StdoutClosed => crate::output::EXIT_STDOUT_CLOSED,
            CliError::Build { err, .. } if matches!(**err, hush_solver::Error::Interrupted) => 130,
            CliError::Build { err, .. }
                if matches!(
                    **err,
                    hush_solver::Error::Leak(_)
                        | hush_solver::Error::CacheLeak { .. }
                        | hush_solver::Error::TaintedOutput { .. }
                ) =>
            {
                3
            }
            _ => 1,
        }
    }

    pub(crate) fn dockerfile_location(&self) -> Option<(&str, &str, Location)> {
        match self {
            CliError::Build { err, file, text } => {
                err.location().map(|l| (file.as_str(), text.as_str(), l))
            }
            _ => None,
        }
    }

    pub(crate) fn hint(&self) -> Option<String> {
        if self.disk_full() {
            return Some("a disk is full (the hush store's, --root/HUSH_ROOT, or the output's): hush leaves no partial layer, blob or output file behind; free space (`hush prune` removes unused layers and cache) or use a larger disk, then run it again".into());
        }
        match self {
            CliError::Audit(e) => e.hint(),
            CliError::Build { err, .. } => match &**err {
                hush_solver::Error::Dockerfile(e) => e.hint.clone(),
                hush_solver::Error::Step { hint, .. } => hint.clone(),
                hush_solver::Error::MissingImage { nearest_stage: Some(stage), .. } => Some(format!(
                    "did you mean the stage {stage:?}? (a name that is no stage's is an image, and hush does not pull from registries yet)"
                )),
                hush_solver::Error::MissingImage { name, .. } => Some(format!(
                    "hush does not pull from registries yet: import a rootfs with `hush import ROOTFS.tar {name}` or `hush load -i IMAGE.tar`"
                )),
                hush_solver::Error::NoTarget(_) => Some("--target takes the name after AS in a FROM line".into()),
                hush_solver::Error::RunFailed { tail, .. } if !tail.is_empty() => Some("the lines above are the end of the command's output".into()),
                hush_solver::Error::RunFailed { .. } => Some("the command printed nothing before it failed: start the RUN with `set -x;` to see which command failed".into()),
                hush_solver::Error::CacheLeak { .. } => Some(
                    "a cache mount is kept for the next builds, which get it without --secret: keep secrets and what holds them out of cache mounts (write to /tmp, or use the secret in place)".into(),
                ),
                hush_solver::Error::Leak(_) => Some(
                    "a secret mount lasts for one RUN: use the secret in that RUN and delete every copy before the RUN ends, or keep only what you derive from it; a builder stage may leave it in a file if the image is not built FROM that stage and copies only the result (COPY --from=builder /out/app /app)".into(),
                ),
                hush_solver::Error::Sandbox(hush_sandbox::Error::PastaMissing) => Some(
                    "install it (`apt-get install passt`), or build with --network=none (no network) or --network=host (the host's)".into(),
                ),
                hush_solver::Error::Sandbox(hush_sandbox::Error::Pasta { .. }) => Some(
                    "build with --network=none (no network) or --network=host (the host's) to do without pasta".into(),
                ),
                hush_solver::Error::Sandbox(hush_sandbox::Error::Mount { source: nix_errno, .. })
                    if *nix_errno == hush_sandbox::Errno::EPERM =>
                {
                    Some("hush needs root to mount overlays and start containers (rootless builds are not supported yet): run it as root or with sudo".into())
                }
                _ => None,
            },
            CliError::Store(hush_oci::Error::ImageNotFound(_)) => Some("`hush images` lists the images in the store".into()),
            CliError::Store(hush_oci::Error::ForeignStore { path, user, .. }) => Some(format!(
                "if the store is yours, `chown -R {user} {}`; otherwise use a directory of your own with --root or HUSH_ROOT",
                path.display()
            )),
            _ => None,
        }
    }

    /// ENOSPC or EDQUOT anywhere in the chain of causes.
    fn disk_full(&self) -> bool {
        let mut e: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(x) = e {
            if let Some(io) = x.downcast_ref::<std::io::Error>() {
                let full = [hush_sandbox::Errno::ENOSPC, hush_sandbox::Errno::EDQUOT];
                if full.iter().any(|n| io.raw_os_error() == Some(*n as i32)) {
                    return true;
                }
            }
            e = x.source();
        }
        false
    }

    pub(crate) fn tail(&self) -> Vec<String> {
        match self {
            CliError::Build { err, .. } => match &**err {
                hush_solver::Error::RunFailed { tail, .. } => tail.clone(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }
}

impl From<hush_oci::Error> for CliError {
    fn from(e: hush_oci::Error) -> Self {
        CliError::Store(e)
    }
}

impl From<hush_secrets::Error> for CliError {
    fn from(e: hush_secrets::Error) -> Self {
        CliError::Secrets(e)
    }
}

pub(crate) type CliResult<T = ExitCode> = Result<T, CliError>;

fn default_root() -> PathBuf {
    if nix_is_root() {
        return PathBuf::from("/var/lib/hush");
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".local/share")
        });
    data.join("hush")
}

fn nix_is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

pub(crate) fn run(cli: Cli) -> CliResult {
    if let Command::Features(a) = &cli.command {
        return features::run(a);
    }
    if let Command::Lint(a) = cli.command {
        return lint::run(a);
    }
    let store = Store::open(cli.root.clone().unwrap_or_else(default_root))?;
    let result = with_store(&store, cli.command);
    if let Err(e) = store.end_session() {
        warn_chain("failed to clean up this command's work directory", &e);
    }
    result
}

/// Run a command on the store, holding the store lock (see `hush_oci::store::SharedLock`) and
/// first removing what killed commands left in it.
fn with_store(store: &Store, command: Command) -> CliResult {
    // `prune` locks the store exclusively and sweeps `tmp/` itself.
    let _lock = if matches!(command, Command::Prune(_)) {
        None
    } else {
        let lock = hush_sandbox::signals::exit_on_signal(|| {
            store.lock_shared(&mut || {
                errln!(
                    "waiting for `hush prune` to finish with the store {}",
                    store.root().display()
                )
            })
        })?;
        report_swept(&store.sweep_tmp()?);
        Some(lock)
    };
    report_cgroups(&hush_sandbox::cgroups::sweep_stale());
    match command {
        Command::Build(a) => build::run(store, *a),
        Command::Audit(a) => audit::run(store, a).map_err(|e| match e {
            CliError::StdoutClosed => e,
            e => CliError::Audit(Box::new(e)),
        }),
        Command::Import(a) => image::import(store, a),
        Command::Images => image::images(store),
        Command::Inspect(a) => image::inspect(store, a),
        Command::History(a) => image::history(store, a),
        Command::Save(a) => image::save(store, a),
        Command::Load(a) => image::load(store, a),
        Command::Rmi(a) => image::rmi(store, a),
        Command::Prune(a) => image::prune(store, a),
        Command::Features(_) | Command::Lint(_) => unreachable!("handled above"),
    }
}

/// Say what the sweep of `tmp/` removed, and warn about what it could not.
pub(crate) fn report_swept(swept: &hush_oci::store::Swept) {
    let n = swept.removed.len();
    if n > 0 {
        errln!(
            "removed {n} work director{} left in the store by hush commands that were killed",
            if n == 1 { "y" } else { "ies" }
        );
    }
    for (path, e) in &swept.kept {
        errln!(
            "warning: failed to remove {}, left by a hush command that was killed: {e}\n  hint: it is tried again by the next command; if it stays, unmount what is mounted under it",
            path.display()
        );
    }
}

/// Warn about stale container cgroups that could not be removed.
fn report_cgroups(swept: &hush_sandbox::cgroups::Swept) {
    for (path, e) in &swept.kept {
        errln!(
            "warning: failed to remove the cgroup {}, left by a RUN container whose hush was killed: {e}",
            path.display()
        );
    }
}

/// A warning with its chain of causes, for failures that do not change the outcome.
fn warn_chain(what: &str, e: &dyn std::error::Error) {
    errln!("warning: {what}: {e}");
    let mut cause = e.source();
    while let Some(c) = cause {
        errln!("  caused by: {c}");
        cause = c.source();
    }
}
