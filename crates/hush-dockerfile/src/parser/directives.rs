use crate::error::{Location, ParseError, ParseErrorKind};

/// Parser directives (`# syntax=`, `# escape=`, `# check=`) from the top of a Dockerfile.
///
/// As in BuildKit, directives are only read until the first line that is not one; an unknown
/// directive name ends them too and is then an ordinary comment.
#[derive(Debug, Clone)]
pub struct Directives {
    /// The `syntax` directive (noted; hush has one built-in frontend).
    pub syntax: Option<String>,
    /// The `check` directive (lint configuration, see [`crate::lint::CheckOptions`]) and its
    /// line.
    pub check: Option<(String, usize)>,
    /// The escape character.
    pub escape: char,
    done: bool,
    seen_escape: bool,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            syntax: None,
            check: None,
            escape: '\\',
            done: false,
            seen_escape: false,
        }
    }
}

impl Directives {
    /// Look at one (left-trimmed) line at the top of the file.
    pub(super) fn possible_directive(
        &mut self,
        line: &str,
        lineno: usize,
    ) -> Result<(), ParseError> {
        if self.done {
            return Ok(());
        }
        let Some((key, value)) = parse_directive(line) else {
            self.done = true;
            return Ok(());
        };
        let at = Location::lines(lineno, lineno);
        let dup = |name: &str| ParseError::new(ParseErrorKind::DuplicateDirective(name.into()), at);
        match key.as_str() {
            "escape" => {
                if self.seen_escape {
                    return Err(dup("escape"));
                }
                self.seen_escape = true;
                let mut chars = value.chars();
                match (chars.next(), chars.next()) {
                    (Some(c @ ('\\' | '`')), None) => self.escape = c,
                    _ => {
                        return Err(ParseError::new(ParseErrorKind::InvalidEscape(value), at)
                            .with_hint("use `# escape=\\` or `# escape=``"))
                    }
                }
            }
            "syntax" => {
                if self.syntax.is_some() {
                    return Err(dup("syntax"));
                }
                self.syntax = Some(value);
            }
            "check" => {
                if self.check.is_some() {
                    return Err(dup("check"));
                }
                self.check = Some((value, lineno));
            }
            _ => self.done = true,
        }
        Ok(())
    }
}

/// `#[ \t]*name[ \t]*=[ \t]*value[ \t]*` → (lower-cased name, value).
fn parse_directive(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('#')?.trim_start_matches([' ', '\t']);
    let name_len = rest
        .char_indices()
        .take_while(|(i, c)| {
            if *i == 0 {
                c.is_ascii_alphabetic()
            } else {
                c.is_ascii_alphanumeric()
            }
        })
        .count();
    if name_len == 0 {
        return None;
    }
    let (name, rest) = rest.split_at(name_len);
    let value = rest
        .trim_start_matches([' ', '\t'])
        .strip_prefix('=')?
        .trim_matches([' ', '\t']);
    if value.is_empty() {
        return None;
    }
    Some((name.to_ascii_lowercase(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_syntax() {
        assert_eq!(
            parse_directive("# escape = `"),
            Some(("escape".into(), "`".into()))
        );
        assert_eq!(
            parse_directive("#syntax=docker/dockerfile:1"),
            Some(("syntax".into(), "docker/dockerfile:1".into()))
        );
        assert_eq!(parse_directive("# just a comment"), None);
        assert_eq!(parse_directive("# 1x=y"), None);
    }

    #[test]
    fn duplicate_escape_is_an_error() {
        let mut d = Directives::default();
        d.possible_directive("# escape=`", 1).unwrap();
        assert!(d.possible_directive("# escape=\\", 2).is_err());
    }
}
