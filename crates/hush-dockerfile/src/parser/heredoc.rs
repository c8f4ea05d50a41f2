//! Heredocs (`<<EOF`, `<<-EOF`, `<<"EOF"`) following RUN, COPY and ADD lines.

use crate::shell::Lexer;

/// One heredoc of an instruction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Heredoc {
    /// The terminator word (quotes removed); COPY/ADD use it as the file name.
    pub name: String,
    /// The body, each line with its `\n`.
    pub content: String,
    /// The word was unquoted: the body is subject to expansion.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the body and the terminator.
    pub chomp: bool,
    /// A file descriptor written before `<<` (`3<<EOF`); 0 when absent.
    pub fd: u32,
}

/// The heredocs a logical line announces, in order.
pub(crate) fn heredocs_from_line(line: &str) -> Vec<Heredoc> {
    let mut lx = Lexer::new('\\');
    lx.raw_quotes = true;
    lx.raw_escapes = true;
    let none: Vec<(String, String)> = Vec::new();
    lx.words(line, &none)
        .unwrap_or_default()
        .iter()
        .filter_map(|w| parse_heredoc(w))
        .collect()
}

/// Parse one word as a heredoc opener (`[n]<<[-]WORD`), as BuildKit's `ParseHeredoc` does.
pub fn parse_heredoc(word: &str) -> Option<Heredoc> {
    let digits = word.chars().take_while(|c| c.is_ascii_digit()).count();
    let rest = word[digits..].strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let none: Vec<(String, String)> = Vec::new();
    let mut lx = Lexer::new('\\');
    lx.skip_unset = true;
    let words = lx.words(rest, &none).ok()?;
    if words.len() != 1 {
        return None;
    }
    lx.raw_quotes = true;
    let raw = lx.words(rest, &none).ok()?;
    let quotes = |s: &str| s.matches(['\'', '"']).count();
    Some(Heredoc {
        name: words[0].clone(),
        content: String::new(),
        expand: raw.len() == 1 && quotes(&words[0]) == quotes(&raw[0]),
        chomp,
        fd: word[..digits].parse().unwrap_or(0),
    })
}

/// Strip leading tabs from every line (`<<-`).
pub fn chomp_heredoc_content(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openers() {
        let h = parse_heredoc("<<EOF").unwrap();
        assert!(h.expand && !h.chomp && h.name == "EOF");
        let h = parse_heredoc("<<-'EOT'").unwrap();
        assert!(!h.expand && h.chomp && h.name == "EOT");
        assert!(!parse_heredoc("<<\"E\"").unwrap().expand);
        assert_eq!(parse_heredoc("3<<X").unwrap().fd, 3);
        assert!(parse_heredoc("<<").is_none());
        assert!(parse_heredoc("a<<b").is_none());
    }

    #[test]
    fn several_per_line() {
        let docs = heredocs_from_line("COPY <<a <<b /dst/");
        assert_eq!(
            docs.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
    }
}
