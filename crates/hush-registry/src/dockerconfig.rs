//! Docker's client config (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`): where
//! `docker login` keeps credentials, read and written as docker does — `auths` (base64
//! `user:password`, or an `identitytoken`), `credsStore` (one helper for every registry) and
//! `credHelpers` (a helper per registry, which wins). Keys the file has that hush does not
//! know are kept as they are when it is written.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use hush_secrets::Secret;
use serde_json::{Map, Value};

use crate::credentials::{Credentials, Helper};
use crate::{Error, Result};

/// The key docker uses for Docker Hub in `auths` and with helpers.
const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// Docker's `config.json`.
pub struct DockerConfig {
    path: PathBuf,
    doc: Map<String, Value>,
}

/// The path only: the document holds credentials.
impl std::fmt::Debug for DockerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DockerConfig({})", self.path.display())
    }
}

impl DockerConfig {
    /// Read the config in `dir`, else in `$DOCKER_CONFIG`, else in `~/.docker`. A missing file
    /// is an empty config.
    pub fn load(dir: Option<&Path>) -> Result<Self> {
        let dir = match dir {
            Some(d) => d.to_path_buf(),
            None => match std::env::var_os("DOCKER_CONFIG") {
                Some(d) if !d.is_empty() => PathBuf::from(d),
                _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                    .join(".docker"),
            },
        };
        let path = dir.join("config.json");
        let doc = match fs::read(&path) {
            Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(b) => serde_json::from_slice(&b).map_err(|source| Error::DockerConfigJson {
                path: path.clone(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(source) => {
                return Err(Error::DockerConfig {
                    action: "read",
                    path,
                    source,
                })
            }
        };
        Ok(DockerConfig { path, doc })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The credentials for a registry (`docker.io`, `127.0.0.1:5000`), from its helper or from
    /// `auths`.
    pub fn credentials(&self, registry: &str) -> Result<Option<Credentials>> {
        let host = hostname(registry);
        if let Some(helper) = self.helper(&host) {
            return helper.get(&server_url(registry));
        }
        let Some((key, entry)) = self
            .auths()
            .and_then(|a| a.iter().find(|(k, _)| hostname(k) == host))
        else {
            return Ok(None);
        };
        let bad = || Error::BadAuth {
            registry: key.clone(),
            path: self.path.clone(),
        };
        if let Some(token) = entry.get("identitytoken").and_then(Value::as_str) {
            if !token.is_empty() {
                return Ok(Some(Credentials::new(
                    "<token>",
                    Secret::new(token.as_bytes().to_vec()),
                )));
            }
        }
        if let Some(auth) = entry.get("auth").and_then(Value::as_str) {
            if auth.is_empty() {
                return Ok(None);
            }
            let raw = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad())?;
            let colon = raw.iter().position(|&b| b == b':').ok_or_else(bad)?;
            let user = String::from_utf8(raw[..colon].to_vec()).map_err(|_| bad())?;
            return Ok(Some(Credentials::new(
                user,
                Secret::new(raw[colon + 1..].to_vec()),
            )));
        }
        match (
            entry.get("username").and_then(Value::as_str),
            entry.get("password").and_then(Value::as_str),
        ) {
            (Some(u), Some(p)) => Ok(Some(Credentials::new(
                u,
                Secret::new(p.as_bytes().to_vec()),
            ))),
            _ => Ok(None),
        }
    }

    /// `docker login`: keep the credentials for `registry`, through its helper when one is
    /// configured (and then, as docker does, an empty `auths` entry records the login), and
    /// write the file.
    pub fn login(&mut self, registry: &str, c: &Credentials) -> Result<()> {
        let server = server_url(registry);
        let entry = match self.helper(&hostname(registry)) {
            Some(helper) => {
                helper.store(&server, c)?;
                Map::new()
            }
            None => {
                let mut m = Map::new();
                m.insert("auth".into(), Value::String(c.basic()));
                m
            }
        };
        self.remove_auths(registry);
        let auths = self
            .doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        if let Value::Object(a) = auths {
            a.insert(server, Value::Object(entry));
        }
        self.write()
    }

    /// `docker logout`: forget the credentials of `registry` (erased from its helper too).
    /// Returns whether there were any.
    pub fn logout(&mut self, registry: &str) -> Result<bool> {
        let had_helper = match self.helper(&hostname(registry)) {
            Some(helper) => {
                let had = helper.get(&server_url(registry))?.is_some();
                helper.erase(&server_url(registry))?;
                had
            }
            None => false,
        };
        let had_entry = self.remove_auths(registry);
        if had_entry {
            self.write()?;
        }
        Ok(had_helper || had_entry)
    }

    /// The helper for a registry host: `credHelpers` first, then `credsStore`.
    fn helper(&self, host: &str) -> Option<Helper> {
        let per_registry = self
            .doc
            .get("credHelpers")
            .and_then(Value::as_object)
            .and_then(|h| h.iter().find(|(k, _)| hostname(k) == host))
            .and_then(|(_, v)| v.as_str());
        per_registry
            .or_else(|| self.doc.get("credsStore").and_then(Value::as_str))
            .filter(|n| !n.is_empty())
            .map(Helper::new)
    }

    fn auths(&self) -> Option<&Map<String, Value>> {
        self.doc.get("auths").and_then(Value::as_object)
    }

    /// Remove every `auths` key naming this registry. Returns whether one was there.
    fn remove_auths(&mut self, registry: &str) -> bool {
        let host = hostname(registry);
        match self.doc.get_mut("auths").and_then(Value::as_object_mut) {
            Some(a) => {
                let before = a.len();
                a.retain(|k, _| hostname(k) != host);
                a.len() != before
            }
            None => false,
        }
    }

    /// Write the file atomically, 0600 (its directory 0700 if made).
    fn write(&self) -> Result<()> {
        let err = |source| Error::DockerConfig {
            action: "write",
            path: self.path.clone(),
            source,
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(err)?;
        let tmp = dir.join(format!(".config.json.{}", std::process::id()));
        let mut bytes = serde_json::to_vec_pretty(&self.doc).expect("serializes");
        bytes.push(b'\n');
        let r = (|| {
            let mut f = fs::File::options()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &self.path)
        })();
        bytes.iter_mut().for_each(|b| *b = 0);
        if r.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        r.map_err(err)
    }
}

/// The server URL docker gives helpers and uses as the `auths` key: Docker Hub's legacy index
/// URL for Docker Hub, the registry's host otherwise.
fn server_url(registry: &str) -> String {
    if hostname(registry) == "index.docker.io" {
        DOCKER_HUB_SERVER.into()
    } else {
        hostname(registry)
    }
}

/// A registry name or `auths` key as a host (docker's `ConvertToHostname`): no scheme, no path,
/// and Docker Hub's names as one.
fn hostname(key: &str) -> String {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = k.split('/').next().unwrap_or(k);
    match host {
        "docker.io" | "registry-1.docker.io" | "index.docker.io" => "index.docker.io".into(),
        h => h.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, json: &str) -> DockerConfig {
        fs::write(dir.join("config.json"), json).unwrap();
        DockerConfig::load(Some(dir)).unwrap()
    }

    #[test]
    fn auths_are_found_under_any_spelling_of_the_registry() {
        let t = tempfile::tempdir().unwrap();
        let c = config(
            t.path(),
            r#"{"auths": {"https://index.docker.io/v1/": {"auth": "dTE6cDE="},
                          "http://127.0.0.1:5000": {"auth": "dTI6cDI6eA=="},
                          "r.example": {"identitytoken": "tok"}},
                "psFormat": "keep me"}"#,
        );
        let got = |r: &str| {
            c.credentials(r)
                .unwrap()
                .map(|c| (c.username().to_string(), c.secret().expose().to_vec()))
        };
        assert_eq!(got("docker.io"), Some(("u1".into(), b"p1".to_vec())));
        assert_eq!(got("127.0.0.1:5000"), Some(("u2".into(), b"p2:x".to_vec())));
        assert_eq!(got("r.example"), Some(("<token>".into(), b"tok".to_vec())));
        assert_eq!(got("other:5000"), None);
    }

    #[test]
    fn login_and_logout_keep_other_keys_and_a_private_file() {
        let t = tempfile::tempdir().unwrap();
        let mut c = config(t.path(), r#"{"psFormat": "keep me"}"#);
        let creds = Credentials::new("bob", Secret::new(b"pw".to_vec()));
        c.login("127.0.0.1:5000", &creds).unwrap();
        let again = DockerConfig::load(Some(t.path())).unwrap();
        assert_eq!(
            again
                .credentials("127.0.0.1:5000")
                .unwrap()
                .unwrap()
                .username(),
            "bob"
        );
        let text = fs::read_to_string(t.path().join("config.json")).unwrap();
        assert!(
            text.contains("keep me") && text.contains("127.0.0.1:5000"),
            "{text}"
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &fs::metadata(t.path().join("config.json"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let mut again = again;
        assert!(again.logout("127.0.0.1:5000").unwrap());
        assert!(!again.logout("127.0.0.1:5000").unwrap());
        let after = DockerConfig::load(Some(t.path())).unwrap();
        assert!(after.credentials("127.0.0.1:5000").unwrap().is_none());
    }

    #[test]
    fn a_bad_auth_entry_is_named_without_its_value() {
        let t = tempfile::tempdir().unwrap();
        let c = config(
            t.path(),
            r#"{"auths": {"r:1": {"auth": "c2VjcmV0LW5vLWNvbG9u"}}}"#,
        );
        let e = c.credentials("r:1").unwrap_err().to_string();
        assert!(
            e.contains("r:1") && !e.contains("secret-no-colon") && !e.contains("c2Vj"),
            "{e}"
        );
    }
}
