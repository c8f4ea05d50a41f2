//! Image references as the registry sees them: hush's one reference type
//! ([`hush_oci::reference::Reference`], docker's grammar and normalisation) with what the
//! distribution API needs of it (the API host, the repository, what to ask a manifest for).

use std::fmt;

use hush_oci::reference::Reference;

use crate::{Error, Result};

/// Docker Hub's name in references.
const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's registry API answers (docker's `registry-1.docker.io`).
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A parsed, normalised reference: `ubuntu` is `docker.io/library/ubuntu:latest`.
#[derive(Clone, PartialEq, Eq)]
pub struct ImageRef(Reference);

impl ImageRef {
    /// Parse a reference as docker does (`ubuntu`, `localhost:5000/x`, `host:port/a/b:tag@sha256:…`).
    pub fn parse(s: &str) -> Result<Self> {
        Reference::parse(s)
            .map(|r| ImageRef(r.with_default_tag()))
            .map_err(|source| Error::InvalidReference {
                reference: s.into(),
                source,
            })
    }

    /// The registry as named in the reference (`docker.io`, `127.0.0.1:5000`): the key of its
    /// credentials in docker's config.
    pub fn registry(&self) -> &str {
        self.0.domain()
    }

    /// The host (and port) the registry API answers on.
    pub fn api_host(&self) -> &str {
        api_host(self.0.domain())
    }

    /// The repository (`library/ubuntu`).
    pub fn repository(&self) -> &str {
        self.0.path()
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.0.tag()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&str> {
        self.0.digest()
    }

    /// What to ask the registry for: the digest if there is one (it pins the content), else the
    /// tag.
    pub fn manifest_reference(&self) -> &str {
        self.digest().or(self.tag()).unwrap_or("latest")
    }

    /// The name the store keeps the image under: the whole normalised reference
    /// (`docker.io/library/ubuntu:latest`, `127.0.0.1:5000/app@sha256:…`).
    pub fn store_name(&self) -> String {
        self.0.to_string()
    }
}

/// Where the registry API of a registry (as references name it) answers.
pub(crate) fn api_host(registry: &str) -> &str {
    match registry {
        DOCKER_HUB | "index.docker.io" => DOCKER_HUB_API,
        r => r,
    }
}

/// A registry as `docker login` takes it (`host[:port]`, an URL, Docker Hub's index URL, or
/// nothing for Docker Hub), as references name it.
pub(crate) fn registry_name(arg: Option<&str>) -> String {
    let arg = arg.unwrap_or(DOCKER_HUB).trim();
    let no_scheme = arg
        .strip_prefix("https://")
        .or_else(|| arg.strip_prefix("http://"))
        .unwrap_or(arg);
    let host = no_scheme.split('/').next().unwrap_or(no_scheme);
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.into(),
        h => h.into(),
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageRef({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_normalise_as_docker_does() {
        // input | store name | api host | repository | asked for
        let table = [
            (
                "ubuntu",
                "docker.io/library/ubuntu:latest",
                "registry-1.docker.io",
                "library/ubuntu",
                "latest",
            ),
            (
                "localhost:5000/x",
                "localhost:5000/x:latest",
                "localhost:5000",
                "x",
                "latest",
            ),
            (
                "127.0.0.1:5000/a/b:1.0",
                "127.0.0.1:5000/a/b:1.0",
                "127.0.0.1:5000",
                "a/b",
                "1.0",
            ),
        ];
        for (input, name, host, repo, asked) in table {
            let r = ImageRef::parse(input).unwrap();
            assert_eq!(
                (
                    r.store_name().as_str(),
                    r.api_host(),
                    r.repository(),
                    r.manifest_reference()
                ),
                (name, host, repo, asked),
                "{input}"
            );
        }
        let d = format!("sha256:{}", "ab".repeat(32));
        let r = ImageRef::parse(&format!("host:1/a:t@{d}")).unwrap();
        assert_eq!(r.manifest_reference(), d, "the digest pins the content");
    }

    #[test]
    fn login_takes_registries_as_docker_login_does() {
        for (arg, name) in [
            (None, "docker.io"),
            (Some("https://index.docker.io/v1/"), "docker.io"),
            (Some("127.0.0.1:5000"), "127.0.0.1:5000"),
            (Some("https://r.example:443/some/path"), "r.example:443"),
        ] {
            assert_eq!(registry_name(arg), name, "{arg:?}");
        }
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
    }

    #[test]
    fn bad_references_are_refused() {
        for bad in ["MyApp:Latest", "foo:bar:baz", "", "a@sha256:12"] {
            let e = ImageRef::parse(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }
}
