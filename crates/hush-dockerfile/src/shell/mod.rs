//! The Dockerfile shell-word lexer: quoting, escapes and `$VAR` expansion, as BuildKit's
//! `frontend/dockerfile/shell` does it (a small, deliberate subset of POSIX sh).

mod pattern;

pub use pattern::shell_match;

/// Why a word could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {word:?}: {reason}")]
pub struct ExpandError {
    /// The word as written.
    pub word: String,
    /// What went wrong.
    pub reason: String,
}

/// The longest a word may expand to (16 MiB: far above any real ENV, ARG or path).
pub const MAX_EXPANDED: usize = 16 << 20;

/// How deep `${a:-${b:-…}}` may nest. Each level is a recursion of the lexer: 3,000 levels (a
/// 9 KB line, found by fuzzing) overflowed a build thread's stack; real files nest a few deep.
pub const MAX_NESTING: usize = 64;

/// How much of a word an error message quotes.
const QUOTED: usize = 200;

/// Variable lookup for expansion.
pub trait Env {
    /// The value of `name`, `None` when unset.
    fn lookup(&self, name: &str) -> Option<&str>;
}

impl Env for [(String, String)] {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Env for Vec<(String, String)> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.as_slice().lookup(name)
    }
}

/// How to lex: the escape character and BuildKit's switches.
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    /// `\` or `` ` ``.
    pub escape: char,
    /// Keep quote characters in the output.
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Leave references to unset variables as written.
    pub skip_unset: bool,
}

impl Lexer {
    /// A lexer with the given escape character and default switches.
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
        }
    }

    /// Expand one word (quotes removed, no splitting).
    pub fn expand(&self, word: &str, env: &dyn Env) -> Result<String, ExpandError> {
        self.run(word, env).map(|(w, _)| w)
    }

    /// Expand and split into words as the shell would (unquoted expansions split on blanks).
    pub fn words(&self, text: &str, env: &dyn Env) -> Result<Vec<String>, ExpandError> {
        self.run(text, env).map(|(_, ws)| ws)
    }

    /// Expand `text`; a word longer than [`MAX_EXPANDED`] is refused (`ENV A=$A$A$A$A` twenty
    /// times would otherwise need terabytes; found by fuzzing).
    fn run(&self, text: &str, env: &dyn Env) -> Result<(String, Vec<String>), ExpandError> {
        let mut sw = ShellWord {
            chars: text.chars().collect(),
            pos: 0,
            env,
            lx: *self,
            depth: 0,
        };
        let fail = |reason| {
            let mut word: String = text.chars().take(QUOTED).collect();
            if word.len() < text.len() {
                word.push('…');
            }
            ExpandError { word, reason }
        };
        let (w, ws) = sw.process_stop_on(None, self.raw_escapes).map_err(fail)?;
        if w.len() > MAX_EXPANDED {
            return Err(fail(format!(
                "it expands to more than {} MiB",
                MAX_EXPANDED >> 20
            )));
        }
        Ok((w, ws))
    }
}

struct ShellWord<'a> {
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn Env,
    lx: Lexer,
    /// `${` levels open around the current position.
    depth: usize,
}

#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }
    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }
    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

type Res<T> = Result<T, String>;

impl ShellWord<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Res<(String, Vec<String>)> {
        let saved = self.lx.raw_escapes;
        self.lx.raw_escapes = raw_escapes;
        let r = self.stop_on_inner(stop);
        self.lx.raw_escapes = saved;
        r
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> Res<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let v = self.process_dollar()?;
                    result.push_str(&v);
                    words.add_string(&v);
                }
                '\'' => {
                    let v = self.process_single_quote()?;
                    result.push_str(&v);
                    words.add_raw_string(&v);
                }
                '"' => {
                    let v = self.process_double_quote()?;
                    result.push_str(&v);
                    words.add_raw_string(&v);
                }
                _ => {
                    self.next();
                    if ch == self.lx.escape {
                        if self.lx.raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        let Some(escaped) = self.next() else { break };
                        words.add_raw_char(escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
        }
        if let Some(stop) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        Ok((result, words.finish()))
    }

    fn process_single_quote(&mut self) -> Res<String> {
        let mut out = String::new();
        let open = self.next().unwrap_or('\'');
        if self.lx.raw_quotes {
            out.push(open);
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    )
                }
                Some('\'') => {
                    if self.lx.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> Res<String> {
        let mut out = String::new();
        let open = self.next().unwrap_or('"');
        if self.lx.raw_quotes {
            out.push(open);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    )
                }
                Some('"') => {
                    self.next();
                    if self.lx.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.process_dollar()?),
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.lx.escape {
                        if self.lx.raw_escapes {
                            out.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lx.escape => {
                                ch = self.next().unwrap_or_default();
                            }
                            _ => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(|c| c.is_ascii_digit()) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !(ch.is_alphanumeric() || ch == '_') {
                break;
            }
            name.push(ch);
            self.next();
        }
        name
    }

    fn get(&self, name: &str) -> Option<String> {
        self.env.lookup(name).map(String::from)
    }

    fn process_dollar(&mut self) -> Res<String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.get(&name) {
                Some(v) => v,
                None if self.lx.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            _ => {}
        }
        if self.depth == MAX_NESTING {
            return Err(format!("${{…}} nested more than {MAX_NESTING} deep"));
        }
        self.depth += 1;
        let r = self.process_braced();
        self.depth -= 1;
        r
    }

    /// `${name…}` after the `${`.
    fn process_braced(&mut self) -> Res<String> {
        let name = self.process_name();
        let mut ch = self.next();
        let mut chs: String = ch.map(String::from).unwrap_or_default();
        match ch {
            Some('}') => Ok(match self.get(&name) {
                Some(v) => v,
                None if self.lx.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':' | '+' | '-' | '?' | '#' | '%') => {
                let null_is_unset = ch == Some(':');
                if null_is_unset {
                    ch = self.next();
                    if let Some(c) = ch {
                        chs.push(c);
                    }
                }
                let raw = matches!(ch, Some('#' | '%'));
                if null_is_unset && raw {
                    return Err(format!("unsupported modifier ({chs}) in substitution"));
                }
                let (word, _) = self.process_stop_on(Some('}'), raw).map_err(|e| {
                    if self.peek().is_none() {
                        "syntax error: missing '}'".to_string()
                    } else {
                        e
                    }
                })?;
                let value = self.get(&name);
                if self.lx.skip_unset && value.is_none() {
                    return Ok(format!("${{{name}{chs}{word}}}"));
                }
                let empty = value
                    .as_deref()
                    .is_none_or(|v| null_is_unset && v.is_empty());
                match ch {
                    Some('-') => Ok(if empty {
                        word
                    } else {
                        value.unwrap_or_default()
                    }),
                    Some('+') => Ok(if empty { String::new() } else { word }),
                    Some('?') => {
                        if empty {
                            let what = if value.is_none() { "unset" } else { "empty" };
                            let msg = if word.is_empty() {
                                format!("is not allowed to be {what}")
                            } else {
                                word
                            };
                            Err(format!("{name}: {msg}"))
                        } else {
                            Ok(value.unwrap_or_default())
                        }
                    }
                    Some(op @ ('#' | '%')) => {
                        let value = value.unwrap_or_default();
                        let (pat, greedy) = match word.strip_prefix(op) {
                            Some(p) => (p.to_string(), true),
                            None => (word, false),
                        };
                        Ok(if op == '%' {
                            pattern::trim_suffix(&pat, &value, greedy)
                        } else {
                            pattern::trim_prefix(&pat, &value, greedy)
                        })
                    }
                    _ => Err(format!("unsupported modifier ({chs}) in substitution")),
                }
            }
            Some('/') => {
                let all = self.peek() == Some('/');
                if all {
                    self.next();
                }
                let (pat, _) = self.process_stop_on(Some('/'), true).map_err(|e| {
                    if self.peek().is_none() {
                        "syntax error: missing '/' in ${}".to_string()
                    } else {
                        e
                    }
                })?;
                let (rep, _) = self.process_stop_on(Some('}'), true).map_err(|e| {
                    if self.peek().is_none() {
                        "syntax error: missing '}'".to_string()
                    } else {
                        e
                    }
                })?;
                match self.get(&name) {
                    None if self.lx.skip_unset => Ok(format!("${{{name}/{pat}/{rep}}}")),
                    value => Ok(pattern::replace(
                        &pat,
                        &rep,
                        &value.unwrap_or_default(),
                        all,
                    )),
                }
            }
            None => Err("syntax error: missing '}'".into()),
            Some(_) => Err(format!("unsupported modifier ({chs}) in substitution")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_word_that_expands_past_the_limit_is_refused_not_built() {
        let big = "a".repeat(5 << 20);
        let e = env(&[("A", &big)]);
        let lx = Lexer::new('\\');
        assert_eq!(lx.expand("$A$A$A", &e).unwrap().len(), 15 << 20);
        let err = lx.expand("$A$A$A$A", &e).unwrap_err();
        assert!(err.reason.contains("more than 16 MiB"), "{}", err.reason);
        assert!(lx.words("x $A$A$A$A", &e).is_err());
    }

    #[test]
    fn nesting_is_bounded_not_a_stack_overflow() {
        let nest = |n: usize| format!("{}x{}", "${a:-".repeat(n), "}".repeat(n));
        let lx = Lexer::new('\\');
        // At the limit, on a test thread's 2 MiB stack, it still expands.
        assert_eq!(lx.expand(&nest(MAX_NESTING), &env(&[])).unwrap(), "x");
        for n in [MAX_NESTING + 1, 3_000, 100_000] {
            let err = lx.expand(&nest(n), &env(&[])).unwrap_err();
            assert_eq!(err.reason, "${…} nested more than 64 deep", "{n}");
            assert!(err.word.chars().count() <= QUOTED + 1, "{n}");
        }
        // Quotes do not hide a level.
        let quoted = format!("{}x{}", "${a:-\"".repeat(3_000), "\"}".repeat(3_000));
        assert!(lx.expand(&quoted, &env(&[])).is_err());
    }

    #[test]
    fn pattern_modifiers() {
        let e = env(&[("v", "a/b/c.tar.gz")]);
        let lx = Lexer::new('\\');
        let cases = [
            ("${v#*/}", "b/c.tar.gz"),
            ("${v##*/}", "c.tar.gz"),
            ("${v%.*}", "a/b/c.tar"),
            ("${v%%.*}", "a/b/c"),
            ("${v/\\//-}", "a-b/c.tar.gz"),
            ("${v//\\//-}", "a-b-c.tar.gz"),
            ("${v/b*/x}", "a/x"),
            ("${u-dflt}", "dflt"),
            ("${v+set}", "set"),
        ];
        for (input, want) in cases {
            assert_eq!(lx.expand(input, &e).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn error_modifier_message() {
        let e = env(&[]);
        let err = Lexer::new('\\').expand("${X:?give X}", &e).unwrap_err();
        assert_eq!(err.reason, "X: give X");
    }

    #[test]
    fn skip_unset_keeps_reference() {
        let mut lx = Lexer::new('\\');
        lx.skip_unset = true;
        assert_eq!(lx.expand("a$B${C}", &env(&[])).unwrap(), "a$B${C}");
    }
}
