//! Why a `RUN --mount` (or a `# hush:mount=` spec) is refused, with BuildKit's messages
//! (`instructions/commands_runmount.go`), so that an error reads as docker's would.

use super::mounts::MountKind;

/// An invalid `--mount` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountError {
    /// A quote that never closes.
    #[error("invalid mount {spec:?}: unterminated quote")]
    UnterminatedQuote {
        /// The spec as given.
        spec: String,
    },
    /// `type=` names no kind of mount.
    #[error("unsupported mount type {kind:?}")]
    UnsupportedType {
        /// As written.
        kind: String,
    },
    /// A key without `=value` that is not a flag (`readonly`, `rw`, `required`).
    #[error("invalid field '{field}' must be a key=value pair")]
    NotKeyValue {
        /// The field.
        field: String,
    },
    /// A key no mount takes.
    #[error(
        "unexpected key '{}' in '{field}'{}",
        key_of(field),
        suggest(suggestion)
    )]
    UnknownKey {
        /// The field, as written.
        field: String,
        /// The nearest known key.
        suggestion: Option<&'static str>,
    },
    /// A flag (`ro`, `required`…) set to something other than true or false.
    #[error("invalid value for {key}: {value}")]
    Flag {
        /// The flag, lower-cased.
        key: String,
        /// Its value, lower-cased.
        value: String,
    },
    /// `mode=` that is not octal.
    #[error("invalid mode {value:?}: must be octal")]
    Mode {
        /// As written.
        value: String,
    },
    /// `uid=` or `gid=` that is not a number.
    #[error("invalid {key} {value:?}: must be a number")]
    Owner {
        /// `uid` or `gid`.
        key: &'static str,
        /// As written.
        value: String,
    },
    /// `sharing=` other than shared, private, locked.
    #[error("unsupported sharing value {value:?}")]
    Sharing {
        /// As written.
        value: String,
    },
    /// `size=` that is no size.
    #[error("invalid size {value:?}")]
    Size {
        /// As written.
        value: String,
    },
    /// `from=` on a mount that reads nothing (secret, ssh, tmpfs).
    #[error("{kind} mount should not have a from")]
    From {
        /// The mount's kind.
        kind: MountKind,
    },
    /// `sharing=` on a secret or ssh mount.
    #[error("{kind} mount should not define sharing")]
    SharingOn {
        /// The mount's kind.
        kind: MountKind,
    },
    /// `sharing=` on a bind or tmpfs mount.
    #[error("sharing is only supported by cache mounts")]
    SharingNotCache,
    /// A secret with both `source=` and `id=`.
    #[error("both source and id can't be set")]
    SourceAndId,
    /// A secret with neither id, source nor target (nor env).
    #[error("invalid secret mount: one of id, source or target is required")]
    SecretWithoutId,
    /// `source=` on an ssh mount.
    #[error("ssh does not support source")]
    SshSource,
    /// `mode=`, `uid=` or `gid=` on a mount that makes no file of its own (bind, tmpfs).
    #[error("{option} not allowed for \"{kind}\" type mounts")]
    OwnerOn {
        /// `mode`, `uid` or `gid`.
        option: &'static str,
        /// The mount's kind.
        kind: MountKind,
    },
    /// `env=` on a mount other than a secret.
    #[error("env is only supported by secret mounts")]
    EnvNotSecret,
    /// `from=$VAR` before expansion: the stage must be known before any stage is built.
    #[error("'from' doesn't support variable expansion, define alias stage instead")]
    FromVariable,
    /// A bind, cache or tmpfs mount that would cover `/`.
    #[error("invalid mount target {target:?}")]
    Target {
        /// The target, made absolute.
        target: String,
    },
}

/// The key of a field, lower-cased as parsing reads it.
fn key_of(field: &str) -> String {
    field
        .split('=')
        .next()
        .unwrap_or(field)
        .to_ascii_lowercase()
}

fn suggest(s: &Option<&'static str>) -> String {
    s.map(|s| format!(" (did you mean {s}?)"))
        .unwrap_or_default()
}
