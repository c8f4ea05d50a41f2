//! Detector rules for `hush audit`: credentials recognised by their shape, for secrets nobody
//! passed with `--secret`. Each rule is a byte regex plus, where shapes are loose, a check of the
//! captured value (entropy, length), so that near misses (`AKIAEXAMPLE`, `password=changeme`)
//! do not fire.

use regex::bytes::Regex;

/// A finding of a detector rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleHit {
    /// The rule's id (`aws-access-key-id`, …).
    pub rule: &'static str,
    /// Byte offset in the scanned buffer.
    pub offset: usize,
    /// A redacted preview: the first and last 4 characters.
    pub preview: String,
}

struct Rule {
    id: &'static str,
    re: Regex,
    /// Minimum Shannon entropy (bits/char) of the captured secret part, if checked.
    min_entropy: Option<f64>,
}

/// The compiled rule set.
pub struct Rules {
    rules: Vec<Rule>,
    /// All patterns in one automaton: most buffers match none, and one pass says so.
    any: regex::bytes::RegexSet,
}

const RULES: &[(&str, &str, Option<f64>)] = &[
    (
        "aws-access-key-id",
        r"\b((?:AKIA|ASIA)[0-9A-Z]{16})\b",
        None,
    ),
    (
        "aws-secret-access-key",
        r#"(?i)aws_?secret_?access_?key["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]{40})\b"#,
        Some(3.5),
    ),
    (
        "github-token",
        r"\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255})\b",
        None,
    ),
    (
        "github-fine-grained-token",
        r"\b(github_pat_[A-Za-z0-9_]{82})\b",
        None,
    ),
    ("gitlab-token", r"\b(glpat-[A-Za-z0-9_\-]{20,})\b", None),
    (
        "slack-token",
        r"\b(xox[baprs]-[0-9A-Za-z]{10,48}(?:-[0-9A-Za-z]{10,48})*)\b",
        None,
    ),
    (
        "slack-webhook",
        r"(https://hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]{16,})",
        None,
    ),
    (
        "stripe-secret-key",
        r"\b((?:sk|rk)_live_[0-9A-Za-z]{24,99})\b",
        None,
    ),
    ("google-api-key", r"\b(AIza[0-9A-Za-z_\-]{35})\b", None),
    (
        "google-service-account",
        r#"("type"\s*:\s*"service_account"[^}]{0,2000}"private_key"\s*:\s*"-----BEGIN)"#,
        None,
    ),
    ("npm-token", r"\b(npm_[A-Za-z0-9]{36})\b", None),
    (
        "pypi-token",
        r"\b(pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,})",
        None,
    ),
    (
        "private-key",
        r"(-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----[\s\S]{32}|PuTTY-User-Key-File-[23]: )",
        None,
    ),
    (
        "jwt",
        r"\b(eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{16,})",
        None,
    ),
    (
        "docker-config-auth",
        r#""auths?"\s*:\s*\{[^}]*"auth"\s*:\s*"([A-Za-z0-9+/=]{8,})""#,
        None,
    ),
    (
        "url-with-password",
        r"\b[a-z][a-z0-9+.\-]{1,15}://[^\s:/@]{1,64}:([^\s:/@]{6,64})@[A-Za-z0-9.\-]+",
        Some(2.5),
    ),
    (
        "netrc-password",
        r"(?m)\bmachine\s+\S+\s+login\s+\S+\s+password\s+(\S{8,})",
        Some(2.5),
    ),
    (
        "npmrc-auth-token",
        r"(?m)_authToken\s*=\s*([A-Za-z0-9_\-.]{16,})",
        None,
    ),
    (
        "pypirc-password",
        r"(?m)^\[(?:pypi|testpypi|distutils)\][^\[]*?^\s*password\s*[:=]\s*(\S{12,})\s*$",
        Some(3.0),
    ),
    (
        "keyword-assignment",
        r#"(?i)(?:\b|_)(?:password|passwd|secret|api_?key|access_?token|auth_?token|private_?key)["']?\s*[:=]\s*["']?([A-Za-z0-9/+=_\-!@#$%^&*.]{12,})"#,
        Some(3.5),
    ),
];

impl Default for Rules {
    fn default() -> Self {
        Rules::new()
    }
}

impl Rules {
    /// Compile every rule.
    pub fn new() -> Self {
        let rules = RULES
            .iter()
            .map(|(id, re, min_entropy)| Rule {
                id,
                re: Regex::new(re).expect("rule regex compiles"),
                min_entropy: *min_entropy,
            })
            .collect();
        let any = regex::bytes::RegexSet::new(RULES.iter().map(|(_, re, _)| *re))
            .expect("rule regexes compile");
        Rules { rules, any }
    }

    /// The rule ids.
    pub fn ids(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.rules.iter().map(|r| r.id)
    }

    /// Every rule's findings in `buf`.
    pub fn scan(&self, buf: &[u8]) -> Vec<RuleHit> {
        let mut out = Vec::new();
        if !self.any.is_match(buf) {
            return out;
        }
        for r in &self.rules {
            for c in r.re.captures_iter(buf) {
                let Some(m) = c.get(1).or_else(|| c.get(0)) else {
                    continue;
                };
                let value = m.as_bytes();
                if r.min_entropy.is_some_and(|e| entropy(value) < e) {
                    continue;
                }
                out.push(RuleHit {
                    rule: r.id,
                    offset: m.start(),
                    preview: preview(value),
                });
            }
        }
        out
    }
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

/// `AKIA…MPLE`: enough to recognise a value, not to use it.
pub fn preview(v: &[u8]) -> String {
    let s = String::from_utf8_lossy(v);
    let chars: Vec<char> = s.chars().filter(|c| !c.is_control()).collect();
    if chars.len() <= 12 {
        return format!("{}…", chars.iter().take(2).collect::<String>());
    }
    format!(
        "{}…{}",
        chars[..4].iter().collect::<String>(),
        chars[chars.len() - 4..].iter().collect::<String>()
    )
}

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
        let cases: Vec<(&str, String, String)> = vec![
            ("aws-access-key-id", format!("key=AKIA{}", "Z7Q4X2M9P0LK3J7R"), "AKIAEXAMPLE".into()),
            (
                "aws-secret-access-key",
                format!("aws_secret_access_key = {}", "wJalrXUtnFEMI/K7MDENG/bPxRfiCY9q3z1Lk2Pz"),
                "aws_secret_access_key = xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx".into(),
            ),
            ("github-token", format!("ghp_{}", "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"), "ghp_short".into()),
            ("github-fine-grained-token", format!("github_pat_{}", "a1".repeat(41)), "github_pat_short".into()),
            ("gitlab-token", format!("glpat-{}", "x9Y8z7W6v5U4t3S2r1Q0"), "glpat-short".into()),
            ("slack-token", format!("xoxb-{}-{}", "1234567890", "abcdefghijABCDEFGHIJ12"), "xoxb-short".into()),
            (
                "slack-webhook",
                format!("https://hooks.slack.com/services/T0123ABCD/B0123ABCD/{}", "aBcDeFgHiJkLmNoPqRsTuVwX"),
                "https://hooks.slack.com/services/".into(),
            ),
            ("stripe-secret-key", format!("sk_live_{}", "4eC39HqLyjWDarjtT1zdp7dc9XyZ"), "sk_test_4eC39HqLyjWDarjtT1zdp7dc".into()),
            ("google-api-key", format!("AIza{}", "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"), "AIzaShort".into()),
            (
                "google-service-account",
                "{\"type\": \"service_account\", \"project_id\": \"p\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\nMII\"}".into(),
                "{\"type\": \"service_account\", \"project_id\": \"p\"}".into(),
            ),
            ("npm-token", format!("npm_{}", "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"), "npm_install".into()),
            ("pypi-token", format!("pypi-AgEIcHlwaS5vcmc{}", "x".repeat(60)), "pypi-AgEI".into()),
            (
                "private-key",
                format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{}", "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAE"),
                "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA".into(),
            ),
            (
                "jwt",
                format!("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.{}", "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
                "eyJhbGciOiJIUzI1NiJ9".into(),
            ),
            (
                "docker-config-auth",
                "{\"auths\": {\"registry.example\": {\"auth\": \"dXNlcjpwYXNzd29yZA==\"}}}".into(),
                "{\"auths\": {}}".into(),
            ),
            ("url-with-password", "git clone https://deploy:Zq8#kP2vLm9x@git.example/repo".into(), "https://user@git.example/repo".into()),
            ("netrc-password", "machine git.example login me password Zq8kP2vLm9xR".into(), "machine git.example login me".into()),
            ("npmrc-auth-token", "//registry.npmjs.org/:_authToken=Zq8kP2vLm9xR4tYw".into(), "//registry.npmjs.org/:always-auth=true".into()),
            ("pypirc-password", "[pypi]\nusername = __token__\npassword = Zq8kP2vLm9xR4tYw\n".into(), "[pypi]\npassword = changeme\n".into()),
            ("keyword-assignment", "DB_PASSWORD=Zq8#kP2vLm9xR4tYw".into(), "PASSWORD=aaaaaaaaaaaaaaaa".into()),
        ];
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

    #[test]
    fn previews_redact() {
        assert_eq!(preview(b"AKIAIOSFODNN7EXAMPLE"), "AKIA…MPLE");
        assert_eq!(preview(b"short"), "sh…");
    }
}
