//! Shell patterns (`*`, `?`, `[...]`, `\x`) for `${v#p}`, `${v%p}`, `${v/p/r}` and `.dockerignore`.

/// Does `pattern` match all of `text`? `*` matches any run of characters, except `sep` when given.
pub fn shell_match(pattern: &str, text: &str, sep: Option<char>) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    matches_at(&p, &t, sep)
}

fn matches_at(p: &[char], t: &[char], sep: Option<char>) -> bool {
    // Iterative matcher with single-star backtracking (the classic wildcard algorithm).
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                '?' if Some(t[ti]) != sep => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                '[' => {
                    if let Some((ok, len)) = class(&p[pi..], t[ti]) {
                        if ok && Some(t[ti]) != sep {
                            pi += len;
                            ti += 1;
                            continue;
                        }
                    } else if t[ti] == '[' {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
                '\\' if pi + 1 < p.len() && p[pi + 1] == t[ti] => {
                    pi += 2;
                    ti += 1;
                    continue;
                }
                c if c == t[ti] && c != '?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, st)) if Some(t[st]) != sep => {
                star = Some((sp, st + 1));
                pi = sp + 1;
                ti = st + 1;
            }
            _ => return false,
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Match one character against a bracket expression at the start of `p`.
/// Returns (matched, length of the expression), or None when `p` is no valid class.
fn class(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        let mut lo = p[i];
        if lo == '\\' && i + 1 < p.len() {
            i += 1;
            lo = p[i];
        }
        let mut hi = lo;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|c| *c != ']') {
            hi = p[i + 2];
            i += 2;
        }
        if lo <= c && c <= hi {
            matched = true;
        }
        i += 1;
    }
    None
}

fn char_boundaries(s: &str) -> Vec<usize> {
    s.char_indices().map(|(i, _)| i).chain([s.len()]).collect()
}

pub(super) fn trim_prefix(pat: &str, value: &str, greedy: bool) -> String {
    let b = char_boundaries(value);
    let mut ends: Box<dyn Iterator<Item = &usize>> = if greedy {
        Box::new(b.iter().rev())
    } else {
        Box::new(b.iter())
    };
    match ends.find(|&&e| shell_match(pat, &value[..e], None)) {
        Some(&e) => value[e..].to_string(),
        None => value.to_string(),
    }
}

pub(super) fn trim_suffix(pat: &str, value: &str, greedy: bool) -> String {
    let b = char_boundaries(value);
    let mut starts: Box<dyn Iterator<Item = &usize>> = if greedy {
        Box::new(b.iter())
    } else {
        Box::new(b.iter().rev())
    };
    match starts.find(|&&s| shell_match(pat, &value[s..], None)) {
        Some(&s) => value[..s].to_string(),
        None => value.to_string(),
    }
}

/// `${v/p/r}` (first, longest match) and `${v//p/r}` (all).
pub(super) fn replace(pat: &str, rep: &str, value: &str, all: bool) -> String {
    let b = char_boundaries(value);
    let mut out = String::new();
    let mut k = 0;
    while k < b.len() {
        let start = b[k];
        let hit = (k..b.len())
            .rev()
            .map(|j| b[j])
            .find(|&end| end > start && shell_match(pat, &value[start..end], None));
        match hit {
            Some(end) => {
                out.push_str(rep);
                if !all {
                    out.push_str(&value[end..]);
                    return out;
                }
                k = b.iter().position(|&x| x == end).unwrap_or(b.len());
            }
            None => {
                if k + 1 < b.len() {
                    out.push_str(&value[start..b[k + 1]]);
                }
                k += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::shell_match;

    #[test]
    fn globbing() {
        assert!(shell_match("*.go", "a.go", Some('/')));
        assert!(!shell_match("*.go", "d/a.go", Some('/')));
        assert!(shell_match("a?c", "abc", None));
        assert!(shell_match("[a-c]x", "bx", None));
        assert!(!shell_match("[!a-c]x", "bx", None));
        assert!(shell_match("\\*", "*", None));
        assert!(shell_match("a*b*c", "aXbYbc", None));
    }
}
