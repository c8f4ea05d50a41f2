use super::*;

/// The error kinds of `cases.txt`.
fn kind(e: &ReferenceError) -> &'static str {
    match e {
        ReferenceError::Empty => "empty",
        ReferenceError::Uppercase { .. } => "uppercase",
        ReferenceError::Identifier { .. } => "identifier",
        ReferenceError::TooLong { .. } => "too-long",
        ReferenceError::DigestTag { .. } => "digest-tag",
        ReferenceError::Format { problem, .. } => match problem {
            Problem::Host { .. } => "host",
            Problem::Path => "path",
            Problem::Colons => "colons",
            Problem::Tag { .. } => "tag",
            Problem::Digest { .. } => "digest",
        },
    }
}

#[test]
fn docker_normalisation_table() {
    let mut failures = Vec::new();
    let mut n = 0;
    for line in include_str!("cases.txt").lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        n += 1;
        let fields: Vec<&str> = line.split(" | ").map(str::trim).collect();
        let input = fields[0];
        let got = match Reference::parse(input) {
            Ok(r) => format!(
                "{} | {} | {}",
                r.clone().with_default_tag(),
                r.domain(),
                r.familiar()
            ),
            Err(e) => {
                let msg = e.to_string();
                // Every message names what was given.
                if !input.is_empty() && !msg.contains(input) {
                    failures.push(format!("{input:?}: message without the input: {msg}"));
                }
                format!("error {}", kind(&e))
            }
        };
        let want = fields[1..].join(" | ");
        if got != want {
            failures.push(format!("{input:?}: got {got:?}, want {want:?}"));
        }
    }
    assert!(n > 100, "the table was read ({n} cases)");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_canonical_reference_parses_to_itself() {
    for line in include_str!("cases.txt").lines() {
        let Some(canonical) = line.split(" | ").nth(1).filter(|f| !f.starts_with("error")) else {
            continue;
        };
        if line.starts_with('#') {
            continue;
        }
        let r = Reference::parse(canonical).unwrap();
        assert_eq!(r.to_string(), canonical);
        assert_eq!(Reference::parse(&r.familiar()).unwrap(), r, "{canonical}");
    }
}

#[test]
fn the_path_is_at_most_255_characters() {
    let a = |n| "a".repeat(n);
    let ok = format!("example.com/{}:tag", a(255));
    assert_eq!(Reference::parse(&ok).unwrap().path().len(), 255);
    // A one-component Docker Hub name is in library/, which counts.
    assert!(Reference::parse(&a(247)).is_ok());
    for long in [format!("domain.com/{}:tag", a(256)), a(248)] {
        assert!(
            matches!(
                Reference::parse(&long),
                Err(ReferenceError::TooLong { len: 256, .. })
            ),
            "{long}"
        );
    }
    // Many short components: the path counts, not the components.
    let nested = format!("{}a:tag-puts-this-over-max", "a/".repeat(127));
    let r = Reference::parse(&nested).unwrap();
    assert_eq!((r.domain(), r.path().len()), ("docker.io", 255));
}

#[test]
fn a_tag_to_give_has_a_tag_and_no_digest() {
    assert_eq!(
        Reference::parse_tag("demo").unwrap().to_string(),
        "docker.io/library/demo:latest"
    );
    assert_eq!(
        Reference::parse_tag("localhost:5000/a/b")
            .unwrap()
            .to_string(),
        "localhost:5000/a/b:latest"
    );
    let digest = "demo@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
    let e = Reference::parse_tag(digest).unwrap_err();
    assert!(matches!(e, ReferenceError::DigestTag { .. }), "{e}");
    assert!(e.to_string().contains("digest"), "{e}");
}

#[test]
fn errors_say_why() {
    let msg = |s: &str| Reference::parse(s).unwrap_err().to_string();
    assert_eq!(
        msg("MyApp:Latest"),
        "invalid reference \"MyApp:Latest\": repository name \"library/MyApp\" must be lowercase"
    );
    assert!(msg("foo:bar:baz").contains("only one ':'"));
    assert!(msg("busybox:-x").contains("the tag \"-x\""));
    assert!(msg("busybox@sha256:abc").contains("sha256: and 64 hex digits"));
    assert!(msg("").contains("cannot be empty"));
}
