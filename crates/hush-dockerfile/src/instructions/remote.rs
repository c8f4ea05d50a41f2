//! ADD's remote sources: an HTTP(S) URL or a Git repository, told apart as BuildKit's
//! `isHTTPSource` / `isGitSource` do (`dfgitutil.ParseGitRef` over `gitutil.ParseURL`), and
//! URLs written without their credentials for history, progress and errors
//! (BuildKit's `urlutil.RedactCredentials`, plus token-looking query values).

/// A source that is fetched rather than read from the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// `http://…` or `https://…` (not ending in `.git`): one file, downloaded.
    Http(String),
    /// A Git repository, cloned.
    Git(GitRef),
}

/// A Git source: `https://host/repo.git#ref:subdir`, `git@host:repo.git#ref`, `ssh://…`,
/// `git://…`, with BuildKit's query options (`?ref=`, `?tag=`, `?branch=`, `?subdir=`,
/// `?keep-git-dir`, `?checksum=`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitRef {
    /// The remote as git is given it: no fragment, no query.
    pub remote: String,
    /// A branch, tag, full ref or commit (none: the remote's HEAD).
    pub reference: Option<String>,
    /// The directory inside the repository to copy (cleaned, no leading `/`; empty: all).
    pub subdir: String,
    /// `?keep-git-dir=`.
    pub keep_git_dir: Option<bool>,
    /// `?checksum=` / `?commit=`: the commit the ref must resolve to (a prefix of it).
    pub checksum: Option<String>,
    /// Whether the remote is reached over ssh (`git@host:…`, `ssh://…`): the `default` ssh
    /// agent authenticates it.
    pub ssh: bool,
}

/// What `src` is: `Ok(None)` for a local path, an error for a Git source that is malformed
/// (a bad query, as BuildKit refuses it).
pub fn classify(src: &str) -> Result<Option<Remote>, String> {
    if src.starts_with("./") || src.starts_with("../") {
        return Ok(None);
    }
    if let Some((scheme, _)) = scheme_of(src) {
        let scheme = scheme.to_ascii_lowercase();
        let (no_frag, fragment) = split_once_opt(src, '#');
        let (base, query) = split_once_opt(no_frag, '?');
        let path = url_path(base);
        return match scheme.as_str() {
            "http" | "https" if !path.ends_with(".git") => Ok(Some(Remote::Http(src.to_string()))),
            "http" | "https" | "git" | "ssh" => {
                git_ref(base, query, fragment, scheme == "ssh").map(|g| Some(Remote::Git(g)))
            }
            _ => Ok(None),
        };
    }
    if is_scp_style(src) {
        let (no_frag, fragment) = split_once_opt(src, '#');
        let (base, query) = split_once_opt(no_frag, '?');
        return git_ref(base, query, fragment, true).map(|g| Some(Remote::Git(g)));
    }
    Ok(None)
}

/// Whether `src` is fetched (an HTTP(S) URL or a Git source, well-formed or not).
pub fn is_remote_source(src: &str) -> bool {
    !matches!(classify(src), Ok(None))
}

/// `scheme://rest` with BuildKit's `^[a-zA-Z0-9]+://`.
fn scheme_of(s: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = s.split_once("://")?;
    (!scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then_some((scheme, rest))
}

/// BuildKit's `gitSSHRegex`: `user@host:path` (user `[a-zA-Z0-9-_]+`, host `[a-zA-Z0-9-.]+`).
fn is_scp_style(s: &str) -> bool {
    let Some((user, rest)) = s.split_once('@') else {
        return false;
    };
    let Some((host, _)) = rest.split_once(':') else {
        return false;
    };
    !user.is_empty()
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn split_once_opt(s: &str, c: char) -> (&str, Option<&str>) {
    match s.split_once(c) {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    }
}

/// The path of `scheme://authority/path` (no query or fragment): `/path`.
fn url_path(base: &str) -> &str {
    let rest = base.split_once("://").map_or(base, |(_, r)| r);
    rest.find('/').map_or("", |i| &rest[i..])
}

fn git_ref(
    base: &str,
    query: Option<&str>,
    fragment: Option<&str>,
    ssh: bool,
) -> Result<GitRef, String> {
    let mut g = GitRef {
        remote: base.to_string(),
        ssh,
        ..GitRef::default()
    };
    if let Some(f) = fragment.filter(|f| !f.is_empty()) {
        let (r, sub) = split_once_opt(f, ':');
        if !r.is_empty() {
            g.reference = Some(r.to_string());
        }
        g.subdir = clean_subdir(sub.unwrap_or(""));
    }
    let (mut tag, mut branch) = (None, None);
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = split_once_opt(pair, '=');
        let v = v.filter(|v| !v.is_empty());
        let flag = |name: &str| -> Result<bool, String> {
            match v {
                None => Ok(true),
                Some(v) => parse_bool(v).ok_or_else(|| format!("invalid {name} value: {v:?}")),
            }
        };
        let need = || v.ok_or_else(|| format!("query {k:?} has no value"));
        match k {
            "ref" => set_once(&mut g.reference, need()?, "ref")?,
            "tag" => tag = Some(need()?),
            "branch" => branch = Some(need()?),
            "subdir" => {
                let s = clean_subdir(need()?);
                if !g.subdir.is_empty() && g.subdir != s {
                    return Err(format!("subdir conflicts: {:?} vs {s:?}", g.subdir));
                }
                g.subdir = s;
            }
            "checksum" | "commit" => g.checksum = Some(need()?.to_string()),
            "keep-git-dir" => g.keep_git_dir = Some(flag("keep-git-dir")?),
            _ => return Err(format!("unexpected query {k:?}")),
        }
    }
    match (tag, branch) {
        (Some(_), Some(_)) => return Err("branch conflicts with tag".into()),
        (Some(t), None) => set_once(&mut g.reference, &prefixed("refs/tags/", t), "ref")?,
        (None, Some(b)) => set_once(&mut g.reference, &prefixed("refs/heads/", b), "ref")?,
        (None, None) => {}
    }
    Ok(g)
}

fn prefixed(prefix: &str, s: &str) -> String {
    if s.starts_with(prefix) {
        s.to_string()
    } else {
        format!("{prefix}{s}")
    }
}

fn set_once(slot: &mut Option<String>, v: &str, what: &str) -> Result<(), String> {
    match slot {
        Some(old) if old != v => Err(format!("{what} conflicts: {old:?} vs {v:?}")),
        _ => {
            *slot = Some(v.to_string());
            Ok(())
        }
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `path.Join("/", subdir)` without its leading `/` (BuildKit's `parseOpts`): `..` cannot
/// climb out.
fn clean_subdir(s: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in s.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// The mask BuildKit's `RedactCredentials` writes.
const MASK: &str = "xxxxx";

/// `url` as it may be shown: a user and password as `xxxxx:xxxxx@` (BuildKit's
/// `RedactCredentials`), and the values of query parameters whose name looks like a credential
/// (`token`, `sig`, `X-Amz-Signature`, `key`, `secret`, `password`, `auth`, `credential`) as
/// `xxxxx` (presigned URLs carry them there). Not a URL: as it is.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = match rest[..end].rsplit_once('@') {
        Some((userinfo, host)) => {
            let masked = match userinfo.split_once(':') {
                Some(_) => format!("{MASK}:{MASK}"),
                None => MASK.to_string(),
            };
            format!("{masked}@{host}")
        }
        None => rest[..end].to_string(),
    };
    let tail = &rest[end..];
    let (before_frag, fragment) = split_once_opt(tail, '#');
    let (path, query) = split_once_opt(before_frag, '?');
    let mut out = format!("{scheme}://{authority}{path}");
    if let Some(q) = query {
        let pairs: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, v)) if !v.is_empty() && sensitive_key(k) => format!("{k}={MASK}"),
                _ => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

fn sensitive_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    ["token", "sig", "key", "secret", "pass", "auth", "cred"]
        .iter()
        .any(|w| k.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(s: &str) -> GitRef {
        match classify(s) {
            Ok(Some(Remote::Git(g))) => g,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn http_and_git_sources_told_apart_as_buildkit_does() {
        assert_eq!(
            classify("https://h/f.tgz"),
            Ok(Some(Remote::Http("https://h/f.tgz".into())))
        );
        assert!(matches!(
            classify("http://h/a?x=1"),
            Ok(Some(Remote::Http(_)))
        ));
        // A `.git` path is a repository, whatever the scheme.
        assert_eq!(git("https://h/o/r.git").remote, "https://h/o/r.git");
        assert!(!git("https://h/o/r.git").ssh);
        assert!(git("git@github.com:o/r.git").ssh);
        assert!(git("ssh://git@h/o/r").ssh);
        assert_eq!(git("git://127.0.0.1/r").remote, "git://127.0.0.1/r");
        for local in [
            "a",
            "./x@y:z",
            "ftp://h/f",
            "github.com/o/r",
            "dir/",
            "a:b",
            "/abs",
        ] {
            assert_eq!(classify(local), Ok(None), "{local}");
        }
    }

    #[test]
    fn git_fragment_and_query() {
        let g = git("https://h/r.git#v1.2:sub/../docs/");
        assert_eq!(g.reference.as_deref(), Some("v1.2"));
        assert_eq!(g.subdir, "docs");
        let g = git("git@h:r.git#:/../../etc");
        assert_eq!((g.reference, g.subdir.as_str()), (None, "etc"));
        let g = git("https://h/r.git?tag=v1&keep-git-dir=true&subdir=a");
        assert_eq!(g.reference.as_deref(), Some("refs/tags/v1"));
        assert_eq!((g.keep_git_dir, g.subdir.as_str()), (Some(true), "a"));
        assert_eq!(g.remote, "https://h/r.git");
        assert!(classify("https://h/r.git?bogus=1").is_err());
        assert!(classify("https://h/r.git?tag=a&branch=b").is_err());
        assert!(classify("https://h/r.git#main?ref=dev").is_ok());
        assert!(classify("https://h/r.git?ref=main#dev").is_err());
    }

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(
            redact_url("https://user:tok@h:8/p?a=1&token=abc&X-Amz-Signature=s#f"),
            "https://xxxxx:xxxxx@h:8/p?a=1&token=xxxxx&X-Amz-Signature=xxxxx#f"
        );
        assert_eq!(redact_url("ssh://git@h/r.git"), "ssh://xxxxx@h/r.git");
        assert_eq!(redact_url("https://h/a@b"), "https://h/a@b");
        assert_eq!(redact_url("git@h:r.git"), "git@h:r.git");
    }
}
