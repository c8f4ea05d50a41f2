//! docker's token flow against a real registry: Debian's `docker-registry` with `auth: token:`
//! trusting a token server the test runs on 127.0.0.1 (`common::token`), which grants scopes by
//! a fixed policy and counts what it is asked. Anonymous pulls, pushes with the credentials of
//! `hush login`, a refused password, a scope the user lacks, one token for all the blobs of an
//! image; no token nor password in any output or store.

mod common;
use common::files_holding;
use common::log;
use common::registry::{can_run, ok, pushed_digest, Env};
use common::token::{TokenServer, USER};

#[test]
fn token_auth_pulls_anonymously_pushes_as_the_logged_in_user_and_refuses_what_the_token_lacks() {
    if !can_run() {
        return;
    }
    let env = Env::new();
    let d = env.dir.path();
    let password = "Alice-pw-77311";
    let wrong = "wrong-pw-40216";
    let ts = TokenServer::start(d, password);
    let reg = ts.registry(d);
    let a = reg.addr.as_str();
    let login = |pw: &str| {
        env.hush_in(
            "root",
            &["login", "-u", USER, "--password-stdin", a],
            format!("{pw}\n").as_bytes(),
        )
    };

    // A wrong password: the token server refuses it; said so, exit 1, nothing kept.
    let o = login(wrong);
    assert_eq!(o.status.code(), Some(1), "{}", log(&o));
    let l = log(&o);
    assert!(l.contains("refused") && l.contains(a), "{l}");
    assert!(l.contains("hush login"), "a hint: {l}");
    assert!(!d.join("docker/config.json").exists(), "nothing kept");
    assert_eq!(ts.hits().last().unwrap().status, 401);

    // The right one: kept in docker's config.
    assert!(ok(&login(password)).contains("Login Succeeded"));

    // A push with those credentials: one token, with pull and push, for all its blobs and
    // its manifest.
    let before = ts.hits().len();
    let public = format!("{a}/public/busybox:1");
    let digest = pushed_digest(&ok(&env.hush(&["push", "busybox:local", &public])));
    let hits = ts.hits()[before..].to_vec();
    assert_eq!(hits.len(), 1, "one token for the whole push: {hits:?}");
    assert_eq!(hits[0].user.as_deref(), Some(USER));
    assert!(
        hits[0]
            .scopes
            .contains(&"repository:public/busybox:pull,push".to_string()),
        "{hits:?}"
    );
    ok(&env.hush(&["push", "busybox:local", &format!("{a}/alice/busybox:1")]));

    // A repository alice may not push to: the registry refuses the token; the error names the
    // repository and says what to do.
    let o = env.hush(&["push", "busybox:local", &format!("{a}/bob/busybox:1")]);
    assert_eq!(o.status.code(), Some(1), "{}", log(&o));
    let l = log(&o);
    assert!(l.contains("bob/busybox") && l.contains("push"), "{l}");
    assert!(l.contains("hint:") && l.contains("hush login"), "{l}");

    // Logged out: anonymous. A public repository pulls, with one anonymous token for the
    // manifest, the config and the layer.
    ok(&env.hush(&["logout", a]));
    let before = ts.hits().len();
    let o = env.hush_in("anon", &["pull", &public], b"");
    assert_eq!(ok(&o).trim(), public);
    assert!(log(&o).contains(&digest), "{}", log(&o));
    let hits = ts.hits()[before..].to_vec();
    assert_eq!(hits.len(), 1, "one token for the whole pull: {hits:?}");
    assert_eq!(hits[0].user, None, "anonymous");
    assert_eq!(hits[0].scopes, ["repository:public/busybox:pull"]);
    assert_eq!(env.id("anon", &public), env.id("root", "busybox:local"));
    // A private one: refused, and the hint says to log in.
    let o = env.hush_in("anon", &["pull", &format!("{a}/alice/busybox:1")], b"");
    assert_eq!(o.status.code(), Some(1), "{}", log(&o));
    let l = log(&o);
    assert!(
        l.contains("alice/busybox") && l.contains(&format!("hush login {a}")),
        "{l}"
    );

    // No password nor token in any output, nor in a store; no token in docker's config.
    let tokens = ts.tokens.lock().unwrap().clone();
    assert!(tokens.len() >= 4, "{tokens:?}");
    let mut secrets: Vec<&str> = vec![password, wrong];
    secrets.extend(tokens.iter().map(String::as_str));
    for secret in secrets {
        // A JWT's signature is its last part: enough to use it.
        let secret = secret.rsplit('.').next().unwrap();
        for out in env.outputs.borrow().iter() {
            assert!(!out.contains(secret), "a credential in the output: {out}");
        }
        let found = [env.root(), d.join("anon"), d.join("docker")]
            .iter()
            .flat_map(|r| files_holding(r, secret.as_bytes()))
            .collect::<Vec<_>>();
        assert!(found.is_empty(), "a credential in {found:?}");
    }
}

/// `hush login` as `docker login` takes credentials: asked for on a terminal (the password not
/// echoed), `-u` with the password asked for, `-p` with a warning, `--password-stdin`; and
/// without a terminal, a usage error that says how.
#[test]
fn login_asks_on_a_terminal_and_says_how_without_one() {
    if !can_run() || !common::have("script") {
        common::skip("needs script (util-linux)");
        return;
    }
    let env = Env::new();
    let d = env.dir.path();
    let password = "Prompted-pw-90417";
    let ts = TokenServer::start(d, password);
    let reg = ts.registry(d);
    let a = reg.addr.as_str();
    let config = d.join("docker/config.json");

    // On a terminal (util-linux's script gives hush a pty): each answer is typed after its
    // question is shown, so an echoed password would be in what the terminal shows.
    let on_tty = |login: &str, answers: &[&str]| {
        let typed: String = answers
            .iter()
            .map(|a| format!("sleep 2; printf '%s\\n' '{a}'; "))
            .collect();
        let o = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "({typed} sleep 5) | script -qec '{} login {login}' /dev/null",
                common::hush().display()
            ))
            .env("HUSH_ROOT", env.root())
            .env("DOCKER_CONFIG", d.join("docker"))
            .env("HUSH_CONFIG", d.join("hush-config.json"))
            .output()
            .unwrap();
        env.outputs.borrow_mut().push(log(&o));
        o
    };
    let o = on_tty(a, &[USER, password]);
    let shown = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", log(&o));
    assert!(
        shown.contains("Username:") && shown.contains("Password:"),
        "{shown}"
    );
    assert!(shown.contains(USER), "the user name is echoed: {shown}");
    assert!(!shown.contains(password), "the password is not: {shown}");
    assert!(shown.contains("Login Succeeded"), "{shown}");
    assert!(std::fs::read_to_string(&config).unwrap().contains(a));
    ok(&env.hush(&["logout", a]));

    // -u given: only the password is asked for.
    let o = on_tty(&format!("-u {USER} {a}"), &[password]);
    let shown = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", log(&o));
    assert!(
        !shown.contains("Username:") && shown.contains("Password:"),
        "{shown}"
    );
    assert!(!shown.contains(password), "{shown}");

    // -p: works, with docker's warning.
    let o = env.hush(&["login", "-u", USER, "-p", password, a]);
    assert!(ok(&o).contains("Login Succeeded"));
    assert!(
        log(&o).contains("Using --password via the CLI is insecure"),
        "{}",
        log(&o)
    );

    // No terminal, nothing given: a usage error that says what to pass; nothing is asked.
    for args in [vec!["login", a], vec!["login", "-u", USER, a]] {
        let o = env.hush(&args);
        assert_eq!(o.status.code(), Some(2), "{}", log(&o));
        let l = log(&o);
        assert!(
            l.contains("not a terminal") && l.contains("--password-stdin"),
            "{l}"
        );
        assert!(!l.contains("Password:"), "{l}");
    }
    // --password-stdin without a user name; with -p too.
    let o = env.hush_in(
        "root",
        &["login", "--password-stdin", a],
        password.as_bytes(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", log(&o));
    assert!(log(&o).contains("--username"), "{}", log(&o));
    let o = env.hush(&["login", "-u", USER, "-p", "x", "--password-stdin", a]);
    assert_eq!(o.status.code(), Some(2), "{}", log(&o));
}
