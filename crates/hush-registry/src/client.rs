//! One registry's HTTP client: the transport (TLS with the system's roots and `--registry-ca`
//! files; plain HTTP only for loopback and `--insecure-registry` hosts, tried after HTTPS as
//! docker does), authentication (answering the challenge of `/v2/`, and a later 401 once), and
//! retries with backoff for what may pass (5xx, 429, a connection reset or timeout).
//!
//! Redirects are followed (at most [`MAX_REDIRECTS`]); the `Authorization` header follows only
//! to the same host, so a blob redirected to a storage service never carries the registry's
//! credentials.

use std::fs::File;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use hush_secrets::Secret;
use ureq::http::Response;
use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::Body;

use crate::auth::{fetch_token, insufficient_scope, Challenge};
use crate::credentials::Credentials;
use crate::progress::{Event, Progress};
use crate::{DockerConfig, Error, Options, Result};

/// Redirects followed for one request (a loop ends here with an error).
pub(crate) const MAX_REDIRECTS: u32 = 8;

/// A request body, opened again for each try.
pub(crate) enum Payload<'a> {
    /// No body.
    Empty,
    /// Bytes, with their content type.
    Bytes(&'a [u8], &'a str),
    /// A file's content (`application/octet-stream`).
    File(&'a Path),
}

/// A connection to one registry, for one set of scopes.
pub(crate) struct Client<'a> {
    /// As the reference names it, for messages and credentials.
    registry: String,
    /// `https://host[:port]` or `http://…`.
    base: String,
    agent: ureq::Agent,
    creds: Option<Credentials>,
    /// The token scopes every request asks for (`repository:a/b:pull,push`).
    scopes: Vec<String>,
    opts: &'a Options,
    progress: &'a dyn Progress,
    auth: Mutex<Auth>,
}

/// What the registry asked for, and the token it gave.
#[derive(Default)]
struct Auth {
    challenge: Option<Challenge>,
    token: Option<Secret>,
}

impl<'a> Client<'a> {
    /// Reach a registry (`registry` as the reference names it, `host` where its API answers)
    /// and learn how it authenticates: `GET /v2/`.
    pub(crate) fn connect(
        registry: &str,
        host: &str,
        scopes: Vec<String>,
        opts: &'a Options,
        progress: &'a dyn Progress,
    ) -> Result<Self> {
        let creds = DockerConfig::load(opts.docker_config_path())?.credentials(registry)?;
        Self::with_credentials(registry, host, scopes, creds, opts, progress)
    }

    /// [`Client::connect`] with the given credentials instead of docker's config.
    pub(crate) fn with_credentials(
        registry: &str,
        host: &str,
        scopes: Vec<String>,
        creds: Option<Credentials>,
        opts: &'a Options,
        progress: &'a dyn Progress,
    ) -> Result<Self> {
        let insecure = opts.insecure.iter().any(|h| h == registry || h == host);
        let plain_ok = insecure || is_loopback(host);
        let agent = agent(opts, insecure, !plain_ok)?;
        let mut client = Client {
            registry: registry.into(),
            base: format!("https://{host}"),
            agent,
            creds,
            scopes,
            opts,
            progress,
            auth: Mutex::default(),
        };
        // Where plain HTTP may follow, HTTPS is tried once, as docker does: a plain HTTP
        // server that never answers a TLS hello must not cost every retry's timeout.
        let https_attempts = if plain_ok { 1 } else { opts.attempts };
        match client.ping(https_attempts) {
            Err(Error::Transport { source, .. }) if plain_ok && !is_certificate_error(&source) => {
                tracing::debug!("{host}: HTTPS failed ({source:?}), trying plain HTTP");
                client.base = format!("http://{host}");
                client.ping(opts.attempts)?;
            }
            r => r?,
        }
        Ok(client)
    }

    /// `GET /v2/`: 200 (no auth) or 401 with the challenge to answer.
    fn ping(&self, attempts: u32) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        let resp = self.retried("GET", &url, attempts, || self.agent.get(&url).call())?;
        let status = resp.status().as_u16();
        if status == 401 {
            let challenge = self.challenge_of(&resp)?;
            self.auth.lock().expect("auth lock").challenge = Some(challenge);
            return Ok(());
        }
        if status != 200 {
            return Err(self.status_error("GET", "/v2/", resp));
        }
        Ok(())
    }

    /// Check the credentials (`hush login`): a token without scope, or `/v2/` with basic auth.
    pub(crate) fn check_login(&self) -> Result<()> {
        let challenge = self.auth.lock().expect("auth lock").challenge.clone();
        match challenge {
            Some(Challenge::Bearer { realm, service }) => {
                fetch_token(
                    &self.agent,
                    &self.registry,
                    &realm,
                    service.as_deref(),
                    &[],
                    self.creds.as_ref(),
                )?;
                Ok(())
            }
            Some(Challenge::Basic) => {
                let resp = self.send("GET", "/v2/", &[], Payload::Empty)?;
                match resp.status().as_u16() {
                    200 => Ok(()),
                    _ => Err(self.status_error("GET", "/v2/", resp)),
                }
            }
            None => Ok(()),
        }
    }

    /// The credentials this client was given.
    pub(crate) fn into_credentials(self) -> Option<Credentials> {
        self.creds
    }

    /// The registry's name as the reference gives it.
    pub(crate) fn registry(&self) -> &str {
        &self.registry
    }

    /// Send a request to `path` (`/v2/…`, or an absolute URL the registry gave, like an upload
    /// location), authenticated, retried while the failure may pass. Statuses other than
    /// 401/403 (an error) and 5xx/429 (retried) are the caller's to read.
    pub(crate) fn send(
        &self,
        method: &'static str,
        path: &str,
        headers: &[(&str, &str)],
        payload: Payload<'_>,
    ) -> Result<Response<Body>> {
        let url = self.url(path);
        let mut reauthenticated = false;
        loop {
            let authorization = self.authorization()?;
            let resp = self.with_retries(method, &url, || {
                let mut b = ureq::http::Request::builder().method(method).uri(&url);
                for (k, v) in headers {
                    b = b.header(*k, *v);
                }
                if let Some(a) = &authorization {
                    b = b.header("Authorization", a.as_str());
                }
                match &payload {
                    Payload::Empty => self.agent.run(b.body(()).map_err(ureq::Error::Http)?),
                    Payload::Bytes(bytes, ctype) => self.agent.run(
                        b.header("Content-Type", *ctype)
                            .body(*bytes)
                            .map_err(ureq::Error::Http)?,
                    ),
                    Payload::File(p) => {
                        let f = File::open(p).map_err(ureq::Error::Io)?;
                        self.agent.run(
                            b.header("Content-Type", "application/octet-stream")
                                .body(f)
                                .map_err(ureq::Error::Http)?,
                        )
                    }
                }
            })?;
            let status = resp.status().as_u16();
            if status == 401 && !reauthenticated && resp.headers().contains_key("www-authenticate")
            {
                // An expired token, or a registry that challenges only some paths: answer once.
                reauthenticated = true;
                let challenge = self.challenge_of(&resp)?;
                let mut auth = self.auth.lock().expect("auth lock");
                auth.challenge = Some(challenge);
                auth.token = None;
                continue;
            }
            if status == 401 || status == 403 {
                let challenge = resp.headers().get("www-authenticate");
                if let Some((repository, actions)) = challenge
                    .and_then(|v| v.to_str().ok())
                    .and_then(insufficient_scope)
                {
                    return Err(Error::Denied {
                        registry: self.registry.clone(),
                        repository,
                        actions,
                        status,
                        had_credentials: self.creds.is_some(),
                    });
                }
                return Err(Error::Unauthorized {
                    registry: self.registry.clone(),
                    path: path_of(&url),
                    status,
                    had_credentials: self.creds.is_some(),
                    detail: read_detail(resp, self.creds.as_ref()),
                });
            }
            return Ok(resp);
        }
    }

    /// Run `call` until it succeeds, fails for good, or tries run out: an error that may pass
    /// (a connection reset, a timeout) or a 5xx/429 answer is tried again after a wait that
    /// doubles.
    pub(crate) fn with_retries(
        &self,
        method: &'static str,
        url: &str,
        call: impl FnMut() -> std::result::Result<Response<Body>, ureq::Error>,
    ) -> Result<Response<Body>> {
        self.retried(method, url, self.opts.attempts, call)
    }

    /// [`Client::with_retries`] with at most `attempts` tries.
    fn retried(
        &self,
        method: &'static str,
        url: &str,
        attempts: u32,
        mut call: impl FnMut() -> std::result::Result<Response<Body>, ureq::Error>,
    ) -> Result<Response<Body>> {
        let mut attempt = 1;
        loop {
            let r = call();
            let reason = match &r {
                Ok(resp) if is_transient_status(resp.status().as_u16()) => {
                    Some(format!("HTTP {}", resp.status().as_u16()))
                }
                Err(e) if is_transient(e) => Some(e.to_string()),
                _ => None,
            };
            match reason {
                Some(reason) if attempt < attempts => {
                    self.retrying(format!("{method} {}", path_of(url)), attempt, reason);
                    attempt += 1;
                }
                _ => {
                    return match r {
                        Ok(resp) if is_transient_status(resp.status().as_u16()) => {
                            Err(self.status_error(method, url, resp))
                        }
                        Ok(resp) => Ok(resp),
                        Err(source) => Err(Error::Transport {
                            registry: self.registry.clone(),
                            method,
                            url: url.into(),
                            source: Box::new(source),
                        }),
                    }
                }
            }
        }
    }

    /// Report a failed try and wait before the next one.
    pub(crate) fn retrying(&self, what: String, attempt: u32, reason: String) {
        self.progress.event(Event::Retrying {
            what,
            attempt,
            reason,
        });
        let wait = self.opts.backoff * 2u32.saturating_pow(attempt - 1);
        std::thread::sleep(wait.min(Duration::from_secs(10)));
    }

    /// The options this client was made with.
    pub(crate) fn options(&self) -> &Options {
        self.opts
    }

    /// The progress receiver.
    pub(crate) fn progress(&self) -> &dyn Progress {
        self.progress
    }

    /// An error for an unexpected answer, with the registry's error codes and messages.
    pub(crate) fn status_error(
        &self,
        method: &'static str,
        path: &str,
        resp: Response<Body>,
    ) -> Error {
        Error::Status {
            registry: self.registry.clone(),
            method,
            path: path_of(path),
            status: resp.status().as_u16(),
            detail: read_detail(resp, self.creds.as_ref()),
        }
    }

    /// An absolute URL for a path of the API or a location the registry gave.
    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.into()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// The `Authorization` header for the next request, fetching a token if needed.
    fn authorization(&self) -> Result<Option<String>> {
        let mut auth = self.auth.lock().expect("auth lock");
        match auth.challenge.clone() {
            None => Ok(None),
            Some(Challenge::Basic) => {
                Ok(self.creds.as_ref().map(|c| format!("Basic {}", c.basic())))
            }
            Some(Challenge::Bearer { realm, service }) => {
                if auth.token.is_none() {
                    auth.token = Some(fetch_token(
                        &self.agent,
                        &self.registry,
                        &realm,
                        service.as_deref(),
                        &self.scopes,
                        self.creds.as_ref(),
                    )?);
                }
                Ok(auth
                    .token
                    .as_ref()
                    .map(|t| format!("Bearer {}", String::from_utf8_lossy(t.expose()))))
            }
        }
    }

    fn challenge_of(&self, resp: &Response<Body>) -> Result<Challenge> {
        let header = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        Challenge::parse(&self.registry, header)
    }
}

/// The agent: TLS with the system's roots and the extra CA files (or, for an insecure
/// registry, no certificate check), bounded redirects, statuses returned rather than errors.
pub(crate) fn agent(opts: &Options, insecure: bool, https_only: bool) -> Result<ureq::Agent> {
    let mut roots: Vec<Certificate<'static>> = rustls_native_certs::load_native_certs()
        .certs
        .into_iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    for path in &opts.ca_files {
        let ca_err = |source| Error::CaFile {
            path: path.clone(),
            source,
        };
        let pem = std::fs::read(path).map_err(ca_err)?;
        let before = roots.len();
        for item in ureq::tls::parse_pem(&pem) {
            if let Ok(ureq::tls::PemItem::Certificate(c)) = item {
                roots.push(c);
            }
        }
        if roots.len() == before {
            return Err(ca_err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "no PEM certificate in it",
            )));
        }
    }
    let tls = TlsConfig::builder()
        .root_certs(RootCerts::new_with_certs(&roots))
        .disable_verification(insecure)
        .build();
    Ok(ureq::Agent::config_builder()
        .http_status_as_error(false)
        .https_only(https_only)
        .max_redirects(MAX_REDIRECTS)
        .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost)
        .tls_config(tls)
        .user_agent(concat!("hush/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(120)))
        .timeout_per_read(Some(Duration::from_secs(120)))
        .build()
        .into())
}

/// Loopback hosts may be reached over plain HTTP (docker's rule: `localhost`, 127.0.0.0/8, ::1).
fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A TLS error about the certificate (it must not fall back to plain HTTP: the server speaks
/// TLS, and what it shows is not trusted).
pub(crate) fn is_certificate_error(e: &ureq::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(mut x) = cur {
        // An io::Error's `source` skips the error it wraps: look at that one itself.
        let io = match x.downcast_ref::<ureq::Error>() {
            Some(ureq::Error::Io(io)) => Some(io),
            _ => x.downcast_ref::<std::io::Error>(),
        };
        if let Some(inner) = io.and_then(|io| io.get_ref()) {
            x = inner;
        }
        if let Some(r) = x.downcast_ref::<rustls::Error>() {
            return matches!(
                r,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            );
        }
        if let Some(ureq::Error::Rustls(r)) = x.downcast_ref::<ureq::Error>() {
            return matches!(
                r,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            );
        }
        cur = x.source();
    }
    false
}

/// Errors that may pass if tried again.
fn is_transient(e: &ureq::Error) -> bool {
    use std::io::ErrorKind::*;
    match e {
        ureq::Error::Timeout(_) => true,
        ureq::Error::Io(io) => matches!(
            io.kind(),
            ConnectionReset
                | ConnectionAborted
                | BrokenPipe
                | UnexpectedEof
                | TimedOut
                | Interrupted
        ),
        _ => false,
    }
}

/// 5xx and 429 (too many requests) may pass.
fn is_transient_status(status: u16) -> bool {
    status >= 500 || status == 429
}

/// The path of a URL (`/v2/…`), for messages: no scheme, host or query (an upload location's
/// query holds the registry's upload state).
pub(crate) fn path_of(url: &str) -> String {
    let no_scheme = url.split_once("://").map_or(url, |(_, r)| r);
    let path = if url.contains("://") {
        no_scheme.find('/').map_or("/", |i| &no_scheme[i..])
    } else {
        no_scheme
    };
    path.split('?').next().unwrap_or(path).to_string()
}

/// Read an error answer's body (at most 64 KiB) into its error codes and messages.
fn read_detail(resp: Response<Body>, creds: Option<&Credentials>) -> String {
    let bytes = resp
        .into_body()
        .with_config()
        .limit(64 << 10)
        .read_to_vec()
        .unwrap_or_default();
    error_detail(&bytes, creds)
}

/// `: CODE: message; CODE: message` from the distribution spec's error body (`{"errors":
/// [{"code", "message"}]}`), or the start of a text body; with any credential we sent cut out,
/// should a server echo it.
pub(crate) fn error_detail(bytes: &[u8], creds: Option<&Credentials>) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let text = match serde_json::from_slice::<Errors>(bytes) {
        Ok(e) => e
            .errors
            .iter()
            .map(|i| format!("{}: {}", i.code, i.message))
            .collect::<Vec<_>>()
            .join("; "),
        Err(_) => String::from_utf8_lossy(bytes)
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('<'))
            .unwrap_or("")
            .to_string(),
    };
    let mut text: String = text.chars().take(300).collect();
    if let Some(c) = creds {
        let secret = String::from_utf8_lossy(c.secret().expose()).into_owned();
        for s in [secret, c.basic()] {
            if !s.is_empty() {
                text = text.replace(&s, "<redacted>");
            }
        }
    }
    if text.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", text.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for (h, l) in [
            ("127.0.0.1:5000", true),
            ("127.1.2.3", true),
            ("localhost:5000", true),
            ("[::1]:5000", true),
            ("registry.example:5000", false),
            ("10.0.0.1:5000", false),
        ] {
            assert_eq!(is_loopback(h), l, "{h}");
        }
    }

    #[test]
    fn paths_of_urls_drop_host_and_query() {
        assert_eq!(
            path_of("https://r:1/v2/a/blobs/uploads/x?_state=abc"),
            "/v2/a/blobs/uploads/x"
        );
        assert_eq!(path_of("/v2/a/manifests/t"), "/v2/a/manifests/t");
    }

    #[test]
    fn error_details_hold_codes_not_credentials() {
        let c = Credentials::new("u", Secret::new(b"pw-123".to_vec()));
        let d = error_detail(
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"bad pw-123","detail":"x"}]}"#,
            Some(&c),
        );
        assert_eq!(d, ": UNAUTHORIZED: bad <redacted>");
        assert_eq!(error_detail(b"", None), "");
    }
}
