//! One synthetic true positive and one near miss per detector rule: the rules' unit test and
//! the planted-image recall test (`crates/hush/tests/audit_recall.rs`) share them. The positives
//! are built from parts so that no file of this repository holds a real-looking key.

/// `(rule id, a value it must find, a near miss it must not)`.
pub fn samples() -> Vec<(&'static str, String, String)> {
    vec![
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
        ("pypi-token", format!("pypi-AgEIcHlwaS5vcmc{}", "aB3dE5fG7hJ9kL1mN3pQ".repeat(3)), "pypi-AgEI".into()),
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
]
}
