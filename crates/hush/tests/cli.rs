//! The command line as docker users read it: a closed pipe ends any command quietly; sizes,
//! ages and ids as `docker history` / `docker image inspect` give them; errors and hints that
//! name the stage meant, or say what the failed command printed; `--debug` logs.
//! Needs root and busybox-static; skipped otherwise.

mod common;
use common::{busybox_tar, can_run, log, run_in};

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// One store with busybox:local and `sized` (a layer of 12345 bytes of content) for all tests.
fn store() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hush-cli-store");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("ctx")).unwrap();
        busybox_tar(&dir.join("busybox.tar"));
        let root = dir.join("root");
        let o = run_in(&root, &["import", "busybox.tar", "busybox:local"], &dir);
        assert!(o.status.success(), "{}", log(&o));
        std::fs::write(
            dir.join("ctx/Dockerfile"),
            "FROM busybox:local\nRUN head -c 12345 /dev/zero > /f\n",
        )
        .unwrap();
        let o = run_in(&root, &["build", "-q", "-t", "sized", "ctx"], &dir);
        assert!(o.status.success(), "{}", log(&o));
        dir
    })
}

fn hush(args: &[&str]) -> Output {
    run_in(&store().join("root"), args, store())
}

/// A build of `dockerfile` in a context of its own.
fn build(dockerfile: &str, args: &[&str]) -> Output {
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile).unwrap();
    let mut all = vec!["build", "--progress=plain"];
    all.extend_from_slice(args);
    all.push(ctx.path().to_str().unwrap());
    hush(&all)
}

/// `hush images | head -1` and the like: the reader is gone before hush writes. Every command
/// ends quietly (no panic, no error) with the status of a program killed by SIGPIPE, as
/// docker's CLI does.
#[test]
fn every_command_exits_quietly_on_a_closed_stdout() {
    if !can_run(&["busybox"]) {
        return;
    }
    let ctx = store().join("ctx");
    for args in [
        vec!["images"],
        vec!["inspect", "sized"],
        vec!["history", "sized"],
        vec!["history", "--format", "json", "sized"],
        vec!["features"],
        vec!["audit", "sized"],
        vec!["build", "-q", ctx.to_str().unwrap()],
    ] {
        // A pipe without a reader from the start: the first write fails, whatever the timing.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = Command::new(common::hush())
            .env("HUSH_ROOT", store().join("root"))
            .current_dir(store())
            .args(&args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(141), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("error"),
            "{args:?}: {err}"
        );
    }
}

/// Sizes are what layers hold (12345 bytes: `12.3kB`), not their tars; ages are docker's
/// words; `--no-trunc` shows the whole id.
#[test]
fn history_and_inspect_show_what_docker_shows() {
    if !can_run(&["busybox"]) {
        return;
    }
    let size = |image: &str| {
        let o = hush(&["inspect", image]);
        assert!(o.status.success(), "{}", log(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v[0]["Size"].as_u64().unwrap()
    };
    assert_eq!(size("sized") - size("busybox:local"), 12345);

    let o = hush(&["history", "sized"]);
    let out = String::from_utf8_lossy(&o.stdout);
    let run = out.lines().find(|l| l.contains("head -c 12345")).unwrap();
    assert!(run.contains(" 12.3kB "), "{out}");
    assert!(
        [
            "seconds ago",
            "Less than a second ago",
            "1 second ago",
            "About a minute ago"
        ]
        .iter()
        .any(|w| run.contains(w)),
        "{out}"
    );
    let id = serde_json::from_slice::<serde_json::Value>(&hush(&["inspect", "sized"]).stdout)
        .unwrap()[0]["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let long = hush(&["history", "--no-trunc", "sized"]);
    let first = String::from_utf8_lossy(&long.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    assert!(first.starts_with(&format!("{id} ")), "{first}");
    let short = String::from_utf8_lossy(&hush(&["history", "sized"]).stdout).to_string();
    assert!(!short.contains(&id), "{short}");

    let json = hush(&["history", "--format", "json", "sized"]);
    let row: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&json.stdout)
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(row["Size"], "12.3kB");
    assert!(row["CreatedSince"].as_str().unwrap().ends_with(" ago"));
}

/// `--from` and FROM naming a stage with a typo: the stage meant, before any step runs.
#[test]
fn a_misspelled_stage_is_suggested_before_anything_runs() {
    if !can_run(&["busybox"]) {
        return;
    }
    for df in [
        "FROM busybox:local AS builder\nRUN echo built > /x\n\
         FROM busybox:local\nRUN echo ran-before\nCOPY --from=bulder /x /x\n",
        "FROM busybox:local AS builder\nRUN echo built > /x\n\
         FROM busybox:local\nRUN echo ran-before\nRUN --mount=from=bulder,target=/b cat /b/x\n",
        "FROM busybox:local AS builder\nRUN echo ran-before\nFROM bulder\n",
    ] {
        let o = build(df, &["--no-cache"]);
        let l = log(&o);
        assert!(!o.status.success(), "{l}");
        assert!(
            l.contains("image \"bulder\" not found in hush's store, and no stage is named so"),
            "{l}"
        );
        assert!(l.contains("did you mean the stage \"builder\"?"), "{l}");
        assert!(!l.contains("ran-before"), "a step ran first: {l}");
    }
}

/// A file missing from a stage is looked for in that stage, not in the build context.
#[test]
fn a_file_missing_from_a_stage_is_not_blamed_on_the_context() {
    if !can_run(&["busybox"]) {
        return;
    }
    let o = build(
        "FROM busybox:local AS builder\nRUN true\nFROM busybox:local\nCOPY --from=builder /nope /x\n",
        &[],
    );
    let l = log(&o);
    assert!(!o.status.success(), "{l}");
    assert!(l.contains("\"/nope\": not found"), "{l}");
    assert!(
        l.contains("exists in the stage or image that --from names"),
        "{l}"
    );
    assert!(!l.contains("exists in the build context"), "{l}");
}

/// A user the image does not know: the error says which lookup failed (the RUN's USER, a
/// COPY's --chown) at its line, and docker's words follow as its cause.
#[test]
fn an_unknown_user_names_the_lookup_and_keeps_dockers_words() {
    if !can_run(&["busybox"]) {
        return;
    }
    let l = log(&build(
        "FROM busybox:local\nUSER nobody-here\nRUN true\n",
        &["--no-cache"],
    ));
    assert!(
        l.contains("error: failed to resolve the user \"nobody-here\" to run as"),
        "{l}"
    );
    assert!(
        l.contains(
            "caused by: unable to find user nobody-here: no matching entries in passwd file"
        ),
        "{l}"
    );
    assert!(l.contains("Dockerfile:3"), "{l}");
    let l = log(&build(
        "FROM busybox:local\nCOPY --chown=0:no-group Dockerfile /d\n",
        &["--no-cache"],
    ));
    assert!(
        l.contains("error: failed to resolve --chown=0:no-group"),
        "{l}"
    );
    assert!(
        l.contains("caused by: unable to find group no-group: no matching entries in group file"),
        "{l}"
    );
    assert!(l.contains("Dockerfile:2"), "{l}");
}

/// "The lines above" only when there are lines above.
#[test]
fn a_failed_run_hint_says_whether_it_printed() {
    if !can_run(&["busybox"]) {
        return;
    }
    let silent = log(&build("FROM busybox:local\nRUN exit 3\n", &["--no-cache"]));
    assert!(silent.contains("exit code: 3"), "{silent}");
    assert!(!silent.contains("the lines above"), "{silent}");
    assert!(silent.contains("the command printed nothing"), "{silent}");
    let loud = log(&build(
        "FROM busybox:local\nRUN echo why; exit 3\n",
        &["--no-cache"],
    ));
    assert!(
        loud.contains("the lines above are the end of the command's output"),
        "{loud}"
    );
}

/// `--debug` shows each step's cache key and why it hit or missed; a secret's value is in no
/// log, hush's or the container runtime's (whose lines are the step's output, masked).
#[test]
fn debug_logs_cache_decisions_and_never_a_secret() {
    if !can_run(&["busybox"]) {
        return;
    }
    let value = "debug-log-secret-value-8812";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.txt"), value).unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM busybox:local\nRUN --mount=type=secret,id=s,env=S test -n \"$S\"\n",
    )
    .unwrap();
    let secret = format!(
        "id=s,src={},cache=content",
        dir.path().join("s.txt").display()
    );
    let args = [
        "--debug",
        "build",
        "--progress=plain",
        "--secret",
        &secret,
        dir.path().to_str().unwrap(),
    ];
    let first = log(&hush(&args));
    assert!(first.contains("cache key"), "{first}");
    assert!(first.contains("secret (cache=content)="), "{first}");
    assert!(
        first.contains("cache miss") || first.contains("cache not used"),
        "{first}"
    );
    assert!(
        first.contains("libcontainer"),
        "the runtime's logs: {first}"
    );
    let again = log(&hush(&args));
    assert!(again.contains("cache hit"), "{again}");
    // A build arg holding the secret's value, written as is in the history (`all`): the step
    // that the cache-key line names is masked too.
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM busybox:local\nARG T\nRUN --mount=type=secret,id=s,env=S test -n \"$S$T\"\n",
    )
    .unwrap();
    let arg = format!("T={value}");
    let with_arg = log(&hush(&[
        "--debug",
        "build",
        "--progress=plain",
        "--history-build-args=all",
        "--build-arg",
        &arg,
        "--secret",
        &secret,
        dir.path().to_str().unwrap(),
    ]));
    assert!(with_arg.contains("cache key"), "{with_arg}");
    for l in [&first, &again, &with_arg] {
        assert!(!l.contains(value), "the secret is in a log: {l}");
    }
}

/// Options with a closed set of values refuse any other before anything runs (a usage error,
/// exit 2), naming the values they take; no root needed.
#[test]
fn closed_set_options_refuse_other_values() {
    let dir = tempfile::tempdir().unwrap();
    for (args, valid) in [
        (vec!["build", "--progress=fancy", "."], "rawjson"),
        (vec!["build", "--allow=network.hots", "."], "network.host"),
        (
            vec!["build", "--leak-check=maybe", "."],
            "error, warn or off",
        ),
        (vec!["history", "--format=yaml", "x"], "json"),
        (vec!["audit", "--format=xml", "x"], "sarif"),
        (vec!["audit", "--preview=all", "x"], "prefix"),
        (vec!["lint", "--format=html"], "sarif"),
    ] {
        let o = run_in(&dir.path().join("root"), &args, dir.path());
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", log(&o));
        assert!(log(&o).contains(valid), "{args:?}: {}", log(&o));
    }
}

/// A test that cannot meet a precondition says SKIP, and fails under CI (`CI=true`): this test
/// runs itself with a precondition that is never met, outside CI and in it.
#[test]
fn an_unmet_precondition_skips_but_fails_under_ci() {
    if std::env::var_os("HUSH_TEST_UNMET").is_some() {
        common::skip("a precondition this run never meets");
        return;
    }
    let run = |ci: &str| {
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "an_unmet_precondition_skips_but_fails_under_ci",
                "--nocapture",
            ])
            .env("HUSH_TEST_UNMET", "1")
            .env("CI", ci)
            .output()
            .unwrap()
    };
    let local = run("false");
    assert!(local.status.success(), "{}", log(&local));
    assert!(log(&local).contains("SKIP: a precondition this run never meets"));
    let ci = run("true");
    assert!(!ci.status.success(), "{}", log(&ci));
    assert!(
        log(&ci).contains("CI=true, and this test cannot run: a precondition this run never meets"),
        "{}",
        log(&ci)
    );
}
