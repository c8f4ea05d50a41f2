//! Mirrors of Docker Hub, as docker's `registry-mirrors`: a pull of a `docker.io` image tries
//! each mirror in order and falls back to the next, then to `registry-1.docker.io`, when a
//! mirror is unreachable or answers an error (404, 5xx, 401/403). Content a mirror sends that
//! does not match its digest is not a reason to fall back: it fails the pull, loudly. Pushes
//! and other registries never use mirrors (docker's rule). The image is named as the reference
//! says (`docker.io/library/busybox:latest`), whichever endpoint served it. Credentials are
//! the mirror's own (looked up by its host, as BuildKit does), never Docker Hub's.

use std::fmt;

use crate::{Error, ImageRef, Options};

/// A mirror: `https://host[:port]` or `http://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mirror {
    /// Plain HTTP (the URL said `http://`).
    plain: bool,
    /// `host[:port]`.
    host: String,
}

/// A mirror tried, and why it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tried {
    /// The mirror's URL.
    pub mirror: String,
    /// Its error, in one line (no credentials: errors hold none).
    pub reason: String,
}

impl Mirror {
    /// Parse `http(s)://host[:port][/]`.
    pub(crate) fn parse(url: &str) -> Result<Self, Error> {
        // An URL with credentials is shown without them.
        let shown = match url.split_once('@') {
            Some((before, after)) => {
                let scheme = before.split_once("://").map_or("", |(s, _)| s);
                format!("{scheme}://<redacted>@{after}")
            }
            None => url.into(),
        };
        let bad = |why| Error::InvalidMirror {
            url: shown.clone(),
            why,
        };
        let (plain, rest) = if let Some(r) = url.strip_prefix("https://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (true, r)
        } else {
            return Err(bad(
                "a mirror is an URL: https://host[:port] or http://host[:port]",
            ));
        };
        let host = rest.strip_suffix('/').unwrap_or(rest);
        if host.contains('@') {
            return Err(bad(
                "a mirror's URL holds no credentials (docker login to it instead)",
            ));
        }
        if host.contains(['/', '?', '#']) {
            return Err(bad("a mirror's URL has no path, query or fragment"));
        }
        let valid = |c: char| c.is_ascii_alphanumeric() || "-.:[]".contains(c);
        if host.is_empty() || !host.chars().all(valid) {
            return Err(bad("its host is not a host name or address"));
        }
        Ok(Mirror {
            plain,
            host: host.into(),
        })
    }

    /// `host[:port]`.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// The options to pull from this mirror with: plain HTTP allowed if its URL says so.
    pub(crate) fn options(&self, opts: &Options) -> Options {
        let opts = opts.clone();
        if self.plain {
            opts.insecure_registry(self.host.clone())
        } else {
            opts
        }
    }
}

impl fmt::Display for Mirror {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.plain { "http" } else { "https" };
        write!(f, "{scheme}://{}", self.host)
    }
}

/// The mirrors to try for `reference`: all of them for `docker.io`, none for another registry.
pub(crate) fn for_reference(reference: &ImageRef, opts: &Options) -> Vec<Mirror> {
    if reference.registry() == "docker.io" {
        opts.mirrors.clone()
    } else {
        Vec::new()
    }
}

/// Whether a mirror's failure lets the pull go on to the next endpoint: it could not be
/// reached, or answered an error. Content that does not match its digest, a bad platform, a
/// full disk: the pull fails.
pub(crate) fn falls_back(e: &Error) -> bool {
    matches!(
        e,
        Error::Transport { .. }
            | Error::Status { .. }
            | Error::Unauthorized { .. }
            | Error::Denied { .. }
            | Error::Token { .. }
            | Error::Challenge { .. }
    )
}

/// An error and its causes, in one line.
pub(crate) fn reason(e: &Error) -> String {
    let mut out = e.to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_parse_as_docker_takes_them() {
        for (url, shown) in [
            ("https://mirror.example", "https://mirror.example"),
            ("http://127.0.0.1:5000/", "http://127.0.0.1:5000"),
            ("https://[::1]:5000", "https://[::1]:5000"),
        ] {
            assert_eq!(Mirror::parse(url).unwrap().to_string(), shown, "{url}");
        }
        for bad in [
            "mirror.example",
            "ftp://m",
            "https://",
            "https://u:p@m",
            "https://m/path",
            "https://m?q",
            "https://m x",
        ] {
            let e = Mirror::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("u:p"), "no credentials: {e}");
            if !bad.contains('@') {
                assert!(e.contains(&format!("{bad:?}")), "{e}");
            }
        }
    }

    #[test]
    fn only_docker_hub_uses_mirrors() {
        let opts = Options::default()
            .registry_mirror("http://127.0.0.1:5000")
            .unwrap();
        let hub = ImageRef::parse("busybox").unwrap();
        let other = ImageRef::parse("127.0.0.1:6000/busybox").unwrap();
        assert_eq!(for_reference(&hub, &opts).len(), 1);
        assert!(for_reference(&other, &opts).is_empty());
    }
}
