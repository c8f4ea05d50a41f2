//! hush's registry settings file, in the keys of docker's `daemon.json` (`registry-mirrors`,
//! `insecure-registries`), since hush has no daemon to configure: `$HUSH_CONFIG` if set, else
//! `/etc/hush/config.json` as root (docker's `/etc/docker/daemon.json`), else
//! `$XDG_CONFIG_HOME/hush/config.json` (`~/.config/hush/config.json`, where rootless docker
//! keeps its `daemon.json`). A missing file is no setting; other keys are ignored, as a
//! `daemon.json` holds many hush has no use for.
//!
//! ```json
//! { "registry-mirrors": ["https://mirror.example"], "insecure-registries": ["10.0.0.5:5000"] }
//! ```

use std::path::PathBuf;

use super::{CliError, CliResult};

/// What the file says.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct RegistryConfig {
    /// Mirrors of Docker Hub, tried in order for `docker.io` pulls.
    #[serde(default, rename = "registry-mirrors")]
    pub(crate) mirrors: Vec<String>,
    /// Registries reached over plain HTTP or unchecked TLS (`--insecure-registry`).
    #[serde(default, rename = "insecure-registries")]
    pub(crate) insecure: Vec<String>,
}

impl RegistryConfig {
    /// Read the file, if there is one.
    pub(crate) fn load() -> CliResult<Self> {
        let path = path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(CliError::Io {
                    what: format!("read the hush config {}", path.display()),
                    source,
                })
            }
        };
        serde_json::from_slice(&bytes).map_err(|e| CliError::Io {
            what: format!("parse the hush config {}", path.display()),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })
    }
}

/// Where the file is.
fn path() -> PathBuf {
    if let Some(p) = std::env::var_os("HUSH_CONFIG") {
        return PathBuf::from(p);
    }
    if super::nix_is_root() {
        return PathBuf::from("/etc/hush/config.json");
    }
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".config")
        })
        .join("hush/config.json")
}
