//! `hush build --load` (buildx's shorthand for `--output=type=docker`): the built image handed
//! to a docker engine by piping a docker-archive into `docker load`. The `docker` CLI is run
//! rather than the engine's API spoken, so that it finds the engine as it always does
//! (`DOCKER_HOST`, `DOCKER_CONTEXT`, its config's current context, TLS settings).
//!
//! As buildx, a `--load` that cannot reach an engine fails the build (exit 1); the image is in
//! hush's store by then, and the error says how to hand it on as a file.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use hush_oci::store::{Image, Store};

/// The program run (on `PATH`, as a shell finds it).
const DOCKER: &str = "docker";

/// Why `--load` failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    /// No `docker` CLI to run.
    #[error("failed to run `docker` for --load: there is no docker CLI on PATH")]
    NoCli {
        #[source]
        source: std::io::Error,
    },
    /// The CLI ran and no engine answered it.
    #[error("failed to load the image into docker: no docker engine answers ({detail})")]
    NoEngine {
        /// What docker said (`Cannot connect to the Docker daemon at unix:///…`).
        detail: String,
    },
    /// `docker load` refused the archive or stopped.
    #[error("failed to load the image into docker: `docker load` {status}: {detail}")]
    Load {
        /// How it ended.
        status: std::process::ExitStatus,
        /// Its standard error.
        detail: String,
    },
    /// Writing the archive into `docker load` failed before it ended.
    #[error("failed to write the image to `docker load`")]
    Write {
        #[source]
        source: hush_oci::Error,
    },
}

/// Load `img`, named `names`, into the docker engine the docker CLI reaches. What `docker
/// load` prints (`Loaded image: …`) goes to stderr.
pub(crate) fn load(store: &Store, img: &Image, names: &[String]) -> Result<(), LoadError> {
    // Ask first: an archive of gigabytes is not written to an engine that is not there.
    let probe = Command::new(DOCKER)
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdin(Stdio::null())
        .output()
        .map_err(|source| LoadError::NoCli { source })?;
    if !probe.status.success() {
        return Err(LoadError::NoEngine {
            detail: said(&probe.stderr, &probe.stdout),
        });
    }
    let mut child = Command::new(DOCKER)
        .arg("load")
        .stdin(Stdio::piped())
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| LoadError::NoCli { source })?;
    let mut stderr = child.stderr.take().expect("piped");
    let errors = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    let mut stdin = std::io::BufWriter::with_capacity(1 << 20, child.stdin.take().expect("piped"));
    let written = hush_oci::export::docker::write(store, img, names, &mut stdin).and_then(|()| {
        stdin.flush().map_err(|source| hush_oci::Error::Io {
            action: "write",
            path: "docker load".into(),
            source,
        })
    });
    drop(stdin);
    let status = child.wait();
    let detail = errors.join().unwrap_or_default();
    match status {
        Ok(s) if s.success() => written.map_err(|source| LoadError::Write { source }),
        // docker load ending early breaks the pipe: what it said is the error.
        Ok(status) => Err(LoadError::Load {
            status,
            detail: said(&detail, b""),
        }),
        Err(source) => Err(LoadError::NoCli { source }),
    }
}

/// What a docker command said, on one line.
fn said(stderr: &[u8], stdout: &[u8]) -> String {
    let text = String::from_utf8_lossy(if stderr.trim_ascii().is_empty() {
        stdout
    } else {
        stderr
    })
    .split_whitespace()
    .collect::<Vec<_>>()
    .join(" ");
    if text.is_empty() {
        "it said nothing".into()
    } else {
        text
    }
}
