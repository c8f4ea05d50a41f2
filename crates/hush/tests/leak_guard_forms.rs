//! The leak guard's blind spots of issue 11, each on a real build: base64 wrapped at 76 or 64
//! columns (LF or CRLF), a secret used as a file name, directory name or symlink target, a
//! gzip of the secret; and what a build shows: RUN output (base64, hex, a line over 64 KiB),
//! step titles and `--progress=rawjson` events, with every secret form masked. Every output of
//! every build is searched for the secret's bytes and encodings. Needs root and busybox-static.

mod common;

use std::path::PathBuf;
use std::process::Output;

use base64::Engine;

/// 60 bytes of JSON whose fields are each too short to guard on their own (under 8 bytes):
/// only the whole value is a needle, and its base64 (80 characters) never fits one 76-column line.
const SECRET: &str = r#"{"k1":"v1v1v1v","k2":"v2v2v2v","k3":"v3v3v3v","k4":"v4v4v4"}"#;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Option<Env> {
        if !common::can_run(&["busybox"]) {
            return None;
        }
        assert_eq!(SECRET.len(), 60);
        let e = Env {
            dir: common::busybox_store("hush-forms-"),
        };
        std::fs::write(e.path("s.json"), SECRET).unwrap();
        std::fs::create_dir(e.path("ctx")).unwrap();
        Some(e)
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn hush(&self, args: &[&str]) -> Output {
        common::run_in(&self.dir.path().join("root"), args, self.dir.path())
    }

    /// Build `dockerfile` with the secret as `s`; exit code and everything printed, which is
    /// checked to hold the secret in no form.
    fn build(&self, dockerfile: &str, progress: &str, extra: &[&str]) -> (Option<i32>, String) {
        let df = self.path("Dockerfile");
        std::fs::write(&df, dockerfile).unwrap();
        let progress = format!("--progress={progress}");
        let mut args = vec![
            "build",
            &progress,
            "-f",
            df.to_str().unwrap(),
            "--secret",
            "id=s,src=s.json",
        ];
        args.extend_from_slice(extra);
        args.push("ctx");
        let o = self.hush(&args);
        let log = common::log(&o);
        assert_hidden(&log);
        (o.status.code(), log)
    }
}

/// The secret's bytes, its base64 (each alignment's characters that only it determines, looked
/// for with line ends removed too), hex in both cases, and its JSON-escaped form.
fn assert_hidden(out: &str) {
    let joined: String = out.split(['\n', '\r']).collect();
    let mut forms = vec![
        SECRET.to_string(),
        hex::encode(SECRET),
        hex::encode_upper(SECRET),
        serde_json::to_string(SECRET)
            .unwrap()
            .trim_matches('"')
            .to_string(),
    ];
    for align in 0..3 {
        let enc = base64::engine::general_purpose::STANDARD
            .encode(format!("{}{SECRET}", "x".repeat(align)));
        forms.push(enc[(8 * align).div_ceil(6)..8 * (align + SECRET.len()) / 6].to_string());
    }
    for f in forms {
        // Any 24 characters of a form would give it away.
        for start in (0..f.len().saturating_sub(24)).step_by(8) {
            let piece = &f[start..start + 24];
            assert!(
                !out.contains(piece) && !joined.contains(piece),
                "the output shows {piece:?}:\n{out}"
            );
        }
    }
}

fn refused(e: &Env, run: &str, want: &[&str]) {
    let df = format!("FROM busybox:local\nRUN --mount=type=secret,id=s {run}\n");
    let (code, log) = e.build(&df, "plain", &[]);
    assert_eq!(code, Some(3), "{run}: {log}");
    assert!(log.contains("secret leaked into layer"), "{run}: {log}");
    assert!(log.contains("Dockerfile:2"), "{run}: {log}");
    for w in want {
        assert!(log.contains(w), "{run}: no {w:?} in {log}");
    }
}

/// `base64` wraps at 76 columns by default (busybox and coreutils); PEM and `openssl base64` at
/// 64; `xxd -p` wraps hex at 60; any may end lines with CRLF. All passed the guard before.
#[test]
fn wrapped_base64_of_a_secret_is_refused() {
    let Some(e) = Env::new() else { return };
    refused(
        &e,
        "base64 /run/secrets/s > /b64",
        &["/b64", "base64, wrapped at 76 columns"],
    );
    refused(
        &e,
        "base64 -w 64 /run/secrets/s > /pem",
        &["/pem", "wrapped at 64 columns"],
    );
    refused(
        &e,
        "(echo start; base64 /run/secrets/s) | awk '{printf \"%s\\r\\n\", $0}' > /crlf",
        &["/crlf", "wrapped at 76 columns"],
    );
    // `xxd -p` wraps hex at 60 columns.
    refused(
        &e,
        "xxd -p /run/secrets/s > /hex",
        &["/hex", "hex, wrapped at 60 columns"],
    );
    // In the middle of a larger base64 stream, at another alignment.
    refused(
        &e,
        "(echo 12345; cat /run/secrets/s; echo tail) | base64 > /mid",
        &["/mid", "wrapped at 76 columns"],
    );
}

/// The bytes of a name or a link target are in the layer's tar headers.
#[test]
fn a_secret_as_file_name_directory_name_or_link_target_is_refused() {
    let Some(e) = Env::new() else { return };
    let secret = "hunter2-correct-horse-battery";
    std::fs::write(e.path("t"), secret).unwrap();
    for (run, want) in [
        (
            r#"mkdir -p /d && touch "/d/$(cat /run/secrets/t)""#,
            "/d/**** (file name)",
        ),
        (r#"mkdir "/$(cat /run/secrets/t)""#, "/****/ (file name)"),
        (
            r#"ln -s "/x/$(cat /run/secrets/t)" /lnk"#,
            "/lnk (link target)",
        ),
    ] {
        let df = format!("FROM busybox:local\nRUN --mount=type=secret,id=t {run}\n");
        std::fs::write(e.path("Dockerfile"), df).unwrap();
        let o = e.hush(&[
            "build",
            "--progress=plain",
            "-f",
            "Dockerfile",
            "--secret",
            "id=t,src=t",
            "ctx",
        ]);
        let log = common::log(&o);
        assert_eq!(o.status.code(), Some(3), "{run}: {log}");
        assert!(log.contains(want), "{run}: no {want:?} in {log}");
        assert!(!log.contains(secret), "{log}");
    }
    // `hush audit --secret` reports it in an image built with --leak-check=warn.
    std::fs::write(
        e.path("Dockerfile"),
        "FROM busybox:local\nRUN --mount=type=secret,id=t ln -s \"/x/$(cat /run/secrets/t)\" /lnk\n",
    )
    .unwrap();
    let o = e.hush(&[
        "build",
        "-q",
        "--leak-check=warn",
        "-f",
        "Dockerfile",
        "--secret",
        "id=t,src=t",
        "-t",
        "named",
        "ctx",
    ]);
    assert!(o.status.success(), "{}", common::log(&o));
    let o = e.hush(&[
        "audit",
        "--format",
        "json",
        "--secret",
        "id=t,src=t",
        "named",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", common::log(&o));
    let findings: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        findings
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["location"] == "/lnk (link target)" && f["rule"] == "secret:t (raw)"),
        "{findings}"
    );
    assert!(!common::log(&o).contains(secret));
}

/// `tar czf backup.tgz /run/secrets`: the secret is only in the gzip stream.
#[test]
fn a_compressed_copy_of_the_secret_is_refused() {
    let Some(e) = Env::new() else { return };
    refused(
        &e,
        "tar czf /backup.tgz /run/secrets",
        &["/backup.tgz (gzip)"],
    );
    refused(&e, "gzip -c /run/secrets/s > /s.gz", &["/s.gz (gzip)"]);
}

/// What a RUN prints is masked in every form, across a line longer than 64 KiB, and the build
/// still succeeds (nothing was written).
#[test]
fn run_output_shows_no_form_of_the_secret() {
    let Some(e) = Env::new() else { return };
    // The secret straddles the 64 KiB point of one 140 KB line of minified output.
    let run = "base64 /run/secrets/s; base64 -w 64 /run/secrets/s; xxd -p /run/secrets/s; \
               od -An -tx1 /run/secrets/s | tr -d ' \\n'; echo; \
               head -c 65520 /dev/zero | tr '\\0' a; cat /run/secrets/s; \
               head -c 70000 /dev/zero | tr '\\0' b; echo";
    let df = format!("FROM busybox:local\nRUN --mount=type=secret,id=s {run}\n");
    for progress in ["plain", "rawjson"] {
        let (code, log) = e.build(&df, progress, &["--no-cache"]);
        assert_eq!(code, Some(0), "{log}");
        // base64 (2 widths), xxd, od, the long line
        assert!(log.matches("****").count() >= 5, "{log}");
        assert!(
            log.contains(&format!("{}****{}", "a".repeat(100), "b".repeat(100))),
            "the long line is masked in place"
        );
    }
}

/// A `--build-arg` equal to the secret shows in the step title (`RUN |1 T=…`) and in the
/// rawjson `start` event: masked in both. With `--history-build-args=all` the build then fails
/// (the value is in the history); by default the history holds `T=<redacted>`.
#[test]
fn a_build_arg_equal_to_the_secret_is_masked_in_titles() {
    let Some(e) = Env::new() else { return };
    let df = "FROM busybox:local\nARG T\nRUN --mount=type=secret,id=s echo \"${#T}\"\n";
    let arg = format!("T={SECRET}");
    for progress in ["plain", "rawjson"] {
        let (code, log) = e.build(
            df,
            progress,
            &["--build-arg", &arg, "--history-build-args=all"],
        );
        assert_eq!(code, Some(3), "{log}");
        let title = if progress == "plain" {
            "RUN |1 T=**** /bin/sh -c"
        } else {
            "\"name\":\"RUN |1 T=**** /bin/sh -c"
        };
        assert!(log.contains(title), "{log}");
    }
}

/// Errors show no secret either: a build arg equal to a secret, expanded into a COPY source
/// that does not exist, is masked in the message and the hint as it is in the title.
#[test]
fn an_error_holding_a_secret_is_masked() {
    let Some(e) = Env::new() else { return };
    let secret = "hunter2-correct-horse-battery";
    std::fs::write(e.path("t"), secret).unwrap();
    std::fs::write(
        e.path("Dockerfile"),
        "FROM busybox:local\nARG T\nCOPY $T /x\n",
    )
    .unwrap();
    let arg = format!("T={secret}");
    let o = e.hush(&[
        "build",
        "--progress=plain",
        "-f",
        "Dockerfile",
        "--build-arg",
        &arg,
        "--secret",
        "id=t,src=t",
        "ctx",
    ]);
    let log = common::log(&o);
    assert_eq!(o.status.code(), Some(1), "{log}");
    assert!(log.contains("COPY **** /x"), "{log}");
    assert!(log.contains("\"/****\": not found"), "{log}");
    assert!(!log.contains(secret), "{log}");
}
