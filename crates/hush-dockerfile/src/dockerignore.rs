//! `.dockerignore` with docker's rules: patterns are cleaned paths relative to the context,
//! `*`/`?`/`[...]` never cross `/`, `**` matches any number of directories, `!` re-includes,
//! the last matching pattern wins, and a pattern also excludes everything below what it matches.

use crate::shell::shell_match;

/// A compiled `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct Dockerignore {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    parts: Vec<String>,
    exclusion: bool,
}

impl Dockerignore {
    /// Read the file's text. Comments (`#`) and blank lines are skipped.
    pub fn parse(text: &str) -> Self {
        let patterns = text
            .lines()
            .filter_map(|line| {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    return None;
                }
                let (exclusion, p) = match line.strip_prefix('!') {
                    Some(p) => (true, p.trim()),
                    None => (false, line),
                };
                let cleaned = clean(p);
                if cleaned.is_empty() {
                    return None;
                }
                Some(Pattern {
                    parts: cleaned.split('/').map(String::from).collect(),
                    exclusion,
                })
            })
            .collect();
        Dockerignore { patterns }
    }

    /// No patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Is the context-relative `path` (`a/b/c`) excluded?
    pub fn is_excluded(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut excluded = false;
        for p in &self.patterns {
            if excluded != p.exclusion {
                continue;
            }
            // A pattern matches the path or any of its parents.
            if (1..=parts.len()).any(|n| match_parts(&p.parts, &parts[..n])) {
                excluded = !p.exclusion;
            }
        }
        excluded
    }

    /// Could something below directory `dir` be re-included by a `!` pattern?
    /// (Used to decide whether an excluded directory must still be walked.)
    pub fn may_reinclude_below(&self, dir: &str) -> bool {
        let depth = dir.split('/').filter(|s| !s.is_empty()).count();
        self.patterns
            .iter()
            .any(|p| p.exclusion && (p.parts.len() > depth || p.parts.iter().any(|x| x == "**")))
    }
}

fn match_parts(pat: &[String], path: &[&str]) -> bool {
    match pat.first() {
        None => path.is_empty(),
        Some(p) if p == "**" => (0..=path.len()).any(|k| match_parts(&pat[1..], &path[k..])),
        Some(p) => {
            !path.is_empty()
                && shell_match(p, path[0], Some('/'))
                && match_parts(&pat[1..], &path[1..])
        }
    }
}

/// Go's `filepath.Clean` for a relative, slash-separated pattern, with leading `/` dropped.
pub fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            x => out.push(x),
        }
    }
    out.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_rules() {
        let d = Dockerignore::parse("# c\n*.md\n!README.md\n**/*.tmp\nbuild\n/secret/*\n");
        assert!(d.is_excluded("a.md"));
        assert!(!d.is_excluded("README.md"));
        assert!(!d.is_excluded("docs/a.md"));
        assert!(d.is_excluded("x/y/z.tmp"));
        assert!(d.is_excluded("z.tmp"));
        assert!(d.is_excluded("build/out/bin"));
        assert!(d.is_excluded("secret/key"));
        assert!(!d.is_excluded("secret"));
    }

    #[test]
    fn last_match_wins() {
        let d = Dockerignore::parse("*\n!keep\nkeep/drop\n");
        assert!(d.is_excluded("other"));
        assert!(!d.is_excluded("keep/a"));
        assert!(d.is_excluded("keep/drop"));
    }
}
