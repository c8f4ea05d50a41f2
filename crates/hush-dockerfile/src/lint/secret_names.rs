//! BuildKit's `SecretsUsedInArgOrEnv` name test, mirrored exactly
//! (`frontend/dockerfile/dockerfile2llb/validations.go`, `getSecretsRegex`): a name is secret when
//! one of its `_`-separated words is a secret token and none is an allowed token. Both are the
//! same case-insensitive regexes BuildKit compiles (Go's and Rust's `(?i)` both use Unicode
//! simple case folding, so even `K`, the Kelvin sign, matches `k` in both). `-` is not a
//! separator: `MY-TOKEN` is not reported, as in BuildKit.

use std::sync::OnceLock;

use regex::Regex;

/// The words that make a name secret.
const SECRET_TOKENS: &[&str] = &[
    "apikey",
    "auth",
    "credential",
    "credentials",
    "key",
    "password",
    "pword",
    "passwd",
    "secret",
    "token",
];

/// The words that make it not secret after all (`PUBLIC_KEY`, `TOKEN_FILE`, `AUTH_VERSION`).
const ALLOW_TOKENS: &[&str] = &["public", "file", "version"];

fn word_regex(tokens: &[&str]) -> Regex {
    Regex::new(&format!("(?i)(?:_|^)(?:{})(?:_|$)", tokens.join("|"))).expect("token regex")
}

/// Does an ARG or ENV named `name` look like it holds a secret?
pub fn looks_secret_name(name: &str) -> bool {
    static RES: OnceLock<(Regex, Regex)> = OnceLock::new();
    let (deny, allow) = RES.get_or_init(|| (word_regex(SECRET_TOKENS), word_regex(ALLOW_TOKENS)));
    deny.is_match(name) && !allow.is_match(name)
}

#[cfg(test)]
mod tests {
    use super::looks_secret_name;

    /// name | secret? — BuildKit's own check-test names first, then the edges of the regexes.
    const TABLE: &[(&str, bool)] = &[
        ("SECRET_PASSPHRASE", true),
        ("SUPER_Secret", true),
        ("password", true),
        ("secret", true),
        ("super_duper_secret_token", true),
        ("auth", true),
        ("apikey", true),
        ("sunflower", false),
        ("git_key", true),
        ("PUBLIC_KEY", false),
        ("public_token", false),
        ("SECRET_PASSPHRASE_FILE", false),
        ("password_file", false),
        ("secret_File", false),
        ("AUTH_MODULE_VERSION", false),
        ("alternate_password", true),
        ("NPM_TOKEN", true),
        ("AWS_SECRET_ACCESS_KEY", true),
        ("GITHUB_TOKEN", true),
        ("DB_PASSWD", true),
        ("USER_PWORD", true),
        ("GOOGLE_CREDENTIALS", true),
        ("MY_CREDENTIAL_X", true),
        ("API_KEY", true),
        ("KEYBOARD", false),
        ("MONKEY", false),
        ("TOKENS", false),
        ("PASSWORDS", false),
        ("AUTHOR", false),
        ("OAUTH", false),
        ("API-KEY", false),
        ("MY-TOKEN", false),
        ("TOKEN_", true),
        ("_TOKEN", true),
        ("A__KEY__B", true),
        ("KEY_PUBLIC", false),
        ("PUBLICKEY", false),
        ("VERSION", false),
        ("RELEASE_VERSION", false),
        ("\u{212A}EY", true),
        ("", false),
    ];

    #[test]
    fn buildkit_table() {
        for (name, want) in TABLE {
            assert_eq!(looks_secret_name(name), *want, "{name:?}");
        }
    }
}
