//! One file over HTTP(S), for `ADD https://…`: what BuildKit's HTTP source does, on the same
//! agent as the registry client (TLS with the system's roots and `--registry-ca`, at most
//! [`crate::client::MAX_REDIRECTS`] redirects, connect and read timeouts, proxies from
//! `HTTP(S)_PROXY`/`NO_PROXY` as Go's `http.ProxyFromEnvironment`).
//!
//! The body streams to a file, hashed as it goes, and stops one byte past the size cap: an
//! endless body costs at most the cap. A URL's `user:password@` becomes basic auth (Go's
//! `net/http` does the same), sent to the URL's host only (not after a redirect elsewhere);
//! errors do not hold the URL: the caller names it, without its credentials.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use hush_oci::digest::HashingWriter;
use hush_oci::Digest;

use crate::Options;

/// What to download.
#[derive(Debug, Clone, Copy)]
pub struct Download<'a> {
    /// The URL, credentials included (they become an `Authorization` header).
    pub url: &'a str,
    /// Where the body goes (created, or truncated).
    pub dest: &'a Path,
    /// The most bytes the body may have.
    pub max_size: u64,
    /// The ETag of the copy the caller has: a `304 Not Modified` answer leaves `dest` alone.
    pub if_none_match: Option<&'a str>,
}

/// What a download got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Downloaded {
    /// The server says the caller's copy (its ETag) is current: nothing was written.
    NotModified,
    /// The body, written to `dest`.
    Saved {
        /// Its sha256.
        digest: Digest,
        /// Its size.
        size: u64,
        /// Its `ETag`, if the server gave one (without `W/` and quotes kept as sent).
        etag: Option<String>,
        /// Its `Last-Modified`, in seconds since the epoch.
        last_modified: Option<i64>,
    },
}

/// Why a download failed (the caller names the URL).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DownloadError {
    /// No answer: DNS, connection, TLS, a timeout, too many redirects.
    #[error("no answer")]
    Transport(#[source] Box<ureq::Error>),
    /// An answer that is not a success.
    #[error("the server answered HTTP {status}")]
    Status {
        /// The status code.
        status: u16,
    },
    /// A body past the cap (the read stopped there).
    #[error("the body is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The cap.
        limit: u64,
    },
    /// The body stopped (a reset connection, a timeout between reads).
    #[error("reading the body failed")]
    Read(#[source] io::Error),
    /// Writing the file failed.
    #[error("failed to write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The agent could not be made (a `--registry-ca` file that is not PEM).
    #[error(transparent)]
    Setup(Box<crate::Error>),
}

/// Download `d.url` into `d.dest`.
pub fn download(d: &Download<'_>, opts: &Options) -> Result<Downloaded, DownloadError> {
    let agent =
        crate::client::agent(opts, false, false).map_err(|e| DownloadError::Setup(Box::new(e)))?;
    let transport = |source| DownloadError::Transport(Box::new(source));
    let (url, auth) = match split_userinfo(d.url) {
        Some((bare, user, pass)) => {
            let pass = pass.map(|p| percent_decode(&p)).unwrap_or_default();
            let pair = format!("{}:{pass}", percent_decode(&user));
            let header = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            );
            (bare, Some(header))
        }
        None => (d.url.to_string(), None),
    };
    let mut req = agent.get(&url);
    if let Some(a) = &auth {
        req = req.header("Authorization", a);
    }
    if let Some(tag) = d.if_none_match {
        req = req.header("If-None-Match", tag);
    }
    let resp = req.call().map_err(transport)?;
    let status = resp.status().as_u16();
    if status == 304 && d.if_none_match.is_some() {
        return Ok(Downloaded::NotModified);
    }
    if !(200..300).contains(&status) {
        return Err(DownloadError::Status { status });
    }
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let etag = header("etag");
    let last_modified = header("last-modified").and_then(|v| parse_http_date(&v));
    if let Some(len) = header("content-length").and_then(|v| v.parse::<u64>().ok()) {
        if len > d.max_size {
            return Err(DownloadError::TooLarge { limit: d.max_size });
        }
    }
    let write_err = |source| DownloadError::Write {
        path: d.dest.to_path_buf(),
        source,
    };
    let file = File::create(d.dest).map_err(write_err)?;
    let mut out = HashingWriter::new(io::BufWriter::with_capacity(1 << 20, file));
    let mut body = resp.into_body().into_reader().take(d.max_size + 1);
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(DownloadError::Read(source)),
        };
        if out.digest().1 + n as u64 > d.max_size {
            return Err(DownloadError::TooLarge { limit: d.max_size });
        }
        out.write_all(&buf[..n]).map_err(write_err)?;
    }
    let (digest, size, w) = out.finish();
    let file = w.into_inner().map_err(|e| write_err(e.into_error()))?;
    file.sync_all().map_err(write_err)?;
    Ok(Downloaded::Saved {
        digest,
        size,
        etag,
        last_modified,
    })
}

/// `scheme://user[:password]@rest` → (`scheme://rest`, user, password), as written (still
/// percent-encoded). None when the URL has no userinfo.
pub fn split_userinfo(url: &str) -> Option<(String, String, Option<String>)> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (userinfo, host) = rest[..end].rsplit_once('@')?;
    let (user, pass) = match userinfo.split_once(':') {
        Some((u, p)) => (u, Some(p.to_string())),
        None => (userinfo, None),
    };
    Some((
        format!("{scheme}://{host}{}", &rest[end..]),
        user.to_string(),
        pass,
    ))
}

/// `%XX` escapes decoded (a userinfo's `@` or `:` is written `%40`, `%3A`; a path's space
/// `%20`); bytes that are not UTF-8 become U+FFFD.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110's preferred form, which Go's
/// `http.ParseTime` reads first) in seconds since the epoch.
fn parse_http_date(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)?
        + 1;
    let (day, year): (u32, u32) = (day.parse().ok()?, year.parse().ok()?);
    hush_oci::image::parse_rfc3339(&format!("{year:04}-{month:02}-{day:02}T{time}Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784111777)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn userinfo_becomes_basic_auth() {
        assert_eq!(
            split_userinfo("https://u%40x:p%3Aw@h:1/f?q"),
            Some((
                "https://h:1/f?q".into(),
                "u%40x".into(),
                Some("p%3Aw".into())
            ))
        );
        assert_eq!(percent_decode("u%40x%3a%2"), "u@x:%2");
        assert_eq!(split_userinfo("https://h/a@b"), None);
    }
}
