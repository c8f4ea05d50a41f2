//! `ADD https://…`: one file, as BuildKit's HTTP source makes it — named after the URL path's
//! last part (`__unnamed__` when it has none), mode 0600 (`--chmod` applies on top), owned by
//! root (or `--chown`), its time the `Last-Modified` header's (the epoch without one), never
//! unpacked unless `--unpack=true`.
//!
//! Cache: the key is the body's sha256 (with the file name and its time), as BuildKit's. The
//! body's `ETag` is recorded (under a keyed hash of the URL, never the URL itself): the next
//! build asks with `If-None-Match`, and a `304 Not Modified` gives the key without a download;
//! only a cache miss then downloads it. With `--checksum` the checksum is the key and nothing
//! is downloaded until the step runs (a cache hit downloads nothing).

use hush_dockerfile::instructions::remote::redact_url;
use hush_dockerfile::Location;
use hush_oci::Digest;
use hush_registry::download::{download, Download, Downloaded};

use super::{set_mode_and_time, Fetched, Remotes};
use crate::{Error, Result};

/// What this build knows of one URL.
#[derive(Default)]
pub(super) struct Entry {
    /// The body's digest and time, once known (from a download or a 304 and its record).
    digest: Option<(Digest, Option<i64>)>,
    /// The downloaded file's directory, once downloaded.
    dir: Option<std::path::PathBuf>,
}

/// What a `304 Not Modified` stands for: recorded after a download that had an ETag.
#[derive(serde::Serialize, serde::Deserialize)]
struct EtagRecord {
    etag: String,
    digest: Digest,
    last_modified: Option<i64>,
}

/// BuildKit's dockerfile2llb: `path.Base(u.Path)`, `__unnamed__` when that is empty or `/`.
pub(crate) fn file_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    let path = path.split(['?', '#']).next().unwrap_or("");
    let base = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let base = percent_decoded(base);
    if base.is_empty() || base == "." || base == ".." {
        "__unnamed__".into()
    } else {
        base
    }
}

/// A name is one path part: a decoded `/` or NUL would make it more (or nothing).
fn percent_decoded(s: &str) -> String {
    hush_registry::download::percent_decode(s).replace(['/', '\0'], "_")
}

impl Remotes<'_> {
    pub(super) fn http_key(
        &self,
        url: &str,
        checksum: Option<&str>,
        location: Location,
    ) -> Result<String> {
        let name = file_name(url);
        if let Some(sum) = checksum {
            return Ok(format!("http {name} checksum {sum}"));
        }
        let mut map = self.http.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(url.to_string()).or_default();
        if entry.digest.is_none() {
            let record_key = crate::cache::url_record_key(self.store, url)?;
            let record = self
                .store
                .cache_get(&record_key)
                .and_then(|b| serde_json::from_slice::<EtagRecord>(&b).ok());
            let dir = self.fresh_dir("http")?;
            match self.get(
                url,
                &dir,
                record.as_ref().map(|r| r.etag.as_str()),
                location,
            )? {
                Downloaded::NotModified => {
                    let r = record.expect("a 304 answers an If-None-Match");
                    tracing::debug!(url = %redact_url(url), "not modified: keyed by the recorded digest");
                    entry.digest = Some((r.digest, r.last_modified));
                }
                Downloaded::Saved {
                    digest,
                    etag,
                    last_modified,
                    ..
                } => {
                    if let Some(etag) = etag {
                        let rec = EtagRecord {
                            etag,
                            digest: digest.clone(),
                            last_modified,
                        };
                        let bytes = serde_json::to_vec(&rec).expect("record serializes");
                        self.store.cache_put(&record_key, &bytes)?;
                    }
                    entry.digest = Some((digest, last_modified));
                    entry.dir = Some(dir);
                }
            }
        }
        let (digest, time) = entry.digest.as_ref().expect("set above");
        Ok(format!("http {name} {digest} {time:?}"))
    }

    pub(super) fn http_fetch(
        &self,
        url: &str,
        checksum: Option<&str>,
        location: Location,
    ) -> Result<Fetched> {
        let name = file_name(url);
        let mut map = self.http.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(url.to_string()).or_default();
        if let Some(dir) = &entry.dir {
            return Ok(Fetched {
                dir: dir.clone(),
                file: Some(name),
            });
        }
        let dir = self.fresh_dir("http")?;
        let Downloaded::Saved { digest, .. } = self.get(url, &dir, None, location)? else {
            unreachable!("a GET without If-None-Match is never answered 304 here")
        };
        if let Some(sum) = checksum {
            if digest.to_string() != sum {
                let _ = hush_oci::store::remove_tree(&dir);
                return Err(Error::ChecksumMismatch {
                    url: redact_url(url),
                    expected: sum.to_string(),
                    actual: digest.to_string(),
                    location,
                });
            }
        }
        if let Some((known, _)) = &entry.digest {
            if *known != digest {
                let _ = hush_oci::store::remove_tree(&dir);
                return Err(Error::RemoteChanged {
                    url: redact_url(url),
                    location,
                });
            }
        }
        entry.dir = Some(dir.clone());
        Ok(Fetched {
            dir,
            file: Some(name),
        })
    }

    /// Download `url` into `dir` as its file, mode 0600 and timed as BuildKit makes it.
    fn get(
        &self,
        url: &str,
        dir: &std::path::Path,
        if_none_match: Option<&str>,
        location: Location,
    ) -> Result<Downloaded> {
        let dest = dir.join(file_name(url));
        let got = download(
            &Download {
                url,
                dest: &dest,
                max_size: self.http_opts.max_size,
                if_none_match,
            },
            self.http_opts.client,
        );
        let got = match got {
            Ok(g) => g,
            Err(source) => {
                let _ = std::fs::remove_file(&dest);
                return Err(Error::Download {
                    url: redact_url(url),
                    location,
                    source: Box::new(source),
                });
            }
        };
        if let Downloaded::Saved { last_modified, .. } = &got {
            set_mode_and_time(&dest, 0o600, last_modified.unwrap_or(0))?;
        }
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use super::file_name;

    #[test]
    fn names_as_buildkit_gives_them() {
        assert_eq!(file_name("https://h/a/b.tgz?x=1#f"), "b.tgz");
        assert_eq!(file_name("https://h/a/dir/"), "dir");
        assert_eq!(file_name("https://h"), "__unnamed__");
        assert_eq!(file_name("https://h/"), "__unnamed__");
        assert_eq!(file_name("https://h/a%20b"), "a b");
        assert_eq!(file_name("https://h/x/..%2f..%2fetc"), ".._.._etc");
    }
}
