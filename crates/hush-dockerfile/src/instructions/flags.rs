//! Instruction flags (`--from=x`, `--link`, repeated `--mount=`), parsed as BuildKit's `BFlags`
//! does: each flag is declared with its type, and the words are checked in order, the first
//! problem being the error.
//!
//! - a string flag needs `=` (`--from builder` is "missing a value on flag: --from"; `--from=`
//!   is an empty value);
//! - a bool flag is `--link`, `--link=true` or `--link=false` (any case); `--link=` is
//!   "missing a value", `--link=1` "expecting boolean value";
//! - only a repeatable (strings) flag may be given twice: "duplicate flag specified: --from".

use crate::error::{did_you_mean, ParseError, ParseErrorKind};
use crate::parser::Node;

/// What a flag takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagType {
    /// `--x`, `--x=true`, `--x=false`.
    Bool,
    /// `--x=value`, once.
    String,
    /// `--x=value`, any number of times.
    Strings,
}

pub(crate) use FlagType::{Bool, String as Str, Strings};

enum Value {
    Bool(bool),
    Strings(Vec<String>),
}

pub(crate) struct Flags {
    values: Vec<(&'static str, Value)>,
}

impl Flags {
    /// Check `node`'s flags against the declared ones.
    pub(crate) fn new(
        node: &Node,
        declared: &[(&'static str, FlagType)],
    ) -> Result<Self, ParseError> {
        let invalid = |msg: String, hint: String| {
            ParseError::new(ParseErrorKind::InvalidFlag(msg), node.location).with_hint(hint)
        };
        let mut values: Vec<(&'static str, Value)> = Vec::new();
        for f in &node.flags {
            let (flag, value) = match f.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (f.as_str(), None),
            };
            let name = flag.strip_prefix("--").unwrap_or(flag);
            let Some((name, kind)) = declared.iter().find(|(n, _)| *n == name).copied() else {
                let names: Vec<&str> = declared.iter().map(|(n, _)| *n).collect();
                let mut e = ParseError::new(
                    ParseErrorKind::UnknownFlag {
                        instruction: node.name.to_uppercase(),
                        flag: name.to_string(),
                    },
                    node.location,
                );
                if let Some(s) = did_you_mean(name, &names) {
                    e = e.with_hint(format!("did you mean --{s}?"));
                }
                return Err(e);
            };
            let seen = values.iter_mut().find(|(n, _)| *n == name);
            let bool_hint = || format!("write {flag}, {flag}=true or {flag}=false");
            if seen.is_some() && kind != Strings {
                return Err(invalid(
                    format!("duplicate flag specified: {flag}"),
                    format!("give {flag} once"),
                ));
            }
            match (kind, value) {
                (Bool, Some("")) => {
                    return Err(invalid(
                        format!("missing a value on flag: {flag}"),
                        bool_hint(),
                    ));
                }
                (Str | Strings, None) => {
                    return Err(invalid(
                        format!("missing a value on flag: {flag}"),
                        format!(
                            "write {flag}=VALUE (with `=`: a word after a space is an argument)"
                        ),
                    ));
                }
                (Bool, v) => {
                    let b = match v.map(str::to_ascii_lowercase).as_deref() {
                        None | Some("true") => true,
                        Some("false") => false,
                        Some(_) => {
                            return Err(invalid(
                                format!(
                                    "expecting boolean value for flag {flag}, not: {}",
                                    v.unwrap_or_default()
                                ),
                                bool_hint(),
                            ))
                        }
                    };
                    values.push((name, Value::Bool(b)));
                }
                (Str | Strings, Some(v)) => match seen {
                    Some((_, Value::Strings(all))) => all.push(v.to_string()),
                    _ => values.push((name, Value::Strings(vec![v.to_string()]))),
                },
            }
        }
        Ok(Flags { values })
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.values.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// A string flag's value, `None` when absent.
    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.strings(name).pop()
    }

    /// Every value of a repeatable flag, in order.
    pub(crate) fn strings(&self, name: &str) -> Vec<String> {
        match self.get(name) {
            Some(Value::Strings(v)) => v.clone(),
            _ => Vec::new(),
        }
    }

    /// A bool flag: `None` when absent.
    pub(crate) fn opt_bool(&self, name: &str) -> Option<bool> {
        match self.get(name) {
            Some(Value::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    /// A bool flag, false when absent.
    pub(crate) fn bool(&self, name: &str) -> bool {
        self.opt_bool(name).unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use crate::instructions::parse_stages;
    use crate::parser::parse;

    /// `(instruction line, BuildKit's error or "" when valid)`.
    const CASES: &[(&str, &str)] = &[
        (
            "COPY --from builder /bin/sh /sh",
            "missing a value on flag: --from",
        ),
        ("COPY --chown /a /b", "missing a value on flag: --chown"),
        ("COPY --chmod /a /b", "missing a value on flag: --chmod"),
        (
            "ADD --checksum /a /b",
            "missing a value on flag: --checksum",
        ),
        ("COPY --exclude /a /b", "missing a value on flag: --exclude"),
        ("RUN --mount true", "missing a value on flag: --mount"),
        ("RUN --network true", "missing a value on flag: --network"),
        (
            "COPY --from=a --from=b /a /b",
            "duplicate flag specified: --from",
        ),
        (
            "COPY --link --link=false /a /b",
            "duplicate flag specified: --link",
        ),
        ("COPY --link= /a /b", "missing a value on flag: --link"),
        (
            "COPY --link=1 /a /b",
            "expecting boolean value for flag --link, not: 1",
        ),
        (
            "COPY --link=yes /a /b",
            "expecting boolean value for flag --link, not: yes",
        ),
        (
            "ADD --unpack=0 /a /b",
            "expecting boolean value for flag --unpack, not: 0",
        ),
        ("FROM --platform x", "missing a value on flag: --platform"),
        (
            "HEALTHCHECK --retries CMD true",
            "missing a value on flag: --retries",
        ),
        ("COPY --link /a /b", ""),
        ("COPY --link=true /a /b", ""),
        ("COPY --link=FALSE /a /b", ""),
        ("COPY --from= /a /b", ""),
        ("COPY --exclude=a --exclude=b /a /b", ""),
        (
            "RUN --mount=type=tmpfs,target=/t --mount=type=tmpfs,target=/u true",
            "",
        ),
        ("ADD --unpack=true /a /b", ""),
    ];

    #[test]
    fn flags_follow_buildkit_bflags() {
        for (line, want) in CASES {
            let prefix = if line.starts_with("FROM") {
                ""
            } else {
                "FROM a\n"
            };
            let text = format!("{prefix}{line}\n");
            let got = parse_stages(&parse(&text).unwrap());
            match (want.is_empty(), got) {
                (true, Ok(_)) => {}
                (true, Err(e)) => panic!("{line}: unexpected error {e}"),
                (false, Ok(_)) => panic!("{line}: accepted, BuildKit says {want:?}"),
                (false, Err(e)) => {
                    assert_eq!(e.to_string(), *want, "{line}");
                    let at = if line.starts_with("FROM") { 1 } else { 2 };
                    assert_eq!(e.location.start_line, at, "{line}");
                }
            }
        }
    }

    #[test]
    fn values_are_typed() {
        let s = parse_stages(
            &parse("FROM a\nCOPY --link=False --exclude=x --exclude=y --from=b /a /c\n").unwrap(),
        )
        .unwrap();
        let crate::instructions::CommandKind::Copy(c) = &s.stages[0].commands[0].kind else {
            panic!()
        };
        assert!(!c.link);
        assert_eq!(c.exclude, ["x", "y"]);
        assert_eq!(c.from.as_deref(), Some("b"));
    }
}
