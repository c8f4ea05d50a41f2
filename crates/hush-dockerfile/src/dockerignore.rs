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
            if matched_prefixes(&p.parts, &parts)[1..].contains(&true) {
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

/// Which prefixes of `path` the pattern matches whole: entry `n` is for `path[..n]`.
///
/// One pass over the pattern's parts keeps the set of path positions reached so far, so the
/// cost is (pattern parts) × (path parts) part matches. Trying every split for each `**` in turn
/// was exponential in their number: a pattern of a dozen `**/` hung on a path a few dozen parts
/// deep (found by the `dockerignore` fuzz target).
fn matched_prefixes(pat: &[String], path: &[&str]) -> Vec<bool> {
    let mut reached = vec![false; path.len() + 1];
    reached[0] = true;
    for p in pat {
        if p == "**" {
            // Any number of parts, none included.
            for j in 1..reached.len() {
                reached[j] |= reached[j - 1];
            }
        } else {
            for j in (1..reached.len()).rev() {
                reached[j] = reached[j - 1] && shell_match(p, path[j - 1], Some('/'));
            }
            reached[0] = false;
        }
    }
    reached
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
    fn many_double_stars_on_a_deep_path_do_not_hang() {
        // The `dockerignore` fuzz target's timeout (patterns, then a path of `**` parts), cut
        // down: it took minutes when each `**` tried every split of the rest of the path.
        let d = Dockerignore::parse("***/**/**/*/**//**/**/**/**/**/\u{d8}\u{d8}\n");
        let path = format!("{}x", "**/".repeat(60));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(d.is_excluded(&path)).unwrap());
        let excluded = rx.recv_timeout(std::time::Duration::from_secs(10));
        assert_eq!(excluded, Ok(false), "is_excluded hung (or matched)");
        let d = Dockerignore::parse("**/**/**/**/**/**/**/**/**/**/**/**/b");
        assert!(d.is_excluded(&format!("{}b", "a/".repeat(60))));
        assert!(!d.is_excluded(&format!("{}c", "a/".repeat(60))));
    }

    #[test]
    fn double_star_matches_zero_or_more_parts() {
        let d = Dockerignore::parse("a/**/b\n**/c/**\n");
        for p in [
            "a/b",
            "a/x/b",
            "a/x/y/b",
            "a/b/below",
            "c",
            "x/c",
            "x/y/c/z",
        ] {
            assert!(d.is_excluded(p), "{p}");
        }
        for p in ["b", "a", "x/a/y", "ab/b", "xc"] {
            assert!(!d.is_excluded(p), "{p}");
        }
    }

    #[test]
    fn last_match_wins() {
        let d = Dockerignore::parse("*\n!keep\nkeep/drop\n");
        assert!(d.is_excluded("other"));
        assert!(!d.is_excluded("keep/a"));
        assert!(d.is_excluded("keep/drop"));
    }
}
