//! Build secrets: the [`Secret`] type and the `--secret` providers.
//!
//! A secret's bytes live in memory only: [`Secret`] zeroizes them on drop, has no `Debug`,
//! `Display` or `Serialize` of its value, and hands the bytes out only through
//! [`Secret::expose`], whose callers are the few places that must write them to a RUN's tmpfs.
//!
//! [`ssh`] forwards ssh-agent requests into build containers.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod ssh;

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// BuildKit's default limit on a secret's size.
pub const DEFAULT_SIZE_LIMIT: usize = 500 * 1024;

/// The largest `--secret-size-limit` accepted: 64 MiB. A secret is held in memory, and the leak
/// guard compiles each one's every form into its automaton; nothing that large is a credential.
pub const MAX_SIZE_LIMIT: usize = 64 << 20;

/// A secret value.
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wrap bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(Zeroizing::new(bytes))
    }

    /// The bytes. Callers must not log, persist or hash them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes (not secret).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Zero bytes long.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<redacted {} bytes>)", self.0.len())
    }
}

/// Where a secret came from (for messages; never the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

/// Errors reading secrets. Messages name ids, files and variables, never values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `--secret` text that is not `id=…[,src=…][,env=…][,type=…]`.
    #[error("invalid --secret {spec:?}: {reason}")]
    Invalid {
        /// What was given.
        spec: String,
        /// What is wrong.
        reason: String,
    },
    /// The same id twice.
    #[error("secret id {0:?} given more than once")]
    Duplicate(String),
    /// The file could not be read.
    #[error("failed to read secret {id:?} from {path}")]
    Read {
        /// The id.
        id: String,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The environment variable is not set.
    #[error("secret {id:?}: environment variable {var} is not set")]
    EnvUnset {
        /// The id.
        id: String,
        /// The variable.
        var: String,
    },
    /// The size limit itself is out of range (`--secret-size-limit 18446744073709551615` would
    /// otherwise wrap to a limit of 0 and read every secret as empty).
    #[error("secret size limit {limit} is larger than the maximum of {max} bytes")]
    LimitTooLarge {
        /// What was given.
        limit: usize,
        /// [`MAX_SIZE_LIMIT`].
        max: usize,
    },
    /// The value is larger than the limit.
    #[error("secret {id:?} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The id.
        id: String,
        /// The limit.
        limit: usize,
    },
}

/// The secrets given to one build, by id.
#[derive(Debug, Default)]
pub struct Secrets {
    map: BTreeMap<String, (Secret, Source)>,
    by_content: std::collections::BTreeSet<String>,
}

impl Secrets {
    /// Parse and read every `--secret` value, once, at build start.
    ///
    /// `id=X` alone reads the env var `X` if it is set (even empty), else the file `./X`;
    /// `src`/`source` is a file unless `type=env`; `env=VAR` reads a variable.
    pub fn load(
        specs: &[String],
        size_limit: usize,
        lookup_env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        if size_limit > MAX_SIZE_LIMIT {
            return Err(Error::LimitTooLarge {
                limit: size_limit,
                max: MAX_SIZE_LIMIT,
            });
        }
        let mut out = Secrets::default();
        for spec in specs {
            let invalid = |reason: &str| Error::Invalid {
                spec: spec.clone(),
                reason: reason.into(),
            };
            let (mut id, mut src, mut env, mut typ) = (None, None, None, None);
            let mut by_content = false;
            for field in spec.split(',') {
                let (k, v) = field
                    .split_once('=')
                    .ok_or_else(|| invalid(&format!("field {field:?} must be key=value")))?;
                match k.trim().to_ascii_lowercase().as_str() {
                    "id" => id = Some(v.to_string()),
                    "src" | "source" => src = Some(v.to_string()),
                    "env" => env = Some(v.to_string()),
                    "type" => typ = Some(v.to_ascii_lowercase()),
                    "cache" if v == "content" => by_content = true,
                    "cache" => return Err(invalid("cache takes the value content")),
                    other => {
                        return Err(invalid(&format!(
                            "unexpected key {other:?} (expected id, src, env, type or cache)"
                        )))
                    }
                }
            }
            let id = id
                .or_else(|| src.as_deref().map(|s| base(s).to_string()))
                .ok_or_else(|| invalid("id is required"))?;
            if out.map.contains_key(&id) {
                return Err(Error::Duplicate(id));
            }
            let source = match (typ.as_deref(), src, env) {
                (Some("env"), Some(var), None) | (_, None, Some(var)) => Source::Env(var),
                (Some("file") | None, Some(path), None) => Source::File(PathBuf::from(path)),
                (None, None, None) => match lookup_env(&id) {
                    Some(_) => Source::Env(id.clone()),
                    None => Source::File(PathBuf::from(&id)),
                },
                (Some("file"), None, None) => Source::File(PathBuf::from(&id)),
                (Some("env"), None, None) => Source::Env(id.clone()),
                (Some(t), _, _) if t != "env" && t != "file" => {
                    return Err(invalid("type must be file or env"))
                }
                _ => return Err(invalid("give either src or env, not both")),
            };
            let bytes = match &source {
                Source::Env(var) => lookup_env(var)
                    .ok_or_else(|| Error::EnvUnset {
                        id: id.clone(),
                        var: var.clone(),
                    })?
                    .into_bytes(),
                Source::File(path) => read_limited(&id, path, size_limit)?,
            };
            if bytes.len() > size_limit {
                return Err(Error::TooLarge {
                    id,
                    limit: size_limit,
                });
            }
            if by_content {
                out.by_content.insert(id.clone());
            }
            out.map.insert(id, (Secret::new(bytes), source));
        }
        Ok(out)
    }

    /// The secret with this id.
    pub fn get(&self, id: &str) -> Option<&Secret> {
        self.map.get(id).map(|(s, _)| s)
    }

    /// `--secret …,cache=content`: steps that mount this secret rebuild when its value changes.
    pub fn cache_by_content(&self, id: &str) -> bool {
        self.by_content.contains(id)
    }

    /// All ids with their secrets.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Secret)> {
        self.map.iter().map(|(k, (s, _))| (k.as_str(), s))
    }

    /// The ids.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }
}

fn base(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// Read a file (a FIFO or `<(cmd)` works: it is read once, sequentially) up to `limit + 1` bytes.
fn read_limited(id: &str, path: &Path, limit: usize) -> Result<Vec<u8>, Error> {
    let err = |source| Error::Read {
        id: id.into(),
        path: path.into(),
        source,
    };
    let f = std::fs::File::open(path).map_err(err)?;
    let mut buf = Vec::new();
    f.take((limit as u64).saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(err)?;
    if buf.len() > limit {
        return Err(Error::TooLarge {
            id: id.into(),
            limit,
        });
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "TOKEN" => Some("from-env".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn sources_and_defaults() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("s.json");
        std::fs::write(&f, "file-value").unwrap();
        let specs = vec![
            format!("id=a,src={}", f.display()),
            "id=b,env=TOKEN".into(),
            "id=TOKEN".into(),
            "id=EMPTY".into(),
            "id=c,src=TOKEN,type=env".into(),
        ];
        let s = Secrets::load(&specs, DEFAULT_SIZE_LIMIT, &env).unwrap();
        assert_eq!(s.get("a").unwrap().expose(), b"file-value");
        assert_eq!(s.get("b").unwrap().expose(), b"from-env");
        assert_eq!(s.get("TOKEN").unwrap().expose(), b"from-env");
        assert!(s.get("EMPTY").unwrap().is_empty());
        assert_eq!(s.get("c").unwrap().expose(), b"from-env");
    }

    #[test]
    fn errors_name_the_id_not_the_value() {
        let e = Secrets::load(&["id=x,env=NOPE".into()], 10, &env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "secret \"x\": environment variable NOPE is not set"
        );
        let e = Secrets::load(
            &["id=b,env=TOKEN".into(), "id=b,env=TOKEN".into()],
            100,
            &env,
        )
        .unwrap_err();
        assert!(matches!(e, Error::Duplicate(_)));
        let e = Secrets::load(&["id=b,env=TOKEN".into()], 3, &env).unwrap_err();
        assert!(!e.to_string().contains("from-env"));
        let e = Secrets::load(&["id=m,src=/nonexistent/file".into()], 3, &env).unwrap_err();
        assert!(e.to_string().contains("\"m\""));
    }

    /// usize::MAX + 1 wrapped to a limit of 0: every secret read as empty, silently.
    #[test]
    fn a_limit_past_the_maximum_is_refused() {
        let e = Secrets::load(&["id=b,env=TOKEN".into()], usize::MAX, &env).unwrap_err();
        assert!(
            matches!(
                e,
                Error::LimitTooLarge {
                    limit: usize::MAX,
                    ..
                }
            ),
            "{e}"
        );
        let s = Secrets::load(&["id=b,env=TOKEN".into()], MAX_SIZE_LIMIT, &env).unwrap();
        assert_eq!(s.get("b").unwrap().expose(), b"from-env");
    }

    #[test]
    fn debug_redacts() {
        let s = Secret::new(b"hunter2".to_vec());
        assert_eq!(format!("{s:?}"), "Secret(<redacted 7 bytes>)");
    }
}
