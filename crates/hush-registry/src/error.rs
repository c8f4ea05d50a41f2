//! Errors of the registry client. None holds a credential: not a password, a token nor an
//! `Authorization` header (the registry's own error text is cut to its codes and messages,
//! with any credential the client sent scrubbed out).

use std::path::PathBuf;

use hush_oci::Digest;

/// Errors of pulls, pushes and credential handling.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A reference that is not docker's grammar.
    #[error("invalid image reference {reference:?}")]
    InvalidReference {
        /// As given.
        reference: String,
        /// Why.
        #[source]
        source: hush_oci::reference::ReferenceError,
    },
    /// A push needs a tag to name what it pushes.
    #[error("cannot push to {reference}: a push names a tag, not a digest")]
    PushByDigest {
        /// As given.
        reference: String,
    },
    /// The request did not get an answer (DNS, connection, TLS, timeout, redirects).
    #[error("failed to reach {registry} ({method} {url})")]
    Transport {
        /// The registry.
        registry: String,
        /// The HTTP method.
        method: &'static str,
        /// The URL (never with credentials: hush puts none in URLs).
        url: String,
        /// Why.
        #[source]
        source: Box<ureq::Error>,
    },
    /// The registry answered with an error status.
    #[error("{registry} answered HTTP {status} to {method} {path}{detail}")]
    Status {
        /// The registry.
        registry: String,
        /// The HTTP method.
        method: &'static str,
        /// The path asked for.
        path: String,
        /// The status code.
        status: u16,
        /// The registry's error codes and messages (`: NAME_UNKNOWN: repository name not known`).
        detail: String,
    },
    /// The registry wants credentials it was not given, or refuses the ones it was given.
    #[error("{registry} refused access to {path} (HTTP {status}){detail}")]
    Unauthorized {
        /// The registry.
        registry: String,
        /// The path asked for.
        path: String,
        /// 401 or 403.
        status: u16,
        /// Whether credentials were sent.
        had_credentials: bool,
        /// The registry's error codes and messages.
        detail: String,
    },
    /// The registry refused a token that lacks an access its request needs: the challenge's
    /// `error="insufficient_scope"` (RFC 6750), as distribution answers when the token server
    /// granted less than was asked (a repository the user may not push, or read).
    #[error("{registry} refused {actions} access to the repository {repository} (HTTP {status}): the token it was given does not grant it")]
    Denied {
        /// The registry.
        registry: String,
        /// The repository (`team/app`).
        repository: String,
        /// What the request needed (`pull`, `pull,push`).
        actions: String,
        /// 401 or 403.
        status: u16,
        /// Whether credentials were sent to the token server.
        had_credentials: bool,
    },
    /// A pull of a `docker.io` image failed at every mirror and then at Docker Hub.
    #[error("failed to pull {reference}: tried {}, then {registry}", tried.iter().map(|t| format!("the mirror {} ({})", t.mirror, t.reason)).collect::<Vec<_>>().join(", "))]
    Mirrors {
        /// The reference.
        reference: String,
        /// The mirrors tried, in order, and why each failed.
        tried: Vec<crate::Tried>,
        /// Docker Hub's API host, tried last.
        registry: String,
        /// Why Docker Hub failed.
        #[source]
        source: Box<Error>,
    },
    /// A registry mirror that is not `http(s)://host[:port]`.
    #[error("invalid registry mirror {url:?}: {why}")]
    InvalidMirror {
        /// As given.
        url: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The token server refused a token.
    #[error("the token server {realm} of {registry} answered HTTP {status}{detail}")]
    Token {
        /// The registry.
        registry: String,
        /// The token server's URL (from the challenge).
        realm: String,
        /// The status code.
        status: u16,
        /// Whether credentials were sent.
        had_credentials: bool,
        /// Its error text, cut short.
        detail: String,
    },
    /// A `WWW-Authenticate` challenge that is neither Bearer nor Basic, or has no realm.
    #[error("{registry} asks for authentication hush cannot give: {challenge:?}")]
    Challenge {
        /// The registry.
        registry: String,
        /// The header's value.
        challenge: String,
    },
    /// Bytes that do not hash to the digest that names them.
    #[error(
        "{what} from {registry} does not match its digest {expected}: the bytes hash to {actual}"
    )]
    DigestMismatch {
        /// The registry.
        registry: String,
        /// What was fetched (`layer sha256:…`, `manifest of …`).
        what: String,
        /// The digest it should have.
        expected: String,
        /// The digest of what came.
        actual: String,
    },
    /// A body longer than its descriptor says (or than the limit for documents): the read
    /// stopped there.
    #[error("{what} from {registry} is longer than the {size} bytes it should have")]
    TooLong {
        /// The registry.
        registry: String,
        /// What was fetched.
        what: String,
        /// The size it should have (or the limit).
        size: u64,
    },
    /// A body shorter than its descriptor says.
    #[error("{what} from {registry} ended after {got} of its {size} bytes")]
    TooShort {
        /// The registry.
        registry: String,
        /// What was fetched.
        what: String,
        /// Bytes that came.
        got: u64,
        /// Bytes it should have.
        size: u64,
    },
    /// An index without a manifest for the platform asked for.
    #[error("{reference} has no image for {platform} (it has {available})")]
    NoPlatform {
        /// The reference.
        reference: String,
        /// The platform asked for.
        platform: String,
        /// The platforms it has.
        available: String,
    },
    /// A manifest, config or layer of a kind hush does not pull.
    #[error("{what} of {reference} has the unsupported media type {media_type:?}")]
    MediaType {
        /// The reference.
        reference: String,
        /// Which document or blob.
        what: String,
        /// Its media type.
        media_type: String,
    },
    /// A digest that is not `sha256:<64 hex>` (hush's store is sha256).
    #[error("unsupported digest {digest:?} (hush pulls sha256 content)")]
    UnsupportedDigest {
        /// As the registry gave it.
        digest: String,
    },
    /// A document that does not parse.
    #[error("failed to parse {what} from {registry}")]
    Json {
        /// The registry.
        registry: String,
        /// Which document.
        what: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A manifest and its config that disagree on the number of layers.
    #[error("the manifest of {reference} has {layers} layers and its config {diff_ids} diff ids")]
    LayerCount {
        /// The reference.
        reference: String,
        /// Layers in the manifest.
        layers: usize,
        /// Diff ids in the config.
        diff_ids: usize,
    },
    /// A layer whose uncompressed tar does not hash to the diff id its config names.
    #[error("layer {index} of {reference} unpacks to {actual}, not to the diff id {expected} its config names")]
    DiffId {
        /// The reference.
        reference: String,
        /// The layer's index, bottom first.
        index: usize,
        /// The config's diff id.
        expected: Digest,
        /// What the layer hashes to uncompressed.
        actual: Digest,
    },
    /// A platform that is not `os/arch[/variant]`.
    #[error(
        "invalid platform {0:?}: expected os/arch[/variant], like linux/amd64 or linux/arm/v7"
    )]
    Platform(String),
    /// A `--registry-ca` file that cannot be read or holds no certificate.
    #[error("failed to read a CA certificate from {path}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Docker's `config.json` could not be read or written.
    #[error("failed to {action} the docker config {path}")]
    DockerConfig {
        /// `read`, `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Docker's `config.json` is not JSON of the expected shape.
    #[error("failed to parse the docker config {path}")]
    DockerConfigJson {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// An `auths` entry whose `auth` is not base64 of `user:password`.
    #[error("the credentials of {registry} in {path} are not base64 of user:password")]
    BadAuth {
        /// The `auths` key.
        registry: String,
        /// The file.
        path: PathBuf,
    },
    /// A credential helper that could not be started.
    #[error("failed to run the credential helper {program}")]
    HelperSpawn {
        /// `docker-credential-<name>`.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A credential helper that failed.
    #[error(
        "the credential helper {program} failed to {action} the credentials of {server}: {message}"
    )]
    Helper {
        /// `docker-credential-<name>`.
        program: String,
        /// `get`, `store`, `erase`.
        action: &'static str,
        /// The server URL it was asked about.
        server: String,
        /// Its exit status and first line of output (never the credentials: it is only read
        /// when the helper failed).
        message: String,
    },
    /// A file of this process (a compressed layer being pushed) could not be written or read.
    #[error("failed to {action} {path}")]
    Io {
        /// What was done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] hush_oci::Error),
}

impl Error {
    /// A connection that failed on the registry's certificate (not trusted, not for this
    /// host, expired): `--registry-ca` or `--insecure-registry` may be what is missing.
    pub fn is_certificate_error(&self) -> bool {
        match self {
            Error::Transport { source, .. } => crate::client::is_certificate_error(source),
            _ => false,
        }
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
