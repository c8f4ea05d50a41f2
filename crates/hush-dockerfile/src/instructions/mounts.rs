//! `RUN --mount=…` options with BuildKit's keys, defaults and errors
//! (BuildKit's `instructions/commands_runmount.go`).

pub use super::mount_error::MountError;
use crate::error::did_you_mean;

/// What a mount is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    /// A directory or file from a stage, image or the context.
    Bind,
    /// A persistent cache directory.
    Cache,
    /// An empty tmpfs.
    Tmpfs,
    /// A build secret.
    Secret,
    /// An ssh-agent socket.
    Ssh,
}

impl MountKind {
    /// The kind as `type=` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            MountKind::Bind => "bind",
            MountKind::Cache => "cache",
            MountKind::Tmpfs => "tmpfs",
            MountKind::Secret => "secret",
            MountKind::Ssh => "ssh",
        }
    }
}

impl std::fmt::Display for MountKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Cache sharing mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// Concurrent writers share the directory.
    Shared,
    /// Each concurrent writer gets its own copy.
    Private,
    /// Writers wait for each other.
    Locked,
}

/// Where a bind or cache mount's `from=` points, resolved when the RUN is dispatched: a stage
/// name or index defined above the current stage, else an image reference (BuildKit's rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountFrom {
    /// An earlier stage, by index.
    Stage(usize),
    /// An image reference.
    Image(String),
}

impl std::fmt::Display for MountFrom {
    /// How errors name it: `stage 1`, or the image reference.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MountFrom::Stage(i) => write!(f, "stage {i}"),
            MountFrom::Image(name) => f.write_str(name),
        }
    }
}

/// A `--mount` as parsed: the mount, and its `from=` as written, which only dispatch can
/// resolve (it needs the stage names above the RUN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMount {
    /// The mount, its [`Mount::from`] still unset.
    pub mount: Mount,
    /// `from=` as written.
    pub from: Option<String>,
}

/// One `--mount`, fully defaulted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The type.
    pub kind: MountKind,
    /// Where it appears in the container, as written; dispatch makes it absolute against the
    /// WORKDIR. A bind, cache or tmpfs mount without one is mounted at the WORKDIR itself
    /// (BuildKit's `dispatchRunMounts` joins an empty target to it).
    pub target: Option<String>,
    /// `source=`/`src=`: path in `from`, or the secret/ssh id alias.
    pub source: Option<String>,
    /// `from=`: an earlier stage or an image, resolved at dispatch (a bind mount without one
    /// reads the build context; a cache mount without one starts empty).
    pub from: Option<MountFrom>,
    /// `id=`.
    pub id: Option<String>,
    /// Read-only.
    pub readonly: bool,
    /// `required` (secret/ssh).
    pub required: bool,
    /// `mode=` (octal).
    pub mode: Option<u32>,
    /// `uid=`.
    pub uid: Option<u32>,
    /// `gid=`.
    pub gid: Option<u32>,
    /// `sharing=` (cache).
    pub sharing: Sharing,
    /// `size=` (tmpfs), bytes.
    pub size: Option<u64>,
    /// `env=` (secret).
    pub env: Option<String>,
}

const KEYS: &[&str] = &[
    "type",
    "target",
    "dst",
    "destination",
    "source",
    "src",
    "from",
    "id",
    "readonly",
    "ro",
    "readwrite",
    "rw",
    "required",
    "mode",
    "uid",
    "gid",
    "sharing",
    "size",
    "env",
];

/// Parse one `--mount` value (already expanded).
pub fn parse_mount(spec: &str) -> Result<ParsedMount, MountError> {
    let fields = split_csv(spec)?;
    let mut m = Mount {
        kind: MountKind::Bind,
        target: None,
        source: None,
        from: None,
        id: None,
        readonly: true,
        required: false,
        mode: None,
        uid: None,
        gid: None,
        sharing: Sharing::Shared,
        size: None,
        env: None,
    };
    let mut from = None;
    let mut rw_set = None;
    // type= first, so that the defaults of the kind apply whatever the order.
    for f in &fields {
        if let Some(t) = f.strip_prefix("type=") {
            m.kind = match t.to_ascii_lowercase().as_str() {
                "bind" => MountKind::Bind,
                "cache" => MountKind::Cache,
                "tmpfs" => MountKind::Tmpfs,
                "secret" => MountKind::Secret,
                "ssh" => MountKind::Ssh,
                _ => return Err(MountError::UnsupportedType { kind: t.into() }),
            };
        }
    }
    let mut sharing_set = false;
    for f in &fields {
        let (key, value) = match f.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v.to_string())),
            None => (f.to_ascii_lowercase(), None),
        };
        let flag = |v: &Option<String>| -> Result<bool, MountError> {
            match v.as_deref().map(str::to_ascii_lowercase).as_deref() {
                None | Some("true") | Some("1") => Ok(true),
                Some("false") | Some("0") => Ok(false),
                Some(x) => Err(MountError::Flag {
                    key: key.clone(),
                    value: x.into(),
                }),
            }
        };
        let need = |v: Option<String>| -> Result<String, MountError> {
            v.ok_or_else(|| MountError::NotKeyValue { field: f.clone() })
        };
        match key.as_str() {
            "type" => {}
            "readonly" | "ro" => rw_set = Some(!flag(&value)?),
            "readwrite" | "rw" => rw_set = Some(flag(&value)?),
            "required" => m.required = flag(&value)?,
            "target" | "dst" | "destination" => m.target = Some(need(value)?),
            "source" | "src" => m.source = Some(need(value)?),
            "from" => from = Some(need(value)?),
            "id" => m.id = Some(need(value)?),
            "env" => m.env = Some(need(value)?),
            "mode" => {
                let v = need(value)?;
                m.mode = Some(
                    u32::from_str_radix(&v, 8)
                        .map_err(|_| MountError::Mode { value: v.clone() })?,
                );
            }
            "uid" | "gid" => {
                let v = need(value)?;
                let (key, field) = if key == "uid" {
                    ("uid", &mut m.uid)
                } else {
                    ("gid", &mut m.gid)
                };
                *field = Some(
                    v.parse::<u32>()
                        .map_err(|_| MountError::Owner { key, value: v })?,
                );
            }
            "sharing" => {
                let v = need(value)?;
                sharing_set = true;
                m.sharing = match v.to_ascii_lowercase().as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    _ => return Err(MountError::Sharing { value: v }),
                };
            }
            "size" => {
                let v = need(value)?;
                m.size = Some(parse_size(&v).ok_or(MountError::Size { value: v })?);
            }
            _ => {
                return Err(MountError::UnknownKey {
                    suggestion: did_you_mean(&key, KEYS),
                    field: f.clone(),
                });
            }
        }
    }
    match m.kind {
        MountKind::Bind | MountKind::Tmpfs => {
            m.readonly = m.kind == MountKind::Bind && !rw_set.unwrap_or(false)
        }
        _ => m.readonly = !rw_set.unwrap_or(m.kind == MountKind::Cache),
    }
    if m.kind == MountKind::Cache {
        m.readonly = rw_set == Some(false);
    }
    match m.kind {
        MountKind::Secret => {
            if from.is_some() {
                return Err(MountError::From { kind: m.kind });
            }
            if sharing_set {
                return Err(MountError::SharingOn { kind: m.kind });
            }
            if m.source.as_deref().is_some_and(|s| !s.is_empty())
                && m.id.as_deref().is_some_and(|s| !s.is_empty())
            {
                return Err(MountError::SourceAndId);
            }
            if m.id.is_none() {
                m.id = m.source.clone();
            }
            if m.id.is_none() {
                m.id = m.target.as_deref().map(|t| basename(t).to_string());
            }
            if m.id.as_deref().is_none_or(str::is_empty) && m.env.is_none() {
                return Err(MountError::SecretWithoutId);
            }
            if m.target.is_none() && m.env.is_none() {
                let id = m.id.clone().unwrap_or_default();
                m.target = Some(format!("/run/secrets/{}", basename(&id)));
            }
            m.mode.get_or_insert(0o400);
            m.readonly = true;
        }
        MountKind::Ssh => {
            if from.is_some() {
                return Err(MountError::From { kind: m.kind });
            }
            if sharing_set {
                return Err(MountError::SharingOn { kind: m.kind });
            }
            if m.source.is_some() {
                return Err(MountError::SshSource);
            }
            m.id.get_or_insert_with(|| "default".into());
            m.mode.get_or_insert(0o600);
            m.readonly = true;
        }
        MountKind::Cache => {}
        MountKind::Bind | MountKind::Tmpfs => {
            if m.kind == MountKind::Tmpfs && from.is_some() {
                return Err(MountError::From { kind: m.kind });
            }
            // Only secret, ssh and cache mounts make a file or directory of their own.
            for (option, set) in [
                ("mode", m.mode.is_some()),
                ("uid", m.uid.is_some()),
                ("gid", m.gid.is_some()),
            ] {
                if set {
                    return Err(MountError::OwnerOn {
                        option,
                        kind: m.kind,
                    });
                }
            }
        }
    }
    if m.kind != MountKind::Secret && m.env.is_some() {
        return Err(MountError::EnvNotSecret);
    }
    if m.kind != MountKind::Cache && sharing_set {
        return Err(MountError::SharingNotCache);
    }
    Ok(ParsedMount { mount: m, from })
}

/// What BuildKit checks of a `--mount` before expansion: `from=` may not hold a variable (the
/// stage it names must be known before any stage is built), except a trailing `$`.
pub(crate) fn check_unexpanded(spec: &str) -> Result<(), MountError> {
    for f in split_csv(spec)? {
        let Some((key, value)) = f.split_once('=') else {
            continue;
        };
        if key.eq_ignore_ascii_case("from") && value.find('$').is_some_and(|i| i + 1 != value.len())
        {
            return Err(MountError::FromVariable);
        }
    }
    Ok(())
}

/// Split a CSV record (`a=b,"c=d,e",f`), as Go's `encoding/csv` does for one line.
pub(crate) fn split_csv(s: &str) -> Result<Vec<String>, MountError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut in_quotes = false;
    let mut field_started = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if in_quotes => {
                if chars.peek() == Some(&'"') {
                    cur.push('"');
                    chars.next();
                } else {
                    in_quotes = false;
                }
            }
            '"' if !field_started || cur.contains('=') && cur.ends_with('=') => in_quotes = true,
            ',' if !in_quotes => {
                out.push(std::mem::take(&mut cur));
                field_started = false;
                continue;
            }
            c => cur.push(c),
        }
        field_started = true;
    }
    if in_quotes {
        return Err(MountError::UnterminatedQuote { spec: s.into() });
    }
    out.push(cur);
    Ok(out.into_iter().filter(|f| !f.is_empty()).collect())
}

fn basename(p: &str) -> &str {
    p.trim_end_matches('/').rsplit('/').next().unwrap_or(p)
}

/// `64m`, `1g`, `4096` → bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mul) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .map(|n| (n * mul as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_defaults() {
        let m = parse_mount("type=secret,id=tok").unwrap().mount;
        assert_eq!(m.target.as_deref(), Some("/run/secrets/tok"));
        assert_eq!(m.mode, Some(0o400));
        let m = parse_mount("type=secret,target=/keys/signing.pem")
            .unwrap()
            .mount;
        assert_eq!(m.id.as_deref(), Some("signing.pem"));
        let m = parse_mount("type=secret,source=gh").unwrap().mount;
        assert_eq!(
            (m.id.as_deref(), m.target.as_deref()),
            (Some("gh"), Some("/run/secrets/gh"))
        );
        let m = parse_mount("type=secret,id=t,env=TOKEN").unwrap().mount;
        assert_eq!(m.target, None);
        let m = parse_mount("required,type=secret,id=t").unwrap().mount;
        assert!(m.required);
    }

    /// `(mount, BuildKit's error)`, from `instructions/commands_runmount.go`.
    const ERRORS: &[(&str, &str)] = &[
        ("type=tmp,target=/x", "unsupported mount type \"tmp\""),
        ("type=ssh,source=x", "ssh does not support source"),
        (
            "type=secret,from=x,id=a",
            "secret mount should not have a from",
        ),
        (
            "type=secret,source=a,id=b",
            "both source and id can't be set",
        ),
        ("type=secret,id=b,src=a", "both source and id can't be set"),
        (
            "type=cache,target=/c,sharing=exclusive",
            "unsupported sharing value \"exclusive\"",
        ),
        (
            "type=cache,target",
            "invalid field 'target' must be a key=value pair",
        ),
        (
            "type=bind,target=/x,mode=0644",
            "mode not allowed for \"bind\" type mounts",
        ),
        (
            "target=/x,uid=1",
            "uid not allowed for \"bind\" type mounts",
        ),
        (
            "type=tmpfs,target=/x,gid=1",
            "gid not allowed for \"tmpfs\" type mounts",
        ),
        ("type=ssh,from=x", "ssh mount should not have a from"),
        ("type=tmpfs,from=x", "tmpfs mount should not have a from"),
        (
            "type=secret,id=a,sharing=locked",
            "secret mount should not define sharing",
        ),
        (
            "type=ssh,sharing=locked",
            "ssh mount should not define sharing",
        ),
        (
            "type=bind,sharing=locked",
            "sharing is only supported by cache mounts",
        ),
        ("type=cache,env=X", "env is only supported by secret mounts"),
        (
            "type=secret",
            "invalid secret mount: one of id, source or target is required",
        ),
        ("type=cache,ro=maybe", "invalid value for ro: maybe"),
        ("type=cache,uid=me", "invalid uid \"me\": must be a number"),
        ("type=cache,mode=9", "invalid mode \"9\": must be octal"),
        ("type=tmpfs,size=big", "invalid size \"big\""),
        (
            "type=secret,id=\"a",
            "invalid mount \"type=secret,id=\\\"a\": unterminated quote",
        ),
        (
            "type=cache,taget=/x",
            "unexpected key 'taget' in 'taget=/x' (did you mean target?)",
        ),
    ];

    #[test]
    fn errors_match_buildkit() {
        for (spec, want) in ERRORS {
            assert_eq!(parse_mount(spec).unwrap_err().to_string(), *want, "{spec}");
        }
        assert!(parse_mount("type=secret,id=tok,colour=blue")
            .unwrap_err()
            .to_string()
            .starts_with("unexpected key 'colour'"));
        // Secret, ssh and cache mounts take a mode and owner.
        for ok in [
            "type=secret,id=a,mode=0440,uid=1",
            "type=ssh,mode=0600,gid=2",
            "type=cache,target=/c,mode=0700,uid=3",
        ] {
            assert!(parse_mount(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn bind_cache_and_tmpfs_need_no_target() {
        for spec in ["from=stage,src=/x", "type=cache", "type=tmpfs"] {
            assert_eq!(parse_mount(spec).unwrap().mount.target, None, "{spec}");
        }
    }

    #[test]
    fn from_may_not_hold_a_variable_before_expansion() {
        let e = "'from' doesn't support variable expansion, define alias stage instead";
        for spec in ["from=$SRC,target=/x", "type=bind,FROM=${SRC}", "from=a$b"] {
            assert_eq!(check_unexpanded(spec).unwrap_err().to_string(), e, "{spec}");
        }
        for spec in [
            "from=stage$,target=/x",
            "type=cache,id=$ID,target=$T",
            "type=bind",
        ] {
            assert!(check_unexpanded(spec).is_ok(), "{spec}");
        }
    }

    #[test]
    fn kinds_default_readonly() {
        assert!(parse_mount("type=bind,target=/x").unwrap().mount.readonly);
        assert!(
            !parse_mount("type=bind,target=/x,rw")
                .unwrap()
                .mount
                .readonly
        );
        assert!(!parse_mount("type=cache,target=/x").unwrap().mount.readonly);
        assert!(
            parse_mount("type=cache,target=/x,ro")
                .unwrap()
                .mount
                .readonly
        );
        assert_eq!(
            parse_mount("type=tmpfs,target=/t,size=64m")
                .unwrap()
                .mount
                .size,
            Some(64 << 20)
        );
    }
}
