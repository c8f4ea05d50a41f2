//! What a pull or push may do: which registries speak plain HTTP, extra CAs, the platform to
//! pick from an index, where docker's config is, how many layers at once, how often to retry.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{Error, Result};

/// Options of a pull or a push (a builder: `Options::default().insecure_registry("r:5000")`).
#[derive(Debug, Clone)]
pub struct Options {
    pub(crate) insecure: Vec<String>,
    pub(crate) ca_files: Vec<PathBuf>,
    pub(crate) mirrors: Vec<crate::mirrors::Mirror>,
    pub(crate) platform: Platform,
    /// Whether `platform` was asked for (else it is the host's, and an index of one other
    /// platform gives that one).
    pub(crate) platform_asked: bool,
    pub(crate) docker_config: Option<PathBuf>,
    pub(crate) jobs: usize,
    pub(crate) attempts: u32,
    pub(crate) backoff: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            insecure: Vec::new(),
            ca_files: Vec::new(),
            mirrors: Vec::new(),
            platform: Platform::host(),
            platform_asked: false,
            docker_config: None,
            // containerd and docker fetch 3 layers at once by default.
            jobs: 3,
            attempts: 5,
            backoff: Duration::from_millis(200),
        }
    }
}

impl Options {
    /// A registry (`host[:port]`) that may be reached over plain HTTP, and over HTTPS without
    /// checking its certificate: docker's `--insecure-registry`. Loopback registries may use
    /// plain HTTP without it (as in docker), but their certificates are checked.
    pub fn insecure_registry(mut self, host: impl Into<String>) -> Self {
        self.insecure.push(host.into());
        self
    }

    /// A PEM file of CA certificates trusted besides the system's.
    pub fn registry_ca(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_files.push(path.into());
        self
    }

    /// A mirror of Docker Hub (`https://mirror.example`, `http://127.0.0.1:5000`): pulls of
    /// `docker.io` images try each mirror in the order given, then Docker Hub — docker's
    /// `registry-mirrors`. A mirror given with `http://` is reached over plain HTTP. Fails on
    /// an URL that is not `http(s)://host[:port]`.
    pub fn registry_mirror(mut self, url: &str) -> Result<Self> {
        self.mirrors.push(crate::mirrors::Mirror::parse(url)?);
        Ok(self)
    }

    /// The platform to pick from a multi-platform index (the host's by default).
    pub fn platform(mut self, platform: Platform) -> Self {
        self.platform = platform;
        self.platform_asked = true;
        self
    }

    /// Where docker's `config.json` is (default: `$DOCKER_CONFIG`, else `~/.docker`).
    pub fn docker_config_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.docker_config = Some(dir.into());
        self
    }

    /// How many layers download or upload at once (at least 1).
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.jobs = jobs.max(1);
        self
    }

    /// How many times a request is tried (transient errors: 5xx, 429, a connection reset), and
    /// the first wait between tries, doubled each time.
    pub fn retries(mut self, attempts: u32, backoff: Duration) -> Self {
        self.attempts = attempts.max(1);
        self.backoff = backoff;
        self
    }

    /// The docker config directory to use.
    pub(crate) fn docker_config_path(&self) -> Option<&Path> {
        self.docker_config.as_deref()
    }
}

/// An OCI platform: `linux/amd64`, `linux/arm64/v8`, `linux/arm/v7`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, `arm`, …
    pub architecture: String,
    /// `v7`, `v8`, … if any.
    pub variant: Option<String>,
}

impl Platform {
    /// This host's platform, in Go's names (as docker and the image spec use).
    pub fn host() -> Self {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", None),
            "x86" => ("386", None),
            "arm" => ("arm", Some("v7")),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            a => (a, None),
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: variant.map(Into::into),
        }
    }

    /// Parse `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok =
            |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        match parts[..] {
            [os, arch] if ok(os) && ok(arch) => Ok(Platform {
                os: os.into(),
                architecture: arch.into(),
                variant: None,
            }),
            [os, arch, v] if ok(os) && ok(arch) && ok(v) => Ok(Platform {
                os: os.into(),
                architecture: arch.into(),
                variant: Some(v.into()),
            }),
            _ => Err(Error::Platform(s.into())),
        }
    }

    /// Whether an index entry's platform is this one: the same os and architecture, and, when
    /// this one names a variant, the same variant (`arm64` without one is `v8`, as containerd
    /// normalises it).
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        if self.os != os || self.architecture != architecture {
            return false;
        }
        let norm = |v: Option<&str>| match (architecture, v) {
            ("arm64", None) => Some("v8".to_string()),
            (_, v) => v.map(str::to_string),
        };
        self.variant.is_none() || norm(self.variant.as_deref()) == norm(variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_and_match() {
        let p = Platform::parse("linux/arm64").unwrap();
        assert!(p.matches("linux", "arm64", Some("v8")));
        assert!(!p.matches("linux", "amd64", None));
        let v7 = Platform::parse("linux/arm/v7").unwrap();
        assert!(v7.matches("linux", "arm", Some("v7")));
        assert!(!v7.matches("linux", "arm", Some("v6")));
        assert!(Platform::parse("linux/arm64/v8")
            .unwrap()
            .matches("linux", "arm64", None));
        assert_eq!(v7.to_string(), "linux/arm/v7");
        for bad in ["linux", "linux/", "a/b/c/d", "linux/am d64"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }
}
