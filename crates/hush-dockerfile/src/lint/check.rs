//! The lint configuration of a build: the `# check=` directive, or the
//! `BUILDKIT_DOCKERFILE_CHECK` build arg that replaces it, parsed as BuildKit's
//! `linter.ParseLintOptions` does: up to three `;`-separated `key=value` parts, keys `skip`
//! (`all` or a comma-separated list of rule names), `error` (a Go boolean: warnings fail the
//! build) and `experimental` (`all` or a list; hush has no experimental rules, so it only has
//! to be valid). Anything else is an error, as in BuildKit (`# check=bogus` fails the build).

use std::collections::BTreeSet;

use super::{Finding, Severity};

/// The parsed options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// `skip=all`: no rule runs.
    pub skip_all: bool,
    /// `skip=A,B`: these rules do not run.
    pub skip: BTreeSet<String>,
    /// `error=true`: a warning fails the build like an error.
    pub error: bool,
}

/// Why a check string is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// A part without `=`, or a key other than `skip`, `error`, `experimental`.
    #[error("invalid check option {0:?}")]
    InvalidOption(String),
    /// `error=` with a value that is not a boolean.
    #[error("failed to parse check option {0:?}: {1:?} is not a boolean")]
    NotABool(String, String),
}

impl CheckOptions {
    /// Parse a `check` value (an empty one configures nothing).
    pub fn parse(s: &str) -> Result<Self, CheckError> {
        let mut out = CheckOptions::default();
        let s = s.trim();
        if s.is_empty() {
            return Ok(out);
        }
        // BuildKit splits into at most 3 parts: a fourth `;` stays inside the third value.
        for part in s.splitn(3, ';') {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| CheckError::InvalidOption(part.to_string()))?;
            match k.trim() {
                "skip" => match v.trim() {
                    "all" => out.skip_all = true,
                    v => out.skip = v.split(',').map(|r| r.trim().to_string()).collect(),
                },
                "error" => {
                    out.error = parse_go_bool(v.trim())
                        .ok_or_else(|| CheckError::NotABool(part.to_string(), v.to_string()))?
                }
                "experimental" => {}
                k => return Err(CheckError::InvalidOption(k.to_string())),
            }
        }
        Ok(out)
    }

    /// Apply to a lint's findings: skipped rules are dropped; with `error=true` every warning
    /// becomes an error (BuildKit fails such a build with "lint violation found for rules").
    pub fn apply(&self, findings: Vec<Finding>) -> Vec<Finding> {
        if self.skip_all {
            return Vec::new();
        }
        findings
            .into_iter()
            .filter(|f| !self.skip.contains(f.rule))
            .map(|mut f| {
                if self.error && f.severity == Severity::Warning {
                    f.severity = Severity::Error;
                    f.hint = format!("{} (`# check=error=true` makes warnings errors)", f.hint);
                }
                f
            })
            .collect()
    }
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(skip_all: bool, skip: &[&str], error: bool) -> CheckOptions {
        CheckOptions {
            skip_all,
            skip: skip.iter().map(|s| s.to_string()).collect(),
            error,
        }
    }

    /// input | parsed (BuildKit's `ParseLintOptions` cases and its edges).
    #[test]
    fn parse_table() {
        let ok: &[(&str, CheckOptions)] = &[
            ("", CheckOptions::default()),
            ("  ", CheckOptions::default()),
            ("skip=all", opts(true, &[], false)),
            ("skip=RuleA, RuleB", opts(false, &["RuleA", "RuleB"], false)),
            ("error=true", opts(false, &[], true)),
            ("error=1", opts(false, &[], true)),
            ("error=False", opts(false, &[], false)),
            ("skip=A;error=true", opts(false, &["A"], true)),
            (" error = T ; skip = all ", opts(true, &[], true)),
            ("experimental=all", CheckOptions::default()),
            (
                "skip=A;error=true;experimental=X;anything=else",
                opts(false, &["A"], true),
            ),
        ];
        for (input, want) in ok {
            assert_eq!(CheckOptions::parse(input).as_ref(), Ok(want), "{input:?}");
        }
        let bad: &[(&str, CheckError)] = &[
            ("bogus", CheckError::InvalidOption("bogus".into())),
            ("bogus=1", CheckError::InvalidOption("bogus".into())),
            ("skip=A;oops", CheckError::InvalidOption("oops".into())),
            (
                "error=yes",
                CheckError::NotABool("error=yes".into(), "yes".into()),
            ),
        ];
        for (input, want) in bad {
            assert_eq!(CheckOptions::parse(input).as_ref(), Err(want), "{input:?}");
        }
    }

    #[test]
    fn apply_skips_and_promotes() {
        let f = |rule: &'static str, severity| Finding {
            rule,
            severity,
            location: Default::default(),
            message: String::new(),
            hint: String::new(),
        };
        let all = vec![
            f("CopiedSecretFile", Severity::Error),
            f("SecretsUsedInArgOrEnv", Severity::Warning),
            f("UnusedSecret", Severity::Warning),
            f("StageMount", Severity::Note),
        ];
        let got = opts(false, &["UnusedSecret"], true).apply(all.clone());
        assert_eq!(
            got.iter().map(|f| (f.rule, f.severity)).collect::<Vec<_>>(),
            [
                ("CopiedSecretFile", Severity::Error),
                ("SecretsUsedInArgOrEnv", Severity::Error),
                // error=true makes warnings errors; a note is not a warning
                ("StageMount", Severity::Note)
            ]
        );
        assert!(opts(true, &[], false).apply(all.clone()).is_empty());
        assert_eq!(CheckOptions::default().apply(all.clone()), all);
    }
}
