//! Splitting an instruction's argument text, the way each BuildKit `parse*` function does.

use crate::error::ParseErrorKind;

/// Split on runs of `[\t\v\f\r ]` (BuildKit's `reWhitespace`); empty input → no words.
pub(crate) fn split_ws(s: &str) -> Vec<String> {
    if s.is_empty() {
        return Vec::new();
    }
    s.split(super::is_ws)
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

/// Take leading `--flag` words off `line`; returns the rest and the flags.
/// A lone `--` ends the flags (and is dropped). Quotes and `\` work inside flags.
pub(crate) fn extract_builder_flags(line: &str) -> (&str, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let bytes: Vec<(usize, char)> = line.char_indices().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut phase = Phase::Spaces;
    let mut k = 0;
    while k <= bytes.len() {
        let at_end = k == bytes.len();
        let (pos, ch) = if at_end { (line.len(), '\0') } else { bytes[k] };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                k += 1;
                continue;
            }
            let next_dash = bytes.get(k + 1).map(|(_, c)| *c) == Some('-');
            if ch != '-' || !next_dash {
                return (&line[pos..], words);
            }
            phase = Phase::Word;
        }
        if at_end {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        match phase {
            Phase::Word => {
                if ch.is_whitespace() {
                    phase = Phase::Spaces;
                    if word == "--" {
                        return (&line[pos..], words);
                    }
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    blank_ok = false;
                } else if ch == '\'' || ch == '"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                } else if ch == '\\' {
                    if let Some((_, c)) = bytes.get(k + 1) {
                        word.push(*c);
                        k += 1;
                    }
                } else {
                    word.push(ch);
                }
            }
            Phase::Quote(q) => {
                if ch == q {
                    phase = Phase::Word;
                } else if ch == '\\' {
                    match bytes.get(k + 1) {
                        Some((_, c)) => {
                            word.push(*c);
                            k += 1;
                        }
                        None => phase = Phase::Word,
                    }
                } else {
                    word.push(ch);
                }
            }
            Phase::Spaces => unreachable!("handled above"),
        }
        k += 1;
    }
    ("", words)
}

/// Split into words keeping quotes and escapes (BuildKit's `parseWords`, used by ENV, LABEL, ARG).
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut k = 0;
    while k <= chars.len() {
        let at_end = k == chars.len();
        if !in_word && quote.is_none() {
            if at_end {
                break;
            }
            if chars[k].is_whitespace() {
                k += 1;
                continue;
            }
            in_word = true;
        }
        if at_end {
            if blank_ok || !word.is_empty() {
                words.push(word);
            }
            break;
        }
        let ch = chars[k];
        if let Some(q) = quote {
            if ch == q {
                quote = None;
            }
            if ch == escape && q != '\'' {
                if k + 1 == chars.len() {
                    quote = None;
                    k += 1;
                    continue;
                }
                word.push(ch);
                k += 1;
            }
            word.push(chars[k]);
        } else {
            if ch.is_whitespace() {
                in_word = false;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                k += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = Some(ch);
                blank_ok = true;
            }
            if ch == escape {
                if k + 1 == chars.len() {
                    k += 1;
                    continue;
                }
                word.push(ch);
                k += 1;
            }
            word.push(chars[k]);
        }
        k += 1;
    }
    words
}

/// ENV and LABEL: `KEY value` (old form, separator "") or `k=v k2=v2` (separator "=").
pub(crate) fn parse_name_val(
    rest: &str,
    cmd: &str,
    escape: char,
) -> Result<Vec<String>, ParseErrorKind> {
    let words = parse_words(rest, escape);
    if words.is_empty() {
        return Ok(Vec::new());
    }
    let key = cmd.to_ascii_uppercase();
    if !words[0].contains('=') {
        let mut parts = rest.splitn(2, super::is_ws);
        let (k, v) = (parts.next().unwrap_or(""), parts.next());
        let Some(v) = v else {
            return Err(ParseErrorKind::Syntax(format!(
                "{key} must have two arguments"
            )));
        };
        return Ok(vec![
            k.to_string(),
            v.trim_start_matches(super::is_ws).to_string(),
            String::new(),
        ]);
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(ParseErrorKind::Syntax(format!(
                "Syntax error - can't find = in {}. Must be of the form: name=value",
                super::go_quote(&w)
            )));
        };
        out.extend([k.to_string(), v.to_string(), "=".to_string()]);
    }
    Ok(out)
}

pub(crate) enum JsonError {
    NotJson,
    NotStrings,
}

/// A JSON array of strings, or why not.
pub(crate) fn parse_json(rest: &str) -> Result<Vec<String>, JsonError> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Err(JsonError::NotJson);
    }
    let values: Vec<serde_json::Value> =
        serde_json::from_str(rest).map_err(|_| JsonError::NotJson)?;
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(JsonError::NotStrings),
        })
        .collect()
}

/// RUN, CMD, ENTRYPOINT, SHELL: a JSON array, or the whole text as one argument.
pub(crate) fn parse_maybe_json(rest: &str) -> Result<(Vec<String>, bool), ParseErrorKind> {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    match parse_json(rest) {
        Ok(v) => Ok((v, true)),
        Err(JsonError::NotStrings) => Err(ParseErrorKind::NotStringArray),
        Err(JsonError::NotJson) => Ok((vec![rest.to_string()], false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_stop_at_first_plain_word() {
        let (rest, flags) = extract_builder_flags("--from=a --chown=\"x y\" src dst");
        assert_eq!(flags, vec!["--from=a", "--chown=x y"]);
        assert_eq!(rest, "src dst");
        let (rest, flags) = extract_builder_flags("--a -- --b c");
        assert_eq!(flags, vec!["--a"]);
        assert_eq!(rest, " --b c");
    }

    #[test]
    fn words_keep_quotes() {
        assert_eq!(parse_words(r#"a="b c" d"#, '\\'), vec![r#"a="b c""#, "d"]);
        assert_eq!(parse_words(r"a\ b", '\\'), vec![r"a\ b"]);
    }
}
