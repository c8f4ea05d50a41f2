//! ADD's remote sources, fetched by hush itself as BuildKit's daemon fetches them: an HTTP(S)
//! file ([`http`], downloaded through hush-registry's agent) or a Git repository ([`git`],
//! cloned with the host's `git`). Each is fetched at most once per build, into this build's
//! work dir, and keys the cache by what it is (the body's digest, or `--checksum`; the commit
//! a ref resolves to), never by a credential in its URL.

mod git;
mod http;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use hush_dockerfile::instructions::remote::{classify, Remote};
use hush_dockerfile::Location;
use hush_oci::store::Store;

use crate::{Error, Result};

pub(crate) use git::GitError;

/// What the HTTP fetches of a build may use.
pub(crate) struct HttpOptions<'a> {
    /// TLS roots and CA files (`--registry-ca`), as for registries.
    pub client: &'a hush_registry::Options,
    /// The most bytes one download may have ([`crate::DEFAULT_MAX_DOWNLOAD_SIZE`]).
    pub max_size: u64,
}

/// A fetched source, ready to copy: a file (`dir/name`) or a directory's contents (`dir`).
pub(crate) struct Fetched {
    /// Where it is.
    pub dir: PathBuf,
    /// The file's name in `dir`; None: copy all of `dir`.
    pub file: Option<String>,
}

/// The remote sources of one build.
pub(crate) struct Remotes<'a> {
    store: &'a Store,
    http_opts: HttpOptions<'a>,
    ssh: &'a hush_secrets::ssh::Agents,
    /// This build's fetch dir (made on first use, removed with the build).
    dir: OnceLock<PathBuf>,
    http: Mutex<HashMap<String, http::Entry>>,
    git: Mutex<HashMap<String, String>>,
    next: std::sync::atomic::AtomicUsize,
}

impl<'a> Remotes<'a> {
    pub(crate) fn new(
        store: &'a Store,
        http_opts: HttpOptions<'a>,
        ssh: &'a hush_secrets::ssh::Agents,
    ) -> Self {
        Remotes {
            store,
            http_opts,
            ssh,
            dir: OnceLock::new(),
            http: Mutex::default(),
            git: Mutex::default(),
            next: Default::default(),
        }
    }

    /// A fresh directory in this build's fetch dir.
    fn fresh_dir(&self, kind: &str) -> Result<PathBuf> {
        let root = match self.dir.get() {
            Some(d) => d.clone(),
            None => {
                let d = self.store.temp_dir("fetch")?;
                self.dir.get_or_init(|| d).clone()
            }
        };
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let d = root.join(format!("{kind}-{n}"));
        std::fs::create_dir_all(&d).map_err(|source| Error::Io {
            action: "create",
            path: d.clone(),
            source,
        })?;
        Ok(d)
    }

    /// The cache-key input of remote source `src` of an ADD.
    pub(crate) fn key(
        &self,
        src: &str,
        checksum: Option<&str>,
        keep_git_dir: Option<bool>,
        location: Location,
    ) -> Result<String> {
        match parse(src, location)? {
            Remote::Http(url) => self.http_key(&url, checksum, location),
            Remote::Git(g) => self.git_key(&g, checksum, keep_git_dir, location),
        }
    }

    /// Fetch `src` (once per build) for the ADD at `location`.
    pub(crate) fn fetch(
        &self,
        src: &str,
        checksum: Option<&str>,
        keep_git_dir: Option<bool>,
        location: Location,
    ) -> Result<Fetched> {
        match parse(src, location)? {
            Remote::Http(url) => self.http_fetch(&url, checksum, location),
            Remote::Git(g) => self.git_fetch(&g, checksum, keep_git_dir, location),
        }
    }
}

impl Drop for Remotes<'_> {
    fn drop(&mut self) {
        if let Some(d) = self.dir.get() {
            let _ = hush_oci::store::remove_tree(d);
        }
    }
}

/// Whether `src` is an ADD source hush fetches.
pub(crate) fn is_remote(src: &str) -> bool {
    hush_dockerfile::instructions::is_remote_source(src)
}

fn parse(src: &str, location: Location) -> Result<Remote> {
    match classify(src) {
        Ok(Some(r)) => Ok(r),
        // Dispatch refused a malformed Git source already; a local path never comes here.
        _ => Err(Error::NotRemote {
            source_path: hush_dockerfile::instructions::remote::redact_url(src),
            location,
        }),
    }
}

/// `path` set to `mode` and its times to `mtime` (seconds since the epoch).
fn set_mode_and_time(path: &Path, mode: u32, mtime: i64) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        Error::Io {
            action: "chmod",
            path: path.into(),
            source,
        }
    })?;
    hush_oci::layer::set_mtime(path, mtime)?;
    Ok(())
}
