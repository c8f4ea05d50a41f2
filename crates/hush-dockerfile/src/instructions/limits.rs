//! What dispatch refuses so that a hostile Dockerfile fails at its line instead of exhausting
//! memory or crashing a RUN's container (cases found by fuzzing): an ARG/ENV scope larger than
//! any process can be given, and NUL bytes, which no argument or environment string can hold.

use crate::error::{Location, ParseError, ParseErrorKind};

/// The most that the ARG and ENV values in scope may add up to (`NAME=value` each): 2 MiB, what
/// Linux lets a process's arguments and environment take together under the default 8 MiB stack
/// limit (a quarter of it). Every RUN gets them all, so a larger scope could not run one anyway;
/// 20,000 chained `ARG aN=${aN-1}x` would otherwise make a 200 MB environment per step.
pub const MAX_SCOPE: usize = 2 << 20;

/// `NAME=value` bytes of the environment and ARGs in scope.
pub(crate) fn scope_size(env: &[(String, String)], args: &[(String, String)]) -> usize {
    env.iter()
        .chain(args)
        .map(|(k, v)| k.len() + v.len() + 2)
        .sum()
}

/// Refuse a scope past [`MAX_SCOPE`], at the ARG or ENV that made it so.
pub(crate) fn check_scope(
    env: &[(String, String)],
    args: &[(String, String)],
    loc: Location,
) -> Result<(), ParseError> {
    let size = scope_size(env, args);
    if size <= MAX_SCOPE {
        return Ok(());
    }
    Err(ParseError::new(
        ParseErrorKind::Syntax(format!(
            "the ARG and ENV values in scope add up to {size} bytes, more than the {} MiB a RUN can be given",
            MAX_SCOPE >> 20
        )),
        loc,
    )
    .with_hint("pass large data as a file (COPY, or a RUN --mount), not as an ARG or ENV value"))
}

/// Refuse a NUL byte in `value`, which becomes an argument or environment string of a process
/// (`what` names it: "ENV name", "RUN command", …).
pub(crate) fn check_nul(what: &str, value: &str, loc: Location) -> Result<(), ParseError> {
    if !value.contains('\0') {
        return Ok(());
    }
    Err(ParseError::new(
        ParseErrorKind::Syntax(format!("{what} contains a NUL byte")),
        loc,
    )
    .with_hint("no process argument or environment variable can hold a NUL byte: remove it"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_is_counted_as_name_equals_value() {
        let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(scope_size(&[kv("A", "1")], &[kv("BB", "")]), 4 + 4);
        let big = vec![kv("X", &"x".repeat(MAX_SCOPE - 3))];
        assert!(check_scope(&big, &[], Location::default()).is_ok());
        let e = check_scope(&big, &[kv("Y", "")], Location::lines(7, 7)).unwrap_err();
        assert!(e.to_string().contains("more than the 2 MiB"), "{e}");
        assert_eq!(e.location.start_line, 7);
    }
}
