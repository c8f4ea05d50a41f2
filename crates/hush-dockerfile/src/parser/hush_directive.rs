//! hush's own comment directives: `# hush:mount=<the same spec as RUN --mount>` on a line of its
//! own inside a stage (see [`crate::instructions::stage_mount`] for what it does).
//!
//! A comment, not a flag or an instruction, so that BuildKit still parses the file: to BuildKit
//! the line is an ordinary comment and its RUNs simply lack the mount. Found here, by the parser,
//! because only the parser knows whether a comment line stands between instructions or inside a
//! continued one — where BuildKit (and hush's parser) drop comment lines, so the directive could
//! never apply to what it seems to stand next to.

use crate::error::{did_you_mean, Location, ParseError, ParseErrorKind};

/// The directives hush knows, after `# hush:`.
const NAMES: &[&str] = &["mount"];

/// A `# hush:mount=` line as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountDirectiveLine {
    /// The mount spec, unexpanded (everything after `=`, blanks trimmed).
    pub spec: String,
    /// The line, and the column where the spec starts.
    pub location: Location,
    /// How many instructions come before it in the file ([`super::Dockerfile::children`]).
    pub before: usize,
}

/// Why a `# hush:…` line is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountDirectiveError {
    /// `# hush:NAME` with a name hush does not know.
    #[error("unknown hush directive \"hush:{name}\"")]
    Unknown {
        /// The name as written.
        name: String,
    },
    /// `# hush:mount` without `=SPEC`.
    #[error("# hush:mount needs a mount spec after `=`")]
    NoSpec,
    /// A directive between the lines of a continued instruction.
    #[error("# hush:mount inside a continued instruction")]
    InContinuation,
    /// A directive before the first FROM.
    #[error("# hush:mount before the first FROM")]
    BeforeFrom,
    /// A spec without `type=`: RUN --mount's default type is `bind`.
    #[error("# hush:mount needs type=secret or type=ssh")]
    NoType,
    /// A type other than `secret` and `ssh`.
    #[error("# hush:mount takes type=secret or type=ssh, not type={kind}")]
    Type {
        /// The type as written.
        kind: String,
    },
    /// A spec RUN --mount would refuse too (BuildKit's message), as written or as expanded for
    /// the RUN on `run_line`.
    #[error("invalid # hush:mount{}: {error}", for_run(*run_line))]
    Spec {
        /// `RUN --mount`'s error (boxed: it would make every `ParseError` larger).
        error: Box<crate::instructions::mounts::MountError>,
        /// The RUN it was expanded for, when the error appeared only after expansion.
        run_line: Option<usize>,
    },
}

fn for_run(line: Option<usize>) -> String {
    line.map(|l| format!(" (expanded for the RUN on line {l})"))
        .unwrap_or_default()
}

impl MountDirectiveError {
    /// The error at `location`, with what to do about it.
    pub(crate) fn at(self, location: Location) -> ParseError {
        let hint = match &self {
            MountDirectiveError::Unknown { name } => match did_you_mean(name, NAMES) {
                Some(n) => format!("did you mean `# hush:{n}=…`?"),
                None => "hush knows `# hush:mount=<spec>`".into(),
            },
            MountDirectiveError::NoSpec => {
                "write `# hush:mount=type=secret,id=ID[,target=PATH]` (the spec RUN --mount takes)"
                    .into()
            }
            MountDirectiveError::InContinuation => {
                "BuildKit drops comment lines inside a continued \
                instruction: put the directive on a line of its own between instructions (it \
                applies to every RUN of the stage after it)"
                    .into()
            }
            MountDirectiveError::BeforeFrom => "a directive applies to the RUNs of the stage it \
                is in: put it after the FROM of that stage"
                .into(),
            MountDirectiveError::NoType | MountDirectiveError::Type { .. } => "only secrets and \
                ssh agents can be given to a whole stage; write other mounts on each RUN \
                (`RUN --mount=type=cache,…`)"
                .into(),
            MountDirectiveError::Spec { .. } => {
                "the spec is RUN --mount's: `type=secret,id=ID[,target=PATH][,required]` or \
                `type=ssh[,id=ID]`"
                    .into()
            }
        };
        ParseError::new(ParseErrorKind::MountDirective(self), location).with_hint(hint)
    }
}

/// A `# hush:mount=` line found by [`hush_directive`]: its spec and the spec's column.
#[derive(Debug)]
pub(super) struct Found<'a> {
    pub(super) spec: &'a str,
    pub(super) column: usize,
}

/// Look at a comment line: `Ok(None)` for an ordinary comment, the spec for
/// `#[ \t]*hush:mount[ \t]*=[ \t]*SPEC` (the name in any case, as parser directives), an error
/// for `# hush:` followed by another name or by no `=SPEC`.
pub(super) fn hush_directive(raw: &str, lineno: usize) -> Result<Option<Found<'_>>, ParseError> {
    let Some(body) = raw.trim_start().strip_prefix('#') else {
        return Ok(None);
    };
    let body = body.trim_start_matches([' ', '\t']);
    let Some(rest) = body
        .get(..5)
        .filter(|p| p.eq_ignore_ascii_case("hush:"))
        .map(|_| &body[5..])
    else {
        return Ok(None);
    };
    let name_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .unwrap_or(rest.len());
    if name_len == 0 {
        // `# hush: quiet` is prose, not a directive.
        return Ok(None);
    }
    let (name, after) = rest.split_at(name_len);
    let column = |s: &str| raw[..raw.len() - s.len()].chars().count() + 1;
    let name_at = Location {
        column: Some(column(rest)),
        ..Location::lines(lineno, lineno)
    };
    if !name.eq_ignore_ascii_case("mount") {
        return Err(MountDirectiveError::Unknown { name: name.into() }.at(name_at));
    }
    let spec = after
        .trim_start_matches([' ', '\t'])
        .strip_prefix('=')
        .map(|s| s.trim_start_matches([' ', '\t']))
        .filter(|s| !s.trim_end_matches([' ', '\t']).is_empty());
    match spec {
        Some(spec) => Ok(Some(Found {
            spec: spec.trim_end_matches([' ', '\t']),
            column: column(spec),
        })),
        None => Err(MountDirectiveError::NoSpec.at(name_at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(line: &str) -> Option<(String, usize)> {
        hush_directive(line, 1)
            .unwrap()
            .map(|f| (f.spec.to_string(), f.column))
    }

    #[test]
    fn recognised_forms() {
        assert_eq!(
            spec("# hush:mount=type=secret,id=npmrc"),
            Some(("type=secret,id=npmrc".into(), 14))
        );
        assert_eq!(
            spec("  #HUSH:Mount = type=ssh  "),
            Some(("type=ssh".into(), 17))
        );
        assert_eq!(spec("# just a comment"), None);
        assert_eq!(spec("# hush: keep it down"), None);
        assert_eq!(spec("# hushmount=type=ssh"), None);
    }

    #[test]
    fn unknown_name_and_missing_spec_are_errors() {
        let e = hush_directive("# hush:mnt=type=ssh", 4).unwrap_err();
        assert_eq!(e.to_string(), "unknown hush directive \"hush:mnt\"");
        assert_eq!(e.location.start_line, 4);
        assert_eq!(e.location.column, Some(8));
        assert_eq!(e.hint.as_deref(), Some("did you mean `# hush:mount=…`?"));
        let e = hush_directive("# hush:mount type=ssh", 2).unwrap_err();
        assert!(matches!(
            e.kind,
            ParseErrorKind::MountDirective(MountDirectiveError::NoSpec)
        ));
        assert!(hush_directive("# hush:mount=", 2).is_err());
    }
}
