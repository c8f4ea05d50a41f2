//! SSH agent forwarding for `RUN --mount=type=ssh`.
//!
//! `--ssh default|ID[=SOCKET|KEYFILE[,KEYFILE…]][,keys=SHA256:…]` names where signatures come
//! from: the user's agent (`$SSH_AUTH_SOCK` for `default` without a path, or a socket) or key
//! files held by an in-process agent. For each RUN that mounts it, [`Proxy`] serves a Unix socket
//! that speaks the agent protocol (messages decoded with `ssh-agent-lib`) and lets through only
//! *list identities* and *sign*; adding, removing, locking keys and extensions are refused. With
//! `keys=`, only those keys are listed and may sign. Private key bytes never leave this process.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use signature::Signer;
use ssh_agent_lib::blocking::Client;
use ssh_agent_lib::proto::{Identity, PublicCredential, Request, Response, SignRequest};
use ssh_encoding::{Decode, Encode};
use ssh_key::{HashAlg, PrivateKey};

/// Errors of `--ssh`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SshError {
    /// Text that is not `ID[=PATHS][,keys=…]`.
    #[error("invalid --ssh {spec:?}: {reason}")]
    Invalid {
        /// What was given.
        spec: String,
        /// Why.
        reason: String,
    },
    /// `default` with no path and no `SSH_AUTH_SOCK`.
    #[error("--ssh {id}: SSH_AUTH_SOCK is not set, so there is no agent to forward")]
    NoAgent {
        /// The id.
        id: String,
    },
    /// The same id twice.
    #[error("ssh id {0:?} given more than once")]
    Duplicate(String),
    /// A key file that cannot be read or parsed.
    #[error("--ssh {id}: cannot load key {path}: {reason}")]
    Key {
        /// The id.
        id: String,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An encrypted key (hush does not prompt for passphrases).
    #[error("--ssh {id}: key {path} is protected by a passphrase")]
    Encrypted {
        /// The id.
        id: String,
        /// The file.
        path: PathBuf,
    },
}

/// Where an id's signatures come from.
#[derive(Debug)]
enum Backend {
    /// Forward to an agent listening on this socket.
    Upstream(PathBuf),
    /// Keys loaded in this process.
    Keys(Vec<PrivateKey>),
}

/// One `--ssh` id.
#[derive(Debug)]
pub struct Agent {
    backend: Backend,
    /// `keys=` fingerprints (`SHA256:…`); empty = all.
    allowed: Vec<String>,
}

/// The `--ssh` ids of a build.
#[derive(Debug, Default)]
pub struct Agents {
    map: BTreeMap<String, Arc<Agent>>,
}

impl Agents {
    /// Parse every `--ssh` value. `auth_sock` is `$SSH_AUTH_SOCK`.
    pub fn load(specs: &[String], auth_sock: Option<&str>) -> Result<Self, SshError> {
        let mut out = Agents::default();
        for spec in specs {
            let invalid = |reason: &str| SshError::Invalid {
                spec: spec.clone(),
                reason: reason.into(),
            };
            let mut parts = spec.split(',');
            let first = parts.next().unwrap_or_default();
            let (id, mut paths): (String, Vec<PathBuf>) = match first.split_once('=') {
                Some((id, p)) => (id.to_string(), vec![PathBuf::from(p)]),
                None => (first.to_string(), Vec::new()),
            };
            if id.is_empty() {
                return Err(invalid("an id is required (e.g. default)"));
            }
            let mut allowed = Vec::new();
            for p in parts {
                match p.strip_prefix("keys=") {
                    Some(k) => allowed.push(k.to_string()),
                    None if p.starts_with("SHA256:") && !allowed.is_empty() => {
                        allowed.push(p.to_string())
                    }
                    None => paths.push(PathBuf::from(p)),
                }
            }
            if out.map.contains_key(&id) {
                return Err(SshError::Duplicate(id));
            }
            let backend = match paths.as_slice() {
                [] => match auth_sock.filter(|s| !s.is_empty()) {
                    Some(s) => Backend::Upstream(PathBuf::from(s)),
                    None => return Err(SshError::NoAgent { id }),
                },
                [p] if is_socket(p) => Backend::Upstream(p.clone()),
                _ => Backend::Keys(
                    paths
                        .iter()
                        .map(|p| load_key(&id, p))
                        .collect::<Result<_, _>>()?,
                ),
            };
            out.map.insert(id, Arc::new(Agent { backend, allowed }));
        }
        Ok(out)
    }

    /// The agent for an id.
    pub fn get(&self, id: &str) -> Option<Arc<Agent>> {
        self.map.get(id).cloned()
    }
}

fn is_socket(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(p)
        .map(|m| m.file_type().is_socket())
        .unwrap_or(false)
}

fn load_key(id: &str, path: &Path) -> Result<PrivateKey, SshError> {
    let err = |reason: String| SshError::Key {
        id: id.into(),
        path: path.into(),
        reason,
    };
    let text = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let key = PrivateKey::from_openssh(&text).map_err(|e| err(e.to_string()))?;
    if key.is_encrypted() {
        return Err(SshError::Encrypted {
            id: id.into(),
            path: path.into(),
        });
    }
    Ok(key)
}

fn fingerprint(c: &PublicCredential) -> String {
    c.key_data().fingerprint(HashAlg::Sha256).to_string()
}

impl Agent {
    fn allows(&self, c: &PublicCredential) -> bool {
        self.allowed.is_empty() || self.allowed.contains(&fingerprint(c))
    }

    fn identities(&self) -> Option<Vec<Identity>> {
        let all = match &self.backend {
            Backend::Upstream(sock) => Client::new(UnixStream::connect(sock).ok()?)
                .request_identities()
                .ok()?,
            Backend::Keys(keys) => keys
                .iter()
                .map(|k| Identity {
                    credential: PublicCredential::Key(k.public_key().key_data().clone()),
                    comment: k.comment().to_string(),
                })
                .collect(),
        };
        Some(
            all.into_iter()
                .filter(|i| self.allows(&i.credential))
                .collect(),
        )
    }

    fn sign(&self, req: SignRequest) -> Option<ssh_key::Signature> {
        if !self.allows(&req.credential) {
            return None;
        }
        match &self.backend {
            Backend::Upstream(sock) => Client::new(UnixStream::connect(sock).ok()?).sign(req).ok(),
            Backend::Keys(keys) => {
                let key = keys
                    .iter()
                    .find(|k| k.public_key().key_data() == req.credential.key_data())?;
                key.try_sign(&req.data).ok()
            }
        }
    }

    /// Answer one request: identities and signatures only.
    fn answer(&self, req: Request, signatures: &AtomicUsize) -> Response {
        match req {
            Request::RequestIdentities => self
                .identities()
                .map_or(Response::Failure, Response::IdentitiesAnswer),
            Request::SignRequest(s) => match self.sign(s) {
                Some(sig) => {
                    signatures.fetch_add(1, Ordering::Relaxed);
                    Response::SignResponse(sig)
                }
                None => Response::Failure,
            },
            _ => Response::Failure,
        }
    }
}

/// A socket serving one agent to one RUN. Stop it (or drop it) when the RUN ends.
pub struct Proxy {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    signatures: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listen on `path` (a new socket; its directory must be private) and serve `agent`.
    pub fn serve(path: &Path, agent: Arc<Agent>) -> std::io::Result<Proxy> {
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let signatures = Arc::new(AtomicUsize::new(0));
        let (s, n) = (stop.clone(), signatures.clone());
        let thread = std::thread::spawn(move || accept_loop(listener, agent, s, n));
        Ok(Proxy {
            path: path.to_path_buf(),
            stop,
            signatures,
            thread: Some(thread),
        })
    }

    /// How many signatures were made.
    pub fn signatures(&self) -> usize {
        self.signatures.load(Ordering::Relaxed)
    }

    /// Stop serving and remove the socket. Returns the number of signatures.
    pub fn stop(mut self) -> usize {
        self.shutdown();
        self.signatures()
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(
    listener: UnixListener,
    agent: Arc<Agent>,
    stop: Arc<AtomicBool>,
    signatures: Arc<AtomicUsize>,
) {
    let mut conns: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let (a, s, n) = (agent.clone(), stop.clone(), signatures.clone());
                conns.push(std::thread::spawn(move || serve_conn(stream, a, s, n)));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            Err(_) => break,
        }
    }
    for c in conns {
        let _ = c.join();
    }
}

/// Agent messages are `uint32 length` + body; bodies over 256 KiB are refused.
fn serve_conn(
    mut stream: UnixStream,
    agent: Arc<Agent>,
    stop: Arc<AtomicBool>,
    signatures: Arc<AtomicUsize>,
) {
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_millis(100)));
    loop {
        let mut len = [0u8; 4];
        match read_full(&mut stream, &mut len, &stop) {
            Some(true) => {}
            _ => return,
        }
        let n = u32::from_be_bytes(len) as usize;
        if n == 0 || n > 256 * 1024 {
            return;
        }
        let mut body = vec![0u8; n];
        if read_full(&mut stream, &mut body, &stop) != Some(true) {
            return;
        }
        let response = match Request::decode(&mut &body[..]) {
            Ok(req) => agent.answer(req, &signatures),
            Err(_) => Response::Failure,
        };
        let mut out = Vec::new();
        let Ok(len) = response.encoded_len() else {
            return;
        };
        if (len as u32).encode(&mut out).is_err() || response.encode(&mut out).is_err() {
            return;
        }
        if stream.write_all(&out).is_err() {
            return;
        }
    }
}

/// Fill `buf`; Some(true) when full, Some(false)/None on EOF, error or stop.
fn read_full(stream: &mut UnixStream, buf: &mut [u8], stop: &AtomicBool) -> Option<bool> {
    let mut got = 0;
    while got < buf.len() {
        match stream.read(&mut buf[got..]) {
            Ok(0) => return Some(false),
            Ok(k) => got += k,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                if stop.load(Ordering::SeqCst) {
                    return None;
                }
            }
            Err(_) => return None,
        }
    }
    Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert!(matches!(
            Agents::load(&["default".into()], None),
            Err(SshError::NoAgent { .. })
        ));
        let a = Agents::load(&["default".into()], Some("/tmp/agent.sock")).unwrap();
        assert!(a.get("default").is_some());
        assert!(matches!(
            Agents::load(&["default".into(), "default".into()], Some("/s")),
            Err(SshError::Duplicate(_))
        ));
        let e = Agents::load(&["gh=/nonexistent/key".into()], None).unwrap_err();
        assert!(
            e.to_string().contains("cannot load key /nonexistent/key"),
            "{e}"
        );
    }
}
