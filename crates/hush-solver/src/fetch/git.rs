//! `ADD <git source> DEST`: a checkout of a ref, cloned with the host's `git` as BuildKit's git
//! source does (`util/gitutil/git_cli.go`), into this build's private fetch dir.
//!
//! - The ref is resolved first (`git ls-remote`): the commit keys the cache, with the subdir
//!   and `--keep-git-dir` (in the instruction). A ref that is a full commit id is not resolved.
//!   `--checksum` (or `?checksum=`) must be a prefix of that commit.
//! - The fetch is shallow (`--depth=1` of the ref), then the commit is checked out; submodules
//!   are fetched the same way (BuildKit's default). The `.git` directory is removed unless
//!   `--keep-git-dir`; kept, its `origin` has no credentials.
//! - git reads no configuration of the host's (`GIT_CONFIG_NOSYSTEM`; `HOME`, the global
//!   config and ssh's config are empty files of this build, so no credential helper or
//!   `insteadOf` of the user's runs), never
//!   prompts (`GIT_TERMINAL_PROMPT=0`, ssh's `BatchMode`), and speaks only `https`, `http`,
//!   `ssh` and `git`: `file://`, `ext::` and every other transport are refused, for the remote
//!   and for a hostile repository's submodules alike (`protocol.allow=never`).
//! - ssh remotes authenticate through the build's `default` `--ssh` agent, served through the
//!   same filtered socket a `RUN --mount=type=ssh` gets. Host keys are not checked
//!   (`StrictHostKeyChecking=no`, an empty known-hosts file of this build), as BuildKit does without
//!   `known_hosts`: pin the content with `--checksum=<commit>` where that matters.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use hush_dockerfile::instructions::remote::{redact_url, GitRef};
use hush_dockerfile::Location;
use hush_registry::download::split_userinfo;

use super::{Fetched, Remotes};
use crate::{Error, Result};

/// Why git failed: the command and what it wrote on stderr, credentials removed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// git could not be started.
    #[error("failed to run git (is it installed?)")]
    Spawn(#[source] std::io::Error),
    /// git failed.
    #[error("git {command} failed: {stderr}")]
    Failed {
        /// The subcommand (`ls-remote`, `fetch`, …).
        command: &'static str,
        /// Its stderr's last lines.
        stderr: String,
    },
    /// The ref names no commit on the remote.
    #[error("ref {reference:?} not found")]
    NoRef {
        /// The ref.
        reference: String,
    },
    /// The commit is not the checksum.
    #[error("the ref resolves to {commit}, not {checksum}")]
    Checksum {
        /// What it resolved to.
        commit: String,
        /// The `--checksum`.
        checksum: String,
    },
    /// The subdir is not a directory of the checkout.
    #[error("{subdir:?} is not a directory of the repository")]
    NoSubdir {
        /// The subdir.
        subdir: String,
    },
}

/// The environment and options every git command runs with.
struct Git<'a> {
    /// Removed from what git says (a URL's password, and the URL with it).
    scrub: Vec<(String, String)>,
    ssh_sock: Option<&'a Path>,
    /// A private, empty home: `HOME`, the global git config, ssh's config and known hosts
    /// (empty files of this build, not `/dev/null`: nothing git or ssh writes there is kept).
    home: PathBuf,
}

impl Git<'_> {
    fn command(&self, dir: Option<&Path>) -> Command {
        let mut c = Command::new("git");
        c.env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
            )
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", self.home.join("gitconfig"))
            .env("HOME", &self.home)
            .env("LC_ALL", "C")
            .env("GIT_SSH_COMMAND", self.ssh_command());
        for v in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "NO_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "no_proxy",
            "all_proxy",
        ] {
            if let Some(x) = std::env::var_os(v) {
                c.env(v, x);
            }
        }
        if let Some(s) = self.ssh_sock {
            c.env("SSH_AUTH_SOCK", s);
        }
        for opt in [
            "protocol.allow=never",
            "protocol.https.allow=always",
            "protocol.http.allow=always",
            "protocol.ssh.allow=always",
            "protocol.git.allow=always",
            "core.hooksPath=/dev/null",
            "core.fsmonitor=false",
            "credential.helper=",
            "advice.detachedHead=false",
        ] {
            c.arg("-c").arg(opt);
        }
        if let Some(d) = dir {
            c.arg("-C").arg(d);
        }
        c.stdin(Stdio::null());
        c
    }

    /// ssh with an empty config and known-hosts file, never prompting.
    fn ssh_command(&self) -> String {
        let quoted = |name: &str| {
            let p = self
                .home
                .join(name)
                .to_string_lossy()
                .replace('\'', "'\\''");
            format!("'{p}'")
        };
        format!(
            "ssh -F {} -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile={kh} \
             -o GlobalKnownHostsFile={kh} -o LogLevel=ERROR",
            quoted("ssh_config"),
            kh = quoted("known_hosts"),
        )
    }

    fn run(
        &self,
        dir: Option<&Path>,
        command: &'static str,
        args: &[&str],
    ) -> std::result::Result<String, GitError> {
        let out = self
            .command(dir)
            .arg(command)
            .args(args)
            .output()
            .map_err(GitError::Spawn)?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let mut stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        for (secret, shown) in &self.scrub {
            stderr = stderr.replace(secret.as_str(), shown);
        }
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let stderr = lines[lines.len().saturating_sub(6)..].join("\n");
        Err(GitError::Failed { command, stderr })
    }
}

fn is_commit(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The commit `reference` names in `git ls-remote` output, BuildKit's preference: a peeled
/// tag, a tag, a branch, then the ref as written.
fn pick(ls: &str, reference: &str) -> Option<String> {
    let refs: Vec<(&str, &str)> = ls.lines().filter_map(|l| l.split_once('\t')).collect();
    let find = |name: &str| {
        refs.iter()
            .find(|(_, n)| *n == name)
            .map(|(c, _)| c.to_string())
    };
    find(&format!("refs/tags/{reference}^{{}}"))
        .or_else(|| find(&format!("refs/tags/{reference}")))
        .or_else(|| find(&format!("refs/heads/{reference}")))
        .or_else(|| find(&format!("{reference}^{{}}")))
        .or_else(|| find(reference))
}

impl Remotes<'_> {
    fn git_tool<'s>(&self, g: &GitRef, sock: Option<&'s Path>) -> Result<Git<'s>> {
        let mut scrub = vec![(g.remote.clone(), redact_url(&g.remote))];
        if let Some((_, _, Some(pass))) = split_userinfo(&g.remote) {
            scrub.push((pass, "xxxxx".into()));
        }
        let home = self.fresh_dir("home")?;
        for f in ["gitconfig", "ssh_config", "known_hosts"] {
            let p = home.join(f);
            std::fs::write(&p, b"").map_err(|source| Error::Io {
                action: "write",
                path: p.clone(),
                source,
            })?;
        }
        Ok(Git {
            scrub,
            ssh_sock: sock,
            home,
        })
    }

    /// Serve the `default` ssh agent for an ssh remote, on a socket in a private directory.
    fn agent_for(&self, g: &GitRef) -> Result<Option<(hush_secrets::ssh::Proxy, PathBuf)>> {
        let Some(agent) = g.ssh.then(|| self.ssh.get("default")).flatten() else {
            return Ok(None);
        };
        let dir = self.fresh_dir("ssh")?;
        let sock = dir.join("agent.sock");
        let proxy = hush_secrets::ssh::Proxy::serve(&sock, agent).map_err(|source| Error::Io {
            action: "serve ssh agent at",
            path: sock.clone(),
            source,
        })?;
        Ok(Some((proxy, sock)))
    }

    /// The commit `g` names now (once per build).
    fn resolve(&self, g: &GitRef, location: Location) -> Result<String> {
        let reference = g.reference.clone().unwrap_or_else(|| "HEAD".into());
        if is_commit(&reference) {
            return Ok(reference.to_ascii_lowercase());
        }
        let cache_key = format!("{}#{reference}", g.remote);
        if let Some(c) = self
            .git
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&cache_key)
        {
            return Ok(c.clone());
        }
        let agent = self.agent_for(g)?;
        let tool = self.git_tool(g, agent.as_ref().map(|(_, s)| s.as_path()))?;
        let fail = |source| Error::Git {
            url: redact_url(&g.remote),
            location,
            source: Box::new(source),
        };
        let ls = tool
            .run(
                None,
                "ls-remote",
                &["--", &g.remote, &reference, &format!("{reference}^{{}}")],
            )
            .map_err(fail)?;
        let commit = pick(&ls, &reference).ok_or_else(|| {
            fail(GitError::NoRef {
                reference: reference.clone(),
            })
        })?;
        self.git
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(cache_key, commit.clone());
        Ok(commit)
    }

    pub(super) fn git_key(
        &self,
        g: &GitRef,
        checksum: Option<&str>,
        keep_git_dir: Option<bool>,
        location: Location,
    ) -> Result<String> {
        let (commit, keep) = self.checked_commit(g, checksum, keep_git_dir, location)?;
        Ok(format!(
            "git {} {commit} {:?} {keep}",
            redact_url(&g.remote),
            g.subdir
        ))
    }

    /// The commit, checked against the checksum, and whether `.git` is kept.
    fn checked_commit(
        &self,
        g: &GitRef,
        checksum: Option<&str>,
        keep_git_dir: Option<bool>,
        location: Location,
    ) -> Result<(String, bool)> {
        let commit = self.resolve(g, location)?;
        if let Some(sum) = checksum.or(g.checksum.as_deref()) {
            if !commit.starts_with(&sum.to_ascii_lowercase()) || sum.is_empty() {
                return Err(Error::Git {
                    url: redact_url(&g.remote),
                    location,
                    source: Box::new(GitError::Checksum {
                        commit,
                        checksum: sum.to_string(),
                    }),
                });
            }
        }
        Ok((commit, keep_git_dir.or(g.keep_git_dir).unwrap_or(false)))
    }

    pub(super) fn git_fetch(
        &self,
        g: &GitRef,
        checksum: Option<&str>,
        keep_git_dir: Option<bool>,
        location: Location,
    ) -> Result<Fetched> {
        let (commit, keep) = self.checked_commit(g, checksum, keep_git_dir, location)?;
        let agent = self.agent_for(g)?;
        let tool = self.git_tool(g, agent.as_ref().map(|(_, s)| s.as_path()))?;
        let fail = |source| Error::Git {
            url: redact_url(&g.remote),
            location,
            source: Box::new(source),
        };
        let dir = self.fresh_dir("git")?;
        let work = dir.join("checkout");
        let work_s = work.to_string_lossy().into_owned();
        tool.run(None, "init", &["-q", &work_s]).map_err(fail)?;
        // The ref by name where there is one (servers refuse unadvertised commits), else the
        // commit; then the commit must be what came.
        let want = match &g.reference {
            Some(r) if !is_commit(r) => r.clone(),
            Some(_) => commit.clone(),
            None => "HEAD".into(),
        };
        let shallow = ["-q", "--depth=1", "--no-tags", "--", &g.remote, &want];
        if tool.run(Some(&work), "fetch", &shallow).is_err() {
            // A server that cannot fetch shallow, or by commit: its branches and tags.
            let mut all = vec!["-q", "--", &g.remote, "+refs/heads/*:refs/remotes/origin/*"];
            all.push("+refs/tags/*:refs/tags/*");
            if want != commit {
                all.push(&want);
            }
            tool.run(Some(&work), "fetch", &all).map_err(fail)?;
        }
        let head = tool
            .run(Some(&work), "rev-parse", &["FETCH_HEAD^{commit}"])
            .map_err(fail)?;
        let target = if head.trim() == commit {
            "FETCH_HEAD".to_string()
        } else {
            commit.clone()
        };
        tool.run(Some(&work), "checkout", &["-q", "--detach", &target])
            .map_err(fail)?;
        let now = tool
            .run(Some(&work), "rev-parse", &["HEAD"])
            .map_err(fail)?;
        if now.trim() != commit {
            return Err(Error::RemoteChanged {
                url: redact_url(&g.remote),
                location,
            });
        }
        if work.join(".gitmodules").exists() {
            tool.run(
                Some(&work),
                "submodule",
                &["-q", "update", "--init", "--recursive", "--depth=1"],
            )
            .map_err(fail)?;
        }
        if keep {
            let bare = split_userinfo(&g.remote).map_or_else(|| g.remote.clone(), |(u, _, _)| u);
            tool.run(Some(&work), "remote", &["add", "origin", &bare])
                .map_err(fail)?;
            let _ = std::fs::remove_file(work.join(".git/FETCH_HEAD"));
        } else {
            remove(&work.join(".git"))?;
        }
        let top = if g.subdir.is_empty() {
            work
        } else {
            let p = hush_sandbox::rootfs::scoped_join(&work, &g.subdir, true)?;
            if !p.is_dir() {
                return Err(fail(GitError::NoSubdir {
                    subdir: g.subdir.clone(),
                }));
            }
            p
        };
        Ok(Fetched {
            dir: top,
            file: None,
        })
    }
}

fn remove(p: &Path) -> Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(_) => Ok(()),
    }
    .map_err(|source| Error::Io {
        action: "remove",
        path: p.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::pick;

    #[test]
    fn refs_picked_as_buildkit_does() {
        let ls = "aaa\trefs/heads/v1\nbbb\trefs/tags/v1\nccc\trefs/tags/v1^{}\nddd\tHEAD\n";
        assert_eq!(pick(ls, "v1").as_deref(), Some("ccc"));
        assert_eq!(pick(ls, "HEAD").as_deref(), Some("ddd"));
        assert_eq!(pick(ls, "refs/heads/v1").as_deref(), Some("aaa"));
        assert_eq!(pick(ls, "nope"), None);
    }
}
