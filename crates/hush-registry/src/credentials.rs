//! Credentials, and docker's credential helpers (`docker-credential-<name> get|store|erase`,
//! the protocol of docker/docker-credential-helpers: the server URL on stdin, JSON out).

use std::fmt;
use std::io::Write;
use std::process::{Command, Stdio};

use hush_secrets::Secret;

use crate::{Error, Result};

/// The user name docker's helpers give for an identity (refresh) token instead of a password.
const TOKEN_USER: &str = "<token>";

/// A user name and its password (or identity token). The secret is a [`Secret`]: no `Debug`
/// or `Display` of it, zeroized on drop.
pub struct Credentials {
    username: String,
    secret: Secret,
}

impl Credentials {
    /// A user name and password.
    pub fn new(username: impl Into<String>, password: Secret) -> Self {
        Credentials {
            username: username.into(),
            secret: password,
        }
    }

    /// The user name.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The password or identity token.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    /// Whether the secret is an identity token (an OAuth2 refresh token, as `docker login`
    /// keeps for some registries) rather than a password.
    pub fn is_identity_token(&self) -> bool {
        self.username == TOKEN_USER
    }

    /// `user:password`, base64: docker config's `auth` and HTTP basic auth's credentials.
    pub(crate) fn basic(&self) -> String {
        use base64::Engine as _;
        let mut raw = self.username.as_bytes().to_vec();
        raw.push(b':');
        raw.extend_from_slice(self.secret.expose());
        let s = base64::engine::general_purpose::STANDARD.encode(&raw);
        raw.iter_mut().for_each(|b| *b = 0);
        s
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}:<redacted>)", self.username)
    }
}

/// What a helper prints for `get` and reads for `store`.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperGet {
    username: String,
    secret: String,
}

/// A credential helper, by its suffix (`desktop`, `pass`, `ecr-login`).
pub(crate) struct Helper {
    program: String,
}

impl Helper {
    pub(crate) fn new(name: &str) -> Self {
        Helper {
            program: format!("docker-credential-{name}"),
        }
    }

    /// The credentials of `server`, or `None` if the helper has none.
    pub(crate) fn get(&self, server: &str) -> Result<Option<Credentials>> {
        let out = self.run("get", server.as_bytes())?;
        if !out.status.success() {
            let msg = String::from_utf8_lossy(&out.stdout);
            // docker-credential-helpers' `credentials.NewErrCredentialsNotFound`.
            if msg.contains("credentials not found") {
                return Ok(None);
            }
            return Err(self.failed("get", server, &out));
        }
        let got: HelperGet = serde_json::from_slice(&out.stdout).map_err(|_| Error::Helper {
            program: self.program.clone(),
            action: "get",
            server: server.into(),
            // Not the parse error: serde's message can quote the input, the secret.
            message: "it printed something that is not the expected JSON".into(),
        })?;
        if got.secret.is_empty() {
            return Ok(None);
        }
        Ok(Some(Credentials::new(
            got.username,
            Secret::new(got.secret.into_bytes()),
        )))
    }

    /// Store credentials for `server`.
    pub(crate) fn store(&self, server: &str, c: &Credentials) -> Result<()> {
        let mut input = serde_json::to_vec(&serde_json::json!({
            "ServerURL": server,
            "Username": c.username,
            "Secret": String::from_utf8_lossy(c.secret.expose()),
        }))
        .expect("serializes");
        let out = self.run("store", &input);
        input.iter_mut().for_each(|b| *b = 0);
        let out = out?;
        if !out.status.success() {
            return Err(self.failed("store", server, &out));
        }
        Ok(())
    }

    /// Remove the credentials of `server`.
    pub(crate) fn erase(&self, server: &str) -> Result<()> {
        let out = self.run("erase", server.as_bytes())?;
        let msg = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() && !msg.contains("credentials not found") {
            return Err(self.failed("erase", server, &out));
        }
        Ok(())
    }

    fn run(&self, action: &str, input: &[u8]) -> Result<std::process::Output> {
        let spawn_err = |source| Error::HelperSpawn {
            program: self.program.clone(),
            source,
        };
        let mut child = Command::new(&self.program)
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_err)?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading is seen in its status.
            let _ = stdin.write_all(input);
        }
        child.wait_with_output().map_err(spawn_err)
    }

    fn failed(&self, action: &'static str, server: &str, out: &std::process::Output) -> Error {
        let text = [&out.stdout, &out.stderr]
            .iter()
            .map(|b| String::from_utf8_lossy(b).trim().to_string())
            .find(|s| !s.is_empty())
            .unwrap_or_default();
        let first: String = text
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(200)
            .collect();
        Error::Helper {
            program: self.program.clone(),
            action,
            server: server.into(),
            message: format!("{} ({first})", out.status),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let c = Credentials::new("bob", Secret::new(b"hunter2-pw".to_vec()));
        let d = format!("{c:?}");
        assert!(d.contains("bob") && !d.contains("hunter2"), "{d}");
        assert_eq!(c.basic(), "Ym9iOmh1bnRlcjItcHc=");
        assert!(!c.is_identity_token());
    }
}
