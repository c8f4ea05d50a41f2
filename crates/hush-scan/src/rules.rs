//! Detector rules for `hush audit`: credentials recognised by their shape, for secrets nobody
//! passed with `--secret`. Each rule is a byte regex plus, where shapes are loose, a check of the
//! captured value (entropy, length), so that near misses (`AKIAEXAMPLE`, `password=changeme`)
//! do not fire.

use aho_corasick::AhoCorasick;
use regex::bytes::Regex;

/// A finding of a detector rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleHit {
    /// The rule's id (`aws-access-key-id`, …).
    pub rule: &'static str,
    /// Byte offset of the value (the rule's secret part) in the scanned buffer.
    pub offset: usize,
    /// The value's length in bytes: `buf[offset..offset + len]` is what a report redacts.
    pub len: usize,
    /// A redacted preview, for the rules whose values start with a public prefix: that prefix
    /// and the last 2 characters (`ghp_…A5`). None for the others.
    pub preview: Option<String>,
}

struct Rule {
    id: &'static str,
    re: Regex,
    /// The anchors whose occurrence at the start of a value is public (see [`Spec`]).
    public: &'static [&'static str],
    /// For a rule whose matches start at most [`ANCHORED_BACK`] bytes before their anchor: the
    /// same pattern, tried anchored at each of those few places (look-behind sees the bytes
    /// before), which fails within a few bytes where a window search would scan the whole
    /// window — on text full of `secret`s, 10x less work.
    anchored: Option<regex_automata::meta::Regex>,
    /// Minimum Shannon entropy (bits/char) of the captured secret part, if checked.
    min_entropy: Option<f64>,
    /// How far before the start and after the end of an anchor a match can reach.
    back: usize,
    forward: usize,
}

/// The compiled rule set.
///
/// Every rule's pattern contains one of its *anchors*, literal strings such as `AKIA`, `ghp_` or
/// `password`. One SIMD multi-literal search (Teddy, over an ASCII-lowercased copy of the bytes)
/// finds the anchors; a rule's regex only runs on a small window around each anchor. Most bytes
/// of an image contain no anchor, so the scan runs at several GB/s instead of at the speed of
/// 21 regexes (measured with `cargo bench -p hush-scan`).
pub struct Rules {
    rules: Vec<Rule>,
    /// The anchors, lowercase, for the SIMD searcher when the CPU has one.
    packed: Option<aho_corasick::packed::Searcher>,
    /// The same anchors, ASCII case-insensitive, when it does not.
    anchors: AhoCorasick,
    /// For each anchor pattern, the rules it anchors (including those of anchors inside it,
    /// which a leftmost search does not report separately).
    anchored: Vec<Vec<usize>>,
}

/// One detector rule: id, anchors (ASCII case-insensitive), the reach of a match before and
/// after an anchor (`back` must exceed the longest text a match can have before its anchor),
/// the pattern (ASCII mode; group 1 is the secret part), whether the value starts with a public
/// prefix, minimum entropy.
struct Spec {
    id: &'static str,
    anchors: &'static [&'static str],
    back: usize,
    forward: usize,
    re: &'static str,
    /// The value up to the end of the anchor it starts with is a public format marker (`ghp_`,
    /// `AKIA`, `sk_live_`, `-----BEGIN RSA PRIVATE KEY-----`) that a preview may show; for the
    /// other rules (keyword assignments, passwords in URLs, `.netrc`, …) a preview shows nothing.
    public_prefix: bool,
    min_entropy: Option<f64>,
}

/// The longest anchor.
const MAX_ANCHOR: usize = 32;

/// The largest `back` for which a rule is tried anchored (see [`Rule::anchored`]).
const ANCHORED_BACK: usize = 8;

const KEYWORDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "api_key",
    "apikey",
    "access_token",
    "accesstoken",
    "auth_token",
    "authtoken",
    "private_key",
    "privatekey",
];

const RULES: &[Spec] = &[
    Spec {
        id: "aws-access-key-id",
        anchors: &["AKIA", "ASIA"],
        back: 1,
        forward: 20,
        re: r"\b((?:AKIA|ASIA)[0-9A-Z]{16})\b",
        public_prefix: true,
        min_entropy: None,
    },
    Spec {
        id: "aws-secret-access-key",
        anchors: &["secret"],
        back: 8,
        forward: 128,
        re: r#"(?i)aws_?secret_?access_?key["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]{40})\b"#,
        public_prefix: false,
        min_entropy: Some(3.5),
    },
    Spec {
        id: "github-token",
        anchors: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        back: 1,
        forward: 260,
        re: r"\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255})\b",
        public_prefix: true,
        min_entropy: None,
    },
    Spec {
        id: "github-fine-grained-token",
        anchors: &["github_pat_"],
        back: 1,
        forward: 90,
        re: r"\b(github_pat_[A-Za-z0-9_]{82})\b",
        public_prefix: true,
        min_entropy: None,
    },
    Spec {
        id: "gitlab-token",
        anchors: &["glpat-"],
        back: 1,
        forward: 256,
        re: r"\b(glpat-[A-Za-z0-9_\-]{20,})\b",
        public_prefix: true,
        min_entropy: None,
    },
    Spec {
        id: "slack-token",
        anchors: &["xoxb-", "xoxa-", "xoxp-", "xoxr-", "xoxs-"],
        back: 1,
        forward: 512,
        re: r"\b(xox[baprs]-[0-9A-Za-z]{10,48}(?:-[0-9A-Za-z]{10,48})*)\b",
        public_prefix: true,
        min_entropy: None,
    },
    Spec {
        id: "slack-webhook",
        anchors: &["hooks.slack.com/services/"],
        back: 9,
        forward: 256,
        re: r"(https://hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]{16,})",
        public_prefix: true,
        min_entropy: None,
    },
    Spec {
        id: "stripe-secret-key",
        anchors: &["sk_live_", "rk_live_"],
        back: 1,
        forward: 110,
        re: r"\b((?:sk|rk)_live_[0-9A-Za-z]{24,99})\b",
        public_prefix: true,
        min_entropy: None,
    },
    Spec {
        id: "google-api-key",
        anchors: &["AIza"],
        back: 1,
        forward: 40,
        re: r"\b(AIza[0-9A-Za-z_\-]{35})\b",
        public_prefix: true,
        min_entropy: None,
    },
    Spec {
        id: "google-service-account",
        anchors: &["service_account"],
        back: 64,
        forward: 2200,
        re: r#"("type"\s*:\s*"service_account"[^}]{0,2000}"private_key"\s*:\s*"-----BEGIN)"#,
        public_prefix: false,
        min_entropy: None,
    },
    Spec {
        id: "npm-token",
        anchors: &["npm_"],
        back: 1,
        forward: 40,
        re: r"\b(npm_[A-Za-z0-9]{36})\b",
        public_prefix: true,
        min_entropy: None,
    },
    Spec {
        id: "pypi-token",
        anchors: &["pypi-AgEIcHlwaS5vcmc"],
        back: 1,
        forward: 1024,
        re: r"\b(pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,})",
        public_prefix: true,
        min_entropy: None,
    },
    Spec {
        id: "private-key",
        anchors: &["PRIVATE KEY-----", "PuTTY-User-Key-File-"],
        back: 32,
        forward: 40,
        re: r"(-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----[\s\S]{32}|PuTTY-User-Key-File-[23]: )",
        public_prefix: true,
        min_entropy: None,
    },
    Spec {
        id: "jwt",
        anchors: &["eyJ"],
        back: 1,
        forward: 4096,
        re: r"\b(eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{16,})",
        public_prefix: true,
        min_entropy: None,
    },
    Spec {
        id: "docker-config-auth",
        anchors: &["\"auth"],
        back: 2048,
        forward: 2048,
        re: r#""auths?"\s*:\s*\{[^}]*"auth"\s*:\s*"([A-Za-z0-9+/=]{8,})""#,
        public_prefix: false,
        min_entropy: None,
    },
    Spec {
        id: "url-with-password",
        anchors: &["://"],
        back: 17,
        forward: 256,
        re: r"\b[a-z][a-z0-9+.\-]{1,15}://[^\s:/@]{1,64}:([^\s:/@]{6,64})@[A-Za-z0-9.\-]+",
        public_prefix: false,
        min_entropy: Some(2.5),
    },
    Spec {
        id: "netrc-password",
        anchors: &["machine"],
        back: 1,
        forward: 1024,
        re: r"(?m)\bmachine\s+\S+\s+login\s+\S+\s+password\s+(\S{8,})",
        public_prefix: false,
        min_entropy: Some(2.5),
    },
    Spec {
        id: "npmrc-auth-token",
        anchors: &["_authToken"],
        back: 1,
        forward: 256,
        re: r"(?m)_authToken\s*=\s*([A-Za-z0-9_\-.]{16,})",
        public_prefix: false,
        min_entropy: None,
    },
    Spec {
        id: "pypirc-password",
        anchors: &["[pypi]", "[testpypi]", "[distutils]"],
        back: 2,
        forward: 4096,
        re: r"(?m)(?:^|=)\[(?:pypi|testpypi|distutils)\][^\[]*?^\s*password\s*[:=]\s*(\S{12,})\s*$",
        public_prefix: false,
        min_entropy: Some(3.0),
    },
    Spec {
        id: "keyword-assignment",
        anchors: KEYWORDS,
        back: 2,
        forward: 320,
        re: r#"(?i)(?:\b|_)(?:password|passwd|secret|api_?key|access_?token|auth_?token|private_?key)["']?\s*[:=]\s*["']?([A-Za-z0-9/+=_\-!@#$%^&*.]{12,})"#,
        public_prefix: false,
        min_entropy: Some(3.5),
    },
];

impl Default for Rules {
    fn default() -> Self {
        Rules::new()
    }
}

impl Rules {
    /// Compile every rule.
    pub fn new() -> Self {
        let mut patterns: Vec<String> = Vec::new();
        let mut anchored: Vec<Vec<usize>> = Vec::new();
        for (i, spec) in RULES.iter().enumerate() {
            for a in spec.anchors {
                assert!(a.len() <= MAX_ANCHOR, "anchor {a:?} is too long");
                let a = a.to_ascii_lowercase();
                match patterns.iter().position(|p| *p == a) {
                    Some(k) => anchored[k].push(i),
                    None => {
                        patterns.push(a);
                        anchored.push(vec![i]);
                    }
                }
            }
        }
        let anchored = patterns
            .iter()
            .map(|p| {
                let mut rules: Vec<usize> = patterns
                    .iter()
                    .zip(&anchored)
                    .filter(|(q, _)| p.contains(q.as_str()))
                    .flat_map(|(_, r)| r.iter().copied())
                    .collect();
                rules.sort_unstable();
                rules.dedup();
                rules
            })
            .collect();
        let packed = aho_corasick::packed::Config::new()
            .builder()
            .extend(&patterns)
            .build();
        let anchors = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .build(&patterns)
            .expect("anchors compile");
        let rules = RULES
            .iter()
            .map(|s| Rule {
                id: s.id,
                public: if s.public_prefix { s.anchors } else { &[] },
                // ASCII mode: `\b`, `\s` and classes work byte by byte on binary data.
                re: Regex::new(&format!("(?-u){}", s.re)).expect("rule regex compiles"),
                anchored: (s.back <= ANCHORED_BACK).then(|| {
                    // On bytes, as `regex::bytes` builds it: matches need not be UTF-8.
                    regex_automata::meta::Regex::builder()
                        .syntax(regex_automata::util::syntax::Config::new().utf8(false))
                        .configure(regex_automata::meta::Config::new().utf8_empty(false))
                        .build(&format!("(?-u){}", s.re))
                        .expect("rule regex compiles")
                }),
                min_entropy: s.min_entropy,
                back: s.back,
                forward: s.forward,
            })
            .collect();
        Rules {
            rules,
            packed,
            anchors,
            anchored,
        }
    }

    /// The rule ids.
    pub fn ids(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.rules.iter().map(|r| r.id)
    }

    /// How far around an anchor a rule looks: a window of a larger buffer that owns only the
    /// anchors at least this far from its inner edges sees every match they start.
    pub fn reach(&self) -> usize {
        self.rules
            .iter()
            .map(|r| r.back.max(r.forward + MAX_ANCHOR))
            .max()
            .unwrap_or(0)
    }

    /// Every rule's findings in `buf`, in order of offset.
    pub fn scan(&self, buf: &[u8]) -> Vec<RuleHit> {
        self.scan_owned(buf, 0..buf.len())
    }

    /// The findings in `buf` of the anchors that start in `owned`: `buf` is a window of a larger
    /// stream, overlapping its neighbours by at least [`Rules::reach`] on each side, and each
    /// window reports the anchors it owns.
    pub fn scan_owned(&self, buf: &[u8], owned: std::ops::Range<usize>) -> Vec<RuleHit> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        // Capture slots of the anchored rules, made once per scan rather than per anchor.
        let mut caps = vec![None; self.rules.len()];
        let mut check = |a: aho_corasick::Match| {
            if !owned.contains(&a.start()) {
                return;
            }
            for &ri in &self.anchored[a.pattern().as_usize()] {
                self.check(ri, buf, a.span(), &mut caps[ri], &mut seen, &mut out);
            }
        };
        match &self.packed {
            Some(packed) => {
                let lower = buf.to_ascii_lowercase();
                for a in packed.find_iter(&lower) {
                    check(a);
                }
            }
            None => {
                for a in self.anchors.find_iter(buf) {
                    check(a);
                }
            }
        }
        out.sort_by_key(|h| (h.offset, h.rule));
        out
    }

    /// Run rule `ri` on the window around an anchor.
    fn check(
        &self,
        ri: usize,
        buf: &[u8],
        anchor: aho_corasick::Span,
        caps: &mut Option<regex_automata::util::captures::Captures>,
        seen: &mut std::collections::HashSet<(usize, usize)>,
        out: &mut Vec<RuleHit>,
    ) {
        let r = &self.rules[ri];
        let start = anchor.start;
        let lo = start.saturating_sub(r.back);
        let hi = (anchor.end + r.forward).min(buf.len());
        if let Some(re) = &r.anchored {
            // The leftmost start that matches, as a search from `lo` would find it.
            let caps = caps.get_or_insert_with(|| re.create_captures());
            for s in lo..=start {
                let input = regex_automata::Input::new(&buf[..hi])
                    .span(s..hi)
                    .anchored(regex_automata::Anchored::Yes);
                re.search_captures(&input, caps);
                let Some(whole) = caps.get_match() else {
                    continue;
                };
                if whole.end() > start {
                    let m = caps.get_group(1).unwrap_or(whole.span());
                    self.record(ri, &buf[m.range()], m.start, seen, out);
                }
                return;
            }
            return;
        }
        for c in r.re.captures_iter(&buf[lo..hi]) {
            let whole = c.get(0).expect("group 0");
            // A match must cover this anchor (others are found from their own), and must not
            // start at a window edge that is not the buffer's (a `\b` or `^` there would be an
            // artefact of the window).
            if lo + whole.start() > start || lo + whole.end() <= start {
                continue;
            }
            if lo > 0 && whole.start() == 0 {
                continue;
            }
            let m = c.get(1).unwrap_or(whole);
            self.record(ri, m.as_bytes(), lo + m.start(), seen, out);
        }
    }

    /// A rule's match with `value` (its secret part) at `offset`, unless already recorded or a
    /// placeholder.
    fn record(
        &self,
        ri: usize,
        value: &[u8],
        offset: usize,
        seen: &mut std::collections::HashSet<(usize, usize)>,
        out: &mut Vec<RuleHit>,
    ) {
        let r = &self.rules[ri];
        if !seen.insert((ri, offset))
            || r.min_entropy.is_some_and(|e| entropy(value) < e)
            || placeholder(value, r.min_entropy.is_some())
        {
            return;
        }
        out.push(RuleHit {
            rule: r.id,
            offset,
            len: value.len(),
            preview: preview(value, r.public),
        });
    }
}

/// Documentation examples and code rather than credentials: `password`, `changeme`,
/// `AKIAIOSFODNN7EXAMPLE`, `<token>`, `${TOKEN}`; for the loosely shaped rules (`loose`: the
/// keyword and URL ones) also attribute chains like `self.password` or `config.api_key`.
fn placeholder(v: &[u8], loose: bool) -> bool {
    let l = v.to_ascii_lowercase();
    let has = |w: &[u8]| l.windows(w.len()).any(|x| x == w);
    const WORDS: &[&[u8]] = &[
        b"password",
        b"passwd",
        b"secret",
        b"changeme",
        b"example",
        b"xxxx",
        b"****",
        b"placeholder",
        b"your_",
        b"your-",
        b"dummy",
        b"redacted",
    ];
    if WORDS.iter().any(|w| has(w)) || matches!(l.first(), Some(b'$' | b'<' | b'{' | b'%')) {
        return true;
    }
    // `a.b.c`: an attribute chain in code, not a value.
    let parts: Vec<&[u8]> = v.split(|b| *b == b'.').collect();
    loose
        && parts.len() > 1
        && parts.iter().all(|p| {
            p.first()
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
                && p.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
        })
}

/// Shannon entropy in bits per byte.
fn entropy(v: &[u8]) -> f64 {
    let mut counts = [0usize; 256];
    for b in v {
        counts[*b as usize] += 1;
    }
    let n = v.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = *c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Fewer characters than this after the public prefix: the last 2 are not shown either.
const MIN_HIDDEN: usize = 8;

/// `ghp_…A5`: the public prefix the value starts with (up to the end of one of `public`, the
/// rule's anchors, found in its first 64 bytes) and its last 2 characters — enough to tell two
/// tokens apart, nothing that helps guess one. None when the rule has no public prefix.
pub fn preview(v: &[u8], public: &[&str]) -> Option<String> {
    let head = &v[..v.len().min(64)];
    let lower = head.to_ascii_lowercase();
    let end = public
        .iter()
        .filter_map(|a| {
            let a = a.to_ascii_lowercase();
            lower
                .windows(a.len())
                .position(|w| w == a.as_bytes())
                .map(|i| i + a.len())
        })
        .min()?;
    let prefix: String = String::from_utf8_lossy(&v[..end])
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let rest: Vec<char> = String::from_utf8_lossy(&v[end..])
        .chars()
        .filter(|c| !c.is_control() && !c.is_whitespace())
        .collect();
    Some(if rest.len() < MIN_HIDDEN {
        format!("{prefix}…")
    } else {
        format!(
            "{prefix}…{}",
            rest[rest.len() - 2..].iter().collect::<String>()
        )
    })
}

#[cfg(test)]
#[path = "../testdata/samples.rs"]
mod samples;

#[cfg(test)]
mod tests {
    use super::*;

    fn fires(text: &str) -> Vec<&'static str> {
        Rules::new()
            .scan(text.as_bytes())
            .into_iter()
            .map(|h| h.rule)
            .collect()
    }

    /// Each rule: a true positive, and a near miss that must not fire.
    /// The positives are synthetic, built from parts so that this file holds no real-looking key.
    #[test]
    fn true_positives_and_near_misses() {
        let cases = samples::samples();
        for (rule, positive, near) in &cases {
            assert!(
                fires(positive).contains(rule),
                "{rule} should fire on {positive:?}: {:?}",
                fires(positive)
            );
            assert!(
                !fires(near).contains(rule),
                "{rule} must not fire on the near miss {near:?}"
            );
        }
        let covered: std::collections::BTreeSet<&str> = cases.iter().map(|c| c.0).collect();
        for id in Rules::new().ids() {
            assert!(covered.contains(id), "rule {id} has no test case");
        }
    }

    /// The anchored windows find exactly what each rule's regex finds over the whole buffer.
    #[test]
    fn anchored_scan_equals_whole_buffer_regexes() {
        let parts = [
            format!("key=AKIA{}", "Z7Q4X2M9P0LK3J7R"),
            "xAKIAZ7Q4X2M9P0LK3J7R".into(),
            format!(
                "aws_secret_access_key = {}",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCY9q3z1Lk2Pz"
            ),
            format!(
                "export DB_PASSWORD=\"{}\" api_key: {}",
                "Zq8#kP2vLm9xR4tYw", "Lm9xR4tYwZq8kP2v"
            ),
            "//registry.npmjs.org/:_authToken=Zq8kP2vLm9xR4tYw".into(),
            "https://hooks.slack.com/services/T0123ABCD/B0123ABCD/aBcDeFgHiJkLmNoPqRsTuVwX".into(),
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa://u:Zq8kP2vLm9@host ftp://me:Zq8kP2vLm9@h"
                .into(),
            "machine m login l password Zq8kP2vLm9xR".into(),
            "[pypi]\nusername = t\npassword = Zq8kP2vLm9xR4tYw\n".into(),
            "{\"auths\": {\"r\": {\"auth\": \"dXNlcjpwYXNzd29yZA==\"}}}".into(),
            "\0\u{1}binary\u{ff}PASSWORD=Zq8#kP2vLm9xR4tYw\u{fe}".into(),
        ];
        let text = parts.join("\n");
        let rules = Rules::new();
        let mut naive: Vec<(usize, &str)> = Vec::new();
        for (spec, rule) in RULES.iter().zip(&rules.rules) {
            for c in rule.re.captures_iter(text.as_bytes()) {
                let m = c.get(1).or_else(|| c.get(0)).unwrap();
                if !spec.min_entropy.is_some_and(|e| entropy(m.as_bytes()) < e)
                    && !placeholder(m.as_bytes(), spec.min_entropy.is_some())
                {
                    naive.push((m.start(), spec.id));
                }
            }
        }
        naive.sort();
        let got: Vec<(usize, &str)> = rules
            .scan(text.as_bytes())
            .into_iter()
            .map(|h| (h.offset, h.rule))
            .collect();
        assert_eq!(got, naive);
        assert!(got.len() >= 10, "{got:?}");
    }

    /// Code and documentation examples that look like assignments of credentials.
    #[test]
    fn placeholders_and_code_do_not_fire() {
        for text in [
            "self.password = self.password_mgr.find_user_password",
            "auth = netrc.authenticators(host)",
            "http://john%40example.com:password@example.com/",
            "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
            "API_KEY=${API_KEY_FROM_VAULT}",
            "password: <your-password-here>",
            "SECRET_KEY=changeme-changeme-changeme",
        ] {
            assert!(fires(text).is_empty(), "{text:?} fired {:?}", fires(text));
        }
    }

    /// Every rule's preview: at most its public prefix and the last 2 characters; nothing for
    /// the rules without a public prefix.
    #[test]
    fn previews_show_only_public_prefixes() {
        let token = format!("ghp_{}", "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5");
        assert_eq!(
            preview(token.as_bytes(), &["ghp_"]).as_deref(),
            Some("ghp_…A5")
        );
        assert_eq!(
            preview(b"AKIAZ7Q4X2M9P0LK3J7R", &["AKIA", "ASIA"]).as_deref(),
            Some("AKIA…7R")
        );
        assert_eq!(preview(b"npm_abc", &["npm_"]).as_deref(), Some("npm_…"));
        assert_eq!(preview(b"Zq8kP2vLm9xR4tYw", &[]), None);
        for (rule, positive, _) in samples::samples() {
            for h in Rules::new().scan(positive.as_bytes()) {
                let value = &positive.as_bytes()[h.offset..h.offset + h.len];
                let spec = RULES.iter().find(|s| s.id == h.rule).unwrap();
                match (&h.preview, spec.public_prefix) {
                    (None, false) => {}
                    (Some(p), true) => {
                        let p = p.as_bytes();
                        let shown = p.len() - "…".len();
                        assert!(
                            shown <= value.len() - MIN_HIDDEN + 2,
                            "{rule}: preview {:?} shows too much of {} bytes",
                            String::from_utf8_lossy(p),
                            value.len()
                        );
                        assert!(
                            spec.anchors.iter().any(|a| String::from_utf8_lossy(p)
                                .to_ascii_lowercase()
                                .contains(&a.to_ascii_lowercase())),
                            "{rule}"
                        );
                    }
                    (p, _) => panic!(
                        "{rule}: preview {p:?} for a rule whose public_prefix is {}",
                        spec.public_prefix
                    ),
                }
            }
        }
    }
}
