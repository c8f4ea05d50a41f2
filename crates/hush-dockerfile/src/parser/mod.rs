//! Dockerfile text → a lossless tree of instruction nodes, as BuildKit's `parser` package does.
//!
//! Nothing is expanded here: values keep their quotes and escapes, so the result can be dumped in
//! BuildKit's s-expression format and compared with its test data.

mod decode;
mod directives;
mod heredoc;
mod hush_directive;
mod words;

use crate::error::{Location, ParseError, ParseErrorKind};
pub use decode::decode;
pub use directives::Directives;
pub use heredoc::{chomp_heredoc_content, parse_heredoc, Heredoc};
pub use hush_directive::{MountDirectiveError, MountDirectiveLine};
pub(crate) use words::{parse_words, split_ws};

/// One instruction as written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    /// The instruction keyword as written (`COPY`, `copy`, …).
    pub name: String,
    /// Leading `--flag[=value]` words, without separating `--`.
    pub flags: Vec<String>,
    /// The arguments, split as the instruction's syntax says (see [`Node::dump`]).
    pub args: Vec<String>,
    /// The arguments were a JSON array (exec form).
    pub json: bool,
    /// ONBUILD's trigger instruction.
    pub sub: Option<Box<Node>>,
    /// The logical line: continuations joined, comments dropped.
    pub original: String,
    /// Heredocs that follow the line, in order.
    pub heredocs: Vec<Heredoc>,
    /// Lines the instruction spans.
    pub location: Location,
    /// Comment lines right above the instruction.
    pub comments: Vec<String>,
}

impl Node {
    /// The keyword in lower case.
    pub fn keyword(&self) -> String {
        self.name.to_ascii_lowercase()
    }

    /// BuildKit's `Node.Dump()` format: `(copy ["--from=x"] "src" "dst")` without the parentheses.
    pub fn dump(&self) -> String {
        let mut s = self.keyword();
        if !self.flags.is_empty() {
            let flags: Vec<String> = self.flags.iter().map(|f| go_quote(f)).collect();
            s.push_str(&format!(" [{}]", flags.join(" ")));
        }
        if let Some(sub) = &self.sub {
            s.push_str(&format!(" ({})", sub.dump()));
        }
        for a in &self.args {
            s.push(' ');
            s.push_str(&go_quote(a));
        }
        s.trim().to_string()
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, Default)]
pub struct Dockerfile {
    /// The instructions in order.
    pub children: Vec<Node>,
    /// Parser directives found at the top.
    pub directives: Directives,
    /// Things worth telling the user that are not errors.
    pub warnings: Vec<Warning>,
    /// The escape character in force (`\` or `` ` ``).
    pub escape: char,
    /// hush's `# hush:mount=` lines, in order (comments to BuildKit).
    pub mount_directives: Vec<MountDirectiveLine>,
}

/// A non-fatal finding of the parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Short rule name, as BuildKit names it.
    pub rule: &'static str,
    /// What is wrong.
    pub message: String,
    /// Where.
    pub location: Location,
}

/// Parse a Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = split_lines(text);
    let mut d = Directives::default();
    let mut out = Dockerfile {
        escape: '\\',
        ..Default::default()
    };
    let mut comments: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let raw = lines[i];
        let lineno = i + 1;
        i += 1;
        if is_comment(raw) {
            if let Some(found) = hush_directive::hush_directive(raw, lineno)? {
                out.mount_directives.push(MountDirectiveLine {
                    spec: found.spec.to_string(),
                    location: Location {
                        column: Some(found.column),
                        ..Location::lines(lineno, lineno)
                    },
                    before: out.children.len(),
                });
            }
            let c = raw.trim_start()[1..].trim();
            if c.is_empty() {
                comments.clear();
            } else {
                comments.push(c.to_string());
            }
        }
        d.possible_directive(raw.trim_start(), lineno)?;
        let first = if is_comment(raw) {
            ""
        } else {
            raw.trim_start()
        };
        let start = lineno;
        let (mut line, mut eol) = trim_continuation(first, d.escape);
        if eol && line.is_empty() {
            continue;
        }
        let mut empty_continuation = false;
        while !eol && i < lines.len() {
            let raw = lines[i];
            i += 1;
            d.possible_directive(raw.trim_start(), i)?;
            if is_comment(raw) {
                if hush_directive::hush_directive(raw, i)?.is_some() {
                    let column = raw.len() - raw.trim_start().len() + 1;
                    return Err(MountDirectiveError::InContinuation.at(Location {
                        column: Some(column),
                        ..Location::lines(i, i)
                    }));
                }
                continue;
            }
            if raw.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (cont, end) = trim_continuation(raw, d.escape);
            line.push_str(&cont);
            eol = end;
        }
        let end = i;
        if empty_continuation {
            out.warnings.push(Warning {
                rule: "NoEmptyContinuation",
                message: "Empty continuation lines will become errors in a future release".into(),
                location: Location::lines(start, end),
            });
        }
        let location = Location::lines(start, end);
        let mut node = node_from_line(&line, d.escape, false)
            .map_err(|kind| ParseError::new(kind, location))?;
        node.comments = std::mem::take(&mut comments);
        let mut end = end;
        if node.can_contain_heredoc() && line.contains("<<") {
            for mut doc in heredoc::heredocs_from_line(&line) {
                let mut terminated = false;
                while i < lines.len() {
                    let raw = lines[i];
                    i += 1;
                    let candidate = if doc.chomp {
                        raw.trim_start_matches('\t')
                    } else {
                        raw
                    };
                    if candidate == doc.name {
                        terminated = true;
                        break;
                    }
                    doc.content.push_str(raw);
                    doc.content.push('\n');
                }
                end = i;
                if !terminated {
                    return Err(ParseError::new(
                        ParseErrorKind::UnterminatedHeredoc,
                        Location::lines(start, end),
                    )
                    .with_hint(format!(
                        "end the heredoc with a line that holds only `{}`",
                        doc.name
                    )));
                }
                node.heredocs.push(doc);
            }
        }
        node.location = Location::lines(start, end);
        out.children.push(node);
    }
    if out.children.is_empty() {
        return Err(ParseError::new(
            ParseErrorKind::Empty,
            Location::lines(lines.len().max(1), lines.len().max(1)),
        )
        .with_hint("a Dockerfile needs at least a FROM instruction"));
    }
    out.escape = d.escape;
    out.directives = d;
    Ok(out)
}

impl Node {
    fn can_contain_heredoc(&self) -> bool {
        matches!(self.keyword().as_str(), "run" | "copy" | "add") && !self.json
    }
}

/// Split into lines as Go's `bufio.ScanLines` does: `\n` ends a line, a trailing `\r` is dropped.
fn split_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    if text.ends_with('\n') || text.is_empty() {
        lines.pop();
    }
    lines
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// A line continues when it ends (before trailing blanks) in an odd number of escape characters.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let body = line.trim_end_matches([' ', '\t']);
    let n = body.chars().rev().take_while(|c| *c == escape).count();
    if n % 2 == 1 {
        (body[..body.len() - escape.len_utf8()].to_string(), false)
    } else {
        (line.to_string(), true)
    }
}

/// One instruction's node; `trigger` when it is an ONBUILD's.
fn node_from_line(line: &str, escape: char, trigger: bool) -> Result<Node, ParseErrorKind> {
    let trimmed = line.trim_matches(is_go_space);
    let (cmd, rest) = match trimmed.find(is_ws) {
        Some(p) => (&trimmed[..p], trimmed[p..].trim_start_matches(is_ws)),
        None => (trimmed, ""),
    };
    let (args_text, flags) = words::extract_builder_flags(rest);
    let args_text = args_text.trim_matches(is_go_space);
    let mut node = Node {
        name: cmd.to_string(),
        flags,
        original: line.to_string(),
        ..Default::default()
    };
    match node.keyword().as_str() {
        "from" | "expose" => node.args = split_ws(args_text),
        "label" | "env" => node.args = words::parse_name_val(args_text, cmd, escape)?,
        "maintainer" | "user" | "workdir" | "stopsignal" if !args_text.is_empty() => {
            node.args = vec![args_text.to_string()];
        }
        "add" | "copy" | "volume" => match words::parse_json(args_text) {
            Ok(v) => {
                node.args = v;
                node.json = true;
            }
            Err(words::JsonError::NotStrings) => return Err(ParseErrorKind::NotStringArray),
            Err(words::JsonError::NotJson) => node.args = split_ws(args_text),
        },
        "run" | "cmd" | "entrypoint" | "shell" => {
            (node.args, node.json) = words::parse_maybe_json(args_text)?;
        }
        "arg" => node.args = parse_words(args_text, escape),
        // The trigger of a trigger is not parsed: `ONBUILD ONBUILD` is refused when the node
        // is typed, and a recursion per word let `ONBUILD ` × 200,000 overflow the stack.
        "onbuild" if !trigger => {
            let sub = node_from_line(args_text, escape, true)?;
            node.sub = Some(Box::new(sub));
        }
        "healthcheck" => {
            let sep = args_text.find(is_go_space).unwrap_or(args_text.len());
            if sep > 0 {
                let typ = &args_text[..sep];
                let rest = args_text[sep..].trim_start_matches(is_go_space);
                let (cmd, json) = words::parse_maybe_json(rest)?;
                node.args = std::iter::once(typ.to_string()).chain(cmd).collect();
                node.json = json;
            }
        }
        _ => {}
    }
    Ok(node)
}

fn is_ws(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

pub(crate) fn is_go_space(c: char) -> bool {
    c.is_whitespace()
}

/// Go's `strconv.Quote`: how BuildKit's dumps quote strings.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_counts_escapes() {
        assert_eq!(trim_continuation("a \\", '\\'), ("a ".into(), false));
        assert!(trim_continuation("a \\\\", '\\').1);
        assert_eq!(trim_continuation("a `  ", '`'), ("a ".into(), false));
    }

    #[test]
    fn locations_cover_continuations_and_heredocs() {
        let df = parse("FROM a\nRUN x \\\n  y\nRUN <<EOF\nhi\nEOF\nCMD z\n").unwrap();
        let locs: Vec<(usize, usize)> = df
            .children
            .iter()
            .map(|n| (n.location.start_line, n.location.end_line))
            .collect();
        assert_eq!(locs, vec![(1, 1), (2, 3), (4, 6), (7, 7)]);
        assert_eq!(df.children[2].heredocs[0].content, "hi\n");
    }

    #[test]
    fn chained_onbuild_is_parsed_one_level_deep() {
        let text = format!("FROM a\n{}RUN true\n", "ONBUILD ".repeat(200_000));
        let df = parse(&text).unwrap();
        let sub = df.children[1].sub.as_deref().unwrap();
        assert_eq!(
            (sub.keyword().as_str(), sub.sub.is_none()),
            ("onbuild", true)
        );
        let e = crate::instructions::parse_stages(&df).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
        );
    }

    #[test]
    fn unterminated_heredoc_names_its_lines() {
        let e = parse("FROM a\nRUN <<EOF\nhi\n").unwrap_err();
        assert!(matches!(e.kind, ParseErrorKind::UnterminatedHeredoc));
        assert_eq!(e.location.start_line, 2);
    }
}
