//! End-to-end: Dockerfile semantics where hush must do what BuildKit does (issue 12), and
//! hostile Dockerfiles that must fail at their line instead of crashing. Real builds from a
//! busybox-static base; needs root, skipped with a message otherwise.

mod common;
use common::{log, run_in};

use std::path::Path;
use std::process::Output;

fn can_run() -> bool {
    common::can_run(&["busybox"])
}

/// One store with busybox:local for all tests of this file.
fn store() -> &'static Path {
    common::shared_store()
}

fn ctx(dockerfile: &[u8], files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("Dockerfile"), dockerfile).unwrap();
    for (name, content) in files {
        std::fs::write(d.path().join(name), content).unwrap();
    }
    d
}

fn build(dockerfile: &str, files: &[(&str, &str)], extra: &[&str]) -> Output {
    build_bytes(dockerfile.as_bytes(), files, extra)
}

fn build_bytes(dockerfile: &[u8], files: &[(&str, &str)], extra: &[&str]) -> Output {
    let c = ctx(dockerfile, files);
    let mut args = vec!["build", "--progress=plain"];
    args.extend_from_slice(extra);
    args.push(".");
    run_in(&store().join("root"), &args, c.path())
}

/// The build fails with exit code 1 and `message` at `Dockerfile:line`.
fn assert_fails_at(o: &Output, line: usize, message: &str) {
    let l = log(o);
    assert_eq!(o.status.code(), Some(1), "{l}");
    assert!(l.contains(message), "want {message:?} in:\n{l}");
    assert!(
        l.contains(&format!("Dockerfile:{line}")),
        "want line {line} in:\n{l}"
    );
}

#[test]
fn bare_run_runs_an_empty_shell_script() {
    if !can_run() {
        return;
    }
    let o = build("FROM busybox:local\nRUN\nRUN touch /ok\n", &[], &[]);
    assert!(o.status.success(), "{}", log(&o));
}

#[test]
fn bind_mount_without_target_is_at_the_workdir() {
    if !can_run() {
        return;
    }
    let o = build(
        "FROM busybox:local AS s\n\
         RUN mkdir /x && echo hi > /x/f\n\
         FROM busybox:local\n\
         WORKDIR /src\n\
         RUN --mount=from=s,src=/x test \"$(cat /src/f)\" = hi && test \"$(cat f)\" = hi\n\
         RUN test ! -e /src/f\n",
        &[],
        &[],
    );
    assert!(o.status.success(), "{}", log(&o));
}

/// The stages a build needs are found with the build args the steps see: a mount whose type
/// comes from `--build-arg` reads the stage it names (the plan used to see `type=""`).
#[test]
fn mount_options_from_build_args_pick_the_stage() {
    if !can_run() {
        return;
    }
    let o = build(
        "FROM busybox:local AS a\n\
         RUN echo from-a > /a\n\
         FROM busybox:local\n\
         ARG KIND\n\
         RUN --mount=type=$KIND,from=a,target=/m test \"$(cat /m/a)\" = from-a\n",
        &[],
        &["--build-arg", "KIND=bind"],
    );
    assert!(o.status.success(), "{}", log(&o));
}

/// `COPY --chown=42` is `42:42` (BuildKit's rule for a numeric user without a group); a name
/// takes its primary group from the image's `/etc/passwd`.
#[test]
fn chown_uid_without_group_is_uid_uid() {
    if !can_run() {
        return;
    }
    let o = build(
        "FROM busybox:local\n\
         RUN echo 'app:x:1000:1001::/home/app:/bin/sh' >> /etc/passwd\n\
         COPY --chown=42 f /f\n\
         COPY --chown=1000 f /g\n\
         COPY --chown=app f /h\n\
         COPY --chown=42:7 f /i\n\
         RUN test \"$(stat -c %u:%g /f)\" = 42:42 && test \"$(stat -c %u:%g /g)\" = 1000:1000 \
             && test \"$(stat -c %u:%g /h)\" = 1000:1001 && test \"$(stat -c %u:%g /i)\" = 42:7\n",
        &[("f", "x")],
        &[],
    );
    assert!(o.status.success(), "{}", log(&o));
}

/// Dockerfiles that BuildKit refuses, refused before any step with BuildKit's message and the
/// line: `(Dockerfile, line, message)`.
const REFUSED: &[(&str, usize, &str)] = &[
    (
        "FROM busybox:local AS builder\nFROM busybox:local\nCOPY --from builder /bin/sh /sh\n",
        3,
        "missing a value on flag: --from",
    ),
    (
        "FROM busybox:local\nCOPY --chown f /f\n",
        2,
        "missing a value on flag: --chown",
    ),
    (
        "FROM busybox:local\nADD --checksum f /f\n",
        2,
        "missing a value on flag: --checksum",
    ),
    (
        "FROM busybox:local AS a\nFROM busybox:local\nCOPY --from=a --from=a /x /y\n",
        3,
        "duplicate flag specified: --from",
    ),
    (
        "FROM busybox:local\nCOPY --link= f /f\n",
        2,
        "missing a value on flag: --link",
    ),
    (
        "FROM busybox:local\nCOPY --link=1 f /f\n",
        2,
        "expecting boolean value for flag --link, not: 1",
    ),
    (
        "FROM busybox:local\nADD --checksum=sha256:0000 f /f\n",
        2,
        "checksum requires HTTP(S) or Git sources",
    ),
    (
        "FROM busybox:local\nEXPOSE 80/tcpx\n",
        2,
        "invalid port: \"80/tcpx\": invalid proto: tcpx",
    ),
    (
        "FROM busybox:local\nRUN --mount=type=secret,source=a,id=b true\n",
        2,
        "both source and id can't be set",
    ),
    (
        "FROM busybox:local\nRUN --mount=type=bind,target=/x,mode=0644 true\n",
        2,
        "mode not allowed for \"bind\" type mounts",
    ),
    (
        "FROM busybox:local AS a\nFROM busybox:local\nARG SRC=a\nRUN --mount=from=$SRC,target=/m true\n",
        4,
        "'from' doesn't support variable expansion, define alias stage instead",
    ),
    (
        "FROM busybox:local AS a\nFROM busybox:local\nARG SRC=a\nCOPY --from=$SRC /x /y\n",
        4,
        "variable expansion is not supported for --from",
    ),
    (
        "FROM busybox:local\nRUN --mount=type=cache true\n",
        2,
        "invalid mount target \"/\"",
    ),
];

#[test]
fn buildkit_refusals_name_the_line() {
    if !can_run() {
        return;
    }
    for (dockerfile, line, message) in REFUSED {
        let o = build(dockerfile, &[("f", "x")], &["--build-arg", "SRC=a"]);
        assert_fails_at(&o, *line, message);
    }
}

/// Hostile Dockerfiles (found by a mutational fuzzer) fail at their line with exit code 1:
/// no crash of a build thread (SIGABRT) or of the container's init (exit 125), no gigabytes.
#[test]
fn hostile_dockerfiles_fail_at_their_line() {
    if !can_run() {
        return;
    }
    let nested = format!(
        "FROM busybox:local AS other\nRUN sleep 1\nFROM busybox:local\nCOPY --from=other /bin/true /t\nENV b={}x{}\nRUN true\n",
        "${a:-".repeat(3_000),
        "}".repeat(3_000)
    );
    let o = build(&nested, &[], &[]);
    assert_fails_at(&o, 5, "${…} nested more than 64 deep");

    let o = build_bytes(b"FROM busybox:local\nARG a\0b=1\nRUN true\n", &[], &[]);
    assert_fails_at(&o, 2, "ARG name contains a NUL byte");
    let o = build_bytes(b"FROM busybox:local\nENV a=x\0y\nRUN true\n", &[], &[]);
    assert_fails_at(&o, 2, "the value of ENV a contains a NUL byte");

    let mut chained = String::from("FROM busybox:local\nARG a0=x\n");
    for i in 1..20_000 {
        chained.push_str(&format!("ARG a{i}=${{a{}}}x\n", i - 1));
    }
    chained.push_str("RUN true\n");
    let o = build(&chained, &[], &[]);
    // About 2,050 ARGs in (n²/2 bytes), wherever the base image's ENV puts it.
    let l = log(&o);
    assert_eq!(o.status.code(), Some(1), "{l}");
    assert!(l.contains("more than the 2 MiB a RUN can be given"), "{l}");
    assert!(l.contains("dockerfile parse error on line 20"), "{l}");

    let o = build_bytes(b"FROM busybox:local\nRUN echo caf\xe9\n", &[], &[]);
    assert_fails_at(&o, 2, "invalid UTF-8: byte 0xe9 at column 13");
    let o = build_bytes(b"\xff\xfeF\0R\0O\0M\0", &[], &[]);
    assert_fails_at(&o, 1, "the Dockerfile is UTF-16");
    // What BuildKit accepts and changes nothing that is built: a Latin-1 comment.
    let o = build_bytes(
        b"# Auteur: Fr\xe9d\xe9ric\nFROM busybox:local\nRUN true\n",
        &[],
        &[],
    );
    assert!(o.status.success(), "{}", log(&o));
}

/// `FROM --platform` is read: a scratch stage is built for it, a store image must be it, a
/// stage for another platform than the host's cannot RUN (no emulation), a bad value is
/// BuildKit's error.
#[test]
fn from_platform_is_honoured_or_refused() {
    if !can_run() {
        return;
    }
    let foreign = if std::env::consts::ARCH == "s390x" {
        "linux/arm64"
    } else {
        "linux/s390x"
    };
    let root = store().join("root");
    let c = ctx(
        format!("FROM --platform={foreign} scratch\nCOPY f /f\n").as_bytes(),
        &[("f", "x")],
    );
    let tag = "semantics-foreign:1";
    let o = run_in(&root, &["build", "-t", tag, "."], c.path());
    assert!(o.status.success(), "{}", log(&o));
    let o = run_in(&root, &["inspect", tag], c.path());
    let config: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let arch = foreign.trim_start_matches("linux/");
    assert_eq!(config[0]["Architecture"], arch, "{config}");
    // The same Dockerfile for the host is another image.
    let o = build(
        "FROM scratch\nCOPY f /f\n",
        &[("f", "x")],
        &["-t", "semantics-host:1"],
    );
    assert!(o.status.success(), "{}", log(&o));
    let host = run_in(&root, &["inspect", "semantics-host:1"], c.path());
    let host: serde_json::Value = serde_json::from_slice(&host.stdout).unwrap();
    assert_ne!(host[0]["Id"], config[0]["Id"]);

    // The foreign image from the store: as its platform, without or with the flag.
    let o = build(
        &format!("FROM --platform={foreign} {tag}\nCOPY f /g\nFROM {tag}\nCOPY f /h\n"),
        &[("f", "x")],
        &[],
    );
    assert!(o.status.success(), "{}", log(&o));
    let refused = [
        (
            format!("FROM {tag}\nCOPY f /g\nRUN true\n"),
            1,
            "hush cannot run another platform's programs (no emulation)".to_string(),
        ),
        (
            format!("FROM --platform={foreign} busybox:local\nRUN true\n"),
            1,
            format!("in the store is for {}, not {foreign}", host_platform()),
        ),
        (
            "FROM --platform=linux/x/y/z busybox:local\n".to_string(),
            1,
            "failed to parse platform linux/x/y/z".to_string(),
        ),
        (
            "FROM --platform=$NOPE busybox:local\n".to_string(),
            1,
            "empty platform value from expression $NOPE".to_string(),
        ),
    ];
    for (dockerfile, line, message) in &refused {
        let o = build(dockerfile, &[("f", "x")], &[]);
        assert_fails_at(&o, *line, message);
    }
    // The usual cross-build header, on the host.
    let o = build(
        "FROM --platform=$BUILDPLATFORM busybox:local AS b\nRUN true\nFROM --platform=$TARGETPLATFORM busybox:local\nCOPY --from=b /bin/true /t\n",
        &[],
        &[],
    );
    assert!(o.status.success(), "{}", log(&o));
}

/// The host's platform as hush names it (`linux/amd64`).
fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    format!("linux/{arch}")
}
