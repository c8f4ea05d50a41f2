//! Image references as docker reads them: `ubuntu` is `docker.io/library/ubuntu:latest`.
//!
//! The grammar — `[HOST[:PORT]/]PATH[:TAG][@DIGEST]`, lowercase path components, a tag of at
//! most 128 characters, a hex digest — is checked by oci-spec's [`oci_spec::distribution::Reference`]
//! (distribution/reference's regular expression). What docker's `ParseNormalizedNamed` does on
//! top of it, and oci-spec 0.10 does differently or not at all, is done here:
//!
//! - which first component is a registry host: `localhost`, one with a `.` or a `:`, and one
//!   with an uppercase letter (`Foo/bar` is host `Foo`: docker's namespaces are lowercase);
//!   `index.docker.io` is `docker.io`, and a one-component name on Docker Hub is in `library/`;
//! - an uppercase letter in the repository path is refused naming the path
//!   (`MyApp` → "repository name "library/MyApp" must be lowercase");
//! - 64 hex digits alone are refused as a name: that is an image id;
//! - IPv6 hosts (`[fc00::1]:5000/x`), which oci-spec's expression lacks: the address must be a
//!   valid IPv6 address written in hex digits and colons, as docker's grammar has it;
//! - the 255-character limit counts the path, as docker counts it.
//!
//! An invalid reference is an error that says which part is wrong and why.

use std::fmt;

use oci_spec::distribution::ParseError;

/// Docker Hub's domain, which a name without a host is on.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The tag of a name given without one.
pub const DEFAULT_TAG: &str = "latest";
/// Docker Hub's legacy domain, read as [`DEFAULT_DOMAIN`].
const LEGACY_DOMAIN: &str = "index.docker.io";
/// The namespace of Docker Hub's official images (`ubuntu` is `library/ubuntu`).
const OFFICIAL_PREFIX: &str = "library/";
/// The longest repository path docker accepts.
const PATH_MAX: usize = 255;
/// A host put in front of a path to check the path, tag and digest with oci-spec apart from
/// the host (which is checked on its own, and may be an IPv6 address oci-spec cannot read).
const PLACEHOLDER_HOST: &str = "registry.invalid";

/// A parsed, normalised image reference: registry domain, repository path, and the tag and
/// digest as given (see [`Reference::with_default_tag`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// Why a string is not an image reference.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    /// Nothing was given.
    #[error("invalid reference \"\": an image reference cannot be empty")]
    Empty,
    /// The repository path has an uppercase letter.
    #[error("invalid reference {input:?}: repository name {path:?} must be lowercase")]
    Uppercase {
        /// The reference as given.
        input: String,
        /// The repository path (with `library/` for an official image).
        path: String,
    },
    /// 64 hex digits: an image id, which cannot be a name.
    #[error(
        "invalid repository name {input:?}: 64 hexadecimal digits are an image id, not a name"
    )]
    Identifier {
        /// The reference as given.
        input: String,
    },
    /// A repository path longer than docker's limit.
    #[error("invalid reference {input:?}: the repository name is {len} characters long, more than {PATH_MAX}")]
    TooLong {
        /// The reference as given.
        input: String,
        /// The path's length.
        len: usize,
    },
    /// A part does not follow the grammar.
    #[error("invalid reference {input:?}: {problem}")]
    Format {
        /// The reference as given.
        input: String,
        /// Which part, and why.
        problem: Problem,
    },
    /// A digest where a name to give an image is wanted (`-t`, `hush tag`).
    #[error("invalid tag {input:?}: refusing to create a tag with a digest reference")]
    DigestTag {
        /// The reference as given.
        input: String,
    },
}

/// The part of a reference that breaks the grammar.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The registry host.
    Host {
        /// The host as given.
        host: String,
    },
    /// The repository path.
    Path,
    /// More than one `:` after the last `/` (`foo:bar:baz`).
    Colons,
    /// The tag.
    Tag {
        /// The tag as given.
        tag: String,
    },
    /// The digest.
    Digest {
        /// What oci-spec found wrong with it.
        why: ParseError,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Host { host } => write!(
                f,
                "the registry host {host:?} is not a host name, an IPv4 address or an [IPv6] address, with an optional :PORT"
            ),
            Problem::Path => f.write_str(
                "a repository name is [HOST[:PORT]/]PATH[:TAG][@DIGEST], its PATH lowercase letters and digits separated by '.', '_', '__' or '-' in components joined by single '/'",
            ),
            Problem::Colons => f.write_str(
                "only one ':' may follow the repository path, before the tag (NAME[:TAG][@DIGEST])",
            ),
            Problem::Tag { tag } => write!(
                f,
                "the tag {tag:?} must be 1 to 128 letters, digits, '_', '.' or '-', and cannot start with '.' or '-'"
            ),
            Problem::Digest { why } => {
                write!(f, "the digest must be ALGORITHM:HEX, such as sha256: and 64 hex digits ({why})")
            }
        }
    }
}

impl Reference {
    /// Parse `s` as docker's `ParseNormalizedNamed` does: a name, with a tag, a digest, both,
    /// or neither (see [`Reference::with_default_tag`]).
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if is_identifier(s) {
            return Err(ReferenceError::Identifier { input: s.into() });
        }
        let (domain, rest) = split_domain(s);
        let path_end = rest.find([':', '@']).unwrap_or(rest.len());
        let path = &rest[..path_end];
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase {
                input: s.into(),
                path: path.into(),
            });
        }
        let format = |problem| ReferenceError::Format {
            input: s.into(),
            problem,
        };
        if !host_is_valid(&domain) {
            return Err(format(Problem::Host { host: domain }));
        }
        match grammar(&format!("{PLACEHOLDER_HOST}/{rest}")) {
            Ok(_) => {}
            Err(ParseError::NameTooLong) => {
                return Err(ReferenceError::TooLong {
                    input: s.into(),
                    len: path.len(),
                })
            }
            Err(
                why @ (ParseError::DigestInvalidFormat
                | ParseError::DigestInvalidLength
                | ParseError::DigestUnsupported),
            ) => return Err(format(Problem::Digest { why })),
            Err(_) => return Err(format(explain(&rest))),
        }
        let (named, digest) = match rest.split_once('@') {
            Some((n, d)) => (n, Some(d.to_string())),
            None => (rest.as_str(), None),
        };
        let tag = named.split_once(':').map(|(_, t)| t.to_string());
        Ok(Reference {
            domain,
            path: path.into(),
            tag,
            digest,
        })
    }

    /// Parse a name to give an image (`-t`, `hush tag`'s target, an archive's tags): a
    /// reference without a digest, its tag `latest` if none is given.
    pub fn parse_tag(s: &str) -> Result<Self, ReferenceError> {
        let r = Self::parse(s)?;
        if r.digest.is_some() {
            return Err(ReferenceError::DigestTag { input: s.into() });
        }
        Ok(r.with_default_tag())
    }

    /// The registry domain (`docker.io`, `localhost:5000`, `[::1]:5000`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path in the registry (`library/ubuntu`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, if one was given.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if one was given.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The full repository name: `docker.io/library/ubuntu`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The name as docker shows it: `ubuntu`, `user/app`, `localhost:5000/app` (docker's
    /// `FamiliarName`: Docker Hub's domain and `library/` left out).
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.name();
        }
        match self.path.strip_prefix(OFFICIAL_PREFIX) {
            Some(official) if !official.contains('/') => official.into(),
            _ => self.path.clone(),
        }
    }

    /// The reference as docker shows it: `ubuntu:22.04`, `ubuntu@sha256:…` (`FamiliarString`).
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        self.push_tag_and_digest(&mut s);
        s
    }

    /// With the tag `latest` if it has neither tag nor digest (docker's `TagNameOnly`).
    pub fn with_default_tag(mut self) -> Self {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.into());
        }
        self
    }

    fn push_tag_and_digest(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
    }
}

/// The canonical form: `docker.io/library/ubuntu:latest`.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_tag_and_digest(&mut s);
        f.write_str(&s)
    }
}

impl std::str::FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// 64 lowercase hex digits: what docker takes for an image id (its `anchoredIdentifierRegexp`).
pub fn is_identifier(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Split off the registry domain as docker's `splitDockerDomain` does; a name without one is
/// on Docker Hub, in `library/` if it has one component.
fn split_domain(s: &str) -> (String, String) {
    let (domain, rest) = match s.split_once('/') {
        None => (DEFAULT_DOMAIN, s),
        Some((LEGACY_DOMAIN, rest)) => (DEFAULT_DOMAIN, rest),
        Some((first, rest))
            if first == "localhost"
                || first.contains(['.', ':'])
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        Some(_) => (DEFAULT_DOMAIN, s),
    };
    let rest = if domain == DEFAULT_DOMAIN && !rest.contains('/') {
        format!("{OFFICIAL_PREFIX}{rest}")
    } else {
        rest.to_string()
    };
    (domain.to_string(), rest)
}

/// Docker's reference grammar (distribution/reference's `ReferenceRegexp`, as oci-spec's
/// `distribution::Reference` writes it), then oci-spec's checks after a match (the repository at
/// most 255 characters; a digest's algorithm and length), with oci-spec's errors.
///
/// The regexp is oci-spec's with one change: `\w` is ASCII, as in Go's regexp, which docker's
/// grammar is written for. oci-spec compiles it with Unicode classes, whose 128-fold repetition
/// in the tag takes ~40 ms to compile — in every process that parses a name (every build, every
/// `hush inspect`); this one takes well under a millisecond, and accepts the same names.
fn grammar(s: &str) -> Result<(), ParseError> {
    use std::sync::OnceLock;
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::RegexBuilder::new(REFERENCE_REGEXP)
            .unicode(false)
            .build()
            .expect("docker's reference grammar compiles")
    });
    if s.is_empty() {
        return Err(ParseError::NameEmpty);
    }
    let caps = re.captures(s).ok_or(ParseError::ReferenceInvalidFormat)?;
    let name = &caps[1];
    let path = name.split_once('/').map_or(name, |(_, p)| p);
    if path.len() > 255 {
        return Err(ParseError::NameTooLong);
    }
    if let Some(d) = caps.get(3) {
        let want = match d.as_str().split_once(':') {
            Some(("sha256", hex)) => (hex, 64),
            Some(("sha384", hex)) => (hex, 96),
            Some(("sha512", hex)) => (hex, 128),
            Some(_) => return Err(ParseError::DigestUnsupported),
            None => return Err(ParseError::DigestInvalidFormat),
        };
        if want.0.len() != want.1 {
            return Err(ParseError::DigestInvalidLength);
        }
    }
    Ok(())
}

/// distribution/reference's `ReferenceRegexp` (name, tag, digest), as oci-spec 0.10 writes it.
const REFERENCE_REGEXP: &str = r"^((?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+)?(?::[0-9]+)?/)?[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?(?:(?:/[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?)+)?)(?::([\w][\w.-]{0,127}))?(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}))?$";

/// A registry host with an optional port: docker's grammar, or a bracketed IPv6 address.
fn host_is_valid(domain: &str) -> bool {
    let Some(bracketed) = domain.strip_prefix('[') else {
        return grammar(&format!("{domain}/x")).is_ok();
    };
    let Some((address, port)) = bracketed.split_once(']') else {
        return false;
    };
    let port_ok = match port.strip_prefix(':') {
        None => port.is_empty(),
        Some(p) => !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()),
    };
    port_ok
        && address.bytes().all(|b| b == b':' || b.is_ascii_hexdigit())
        && address.parse::<std::net::Ipv6Addr>().is_ok()
}

/// Which part of `rest` (a path with its tag and digest) breaks the grammar, each part checked
/// on its own by oci-spec.
fn explain(rest: &str) -> Problem {
    let (named, digest) = match rest.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (rest, None),
    };
    let ok = |s: String| grammar(&format!("{PLACEHOLDER_HOST}/{s}")).is_ok();
    let (path, tag) = match named.split_once(':') {
        Some((p, t)) => (p, Some(t)),
        None => (named, None),
    };
    if !ok(path.into()) {
        return Problem::Path;
    }
    if tag.is_some_and(|t| t.contains(':')) {
        return Problem::Colons;
    }
    if let Some(tag) = tag.filter(|t| !ok(format!("{path}:{t}"))) {
        return Problem::Tag { tag: tag.into() };
    }
    match digest.map(|d| grammar(&format!("{PLACEHOLDER_HOST}/{path}@{d}"))) {
        Some(Err(why)) => Problem::Digest { why },
        _ => Problem::Path,
    }
}

#[cfg(test)]
mod tests;
