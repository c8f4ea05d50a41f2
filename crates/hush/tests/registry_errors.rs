//! Bad input to `pull`, `push`, `build` and `login`, as a table: a reference that does not
//! parse (exit 2), an unknown host, a refused connection, 401, 403, a missing repository or
//! tag, an untrusted certificate (exit 1). Each message says what and where and gives a hint;
//! none holds the credentials; the store (and docker's config) are as they were. Every server
//! is on loopback; the unknown host is looked up in a network namespace of its own, so the
//! lookup leaves nothing.

mod common;
use common::log;
use common::registry::{can_run, ok, store_files, tls_and_users, tls_registry, Env, Registry};

use base64::Engine;

/// A loopback server answering every request with `status` (and `/v2/` with 200 unless
/// `challenge_all`), as a registry refusing access does. It speaks plain HTTP and, as a real
/// plain-HTTP server does, turns away a TLS hello at once (tiny_http alone would wait for a
/// request line until hush's 30 s connect timeout).
fn refusing(status: u16, challenge_all: bool) -> String {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let inner = server.server_addr().to_ip().unwrap();
    let front = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = front.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in front.incoming().flatten() {
            let mut first = [0u8; 1];
            // 0x16: a TLS handshake record.
            if conn.peek(&mut first).is_err() || first[0] == 0x16 {
                continue;
            }
            let Ok(back) = std::net::TcpStream::connect(inner) else {
                continue;
            };
            let (mut c1, mut b1) = (conn.try_clone().unwrap(), back.try_clone().unwrap());
            let (mut c2, mut b2) = (conn, back);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c1, &mut b1);
                let _ = b1.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut b2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    std::thread::spawn(move || {
        for req in server.incoming_requests() {
            let (code, body) = if req.url() == "/v2/" && !challenge_all {
                (200, "{}".to_string())
            } else if status == 401 {
                (
                    401,
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#
                        .into(),
                )
            } else {
                (status, r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#.into())
            };
            let mut resp = tiny_http::Response::from_string(body).with_status_code(code);
            if code == 401 {
                resp.add_header(
                    "WWW-Authenticate: Basic realm=\"hush-test\""
                        .parse::<tiny_http::Header>()
                        .unwrap(),
                );
            }
            let _ = req.respond(resp);
        }
    });
    addr
}

#[derive(Clone, Copy, Debug)]
enum Cmd {
    Pull,
    Push,
    Build,
    Login,
}

/// A row of the table: what is wrong | reference | commands | exit | what the message holds.
type Row = (&'static str, String, Vec<Cmd>, i32, Vec<String>);

#[test]
fn bad_input_to_the_registry_commands_says_what_where_and_what_to_do_and_changes_nothing() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    let d = env.dir.path().to_path_buf();
    let password = "Sekr1t-table-pw";
    tls_and_users(&d, password);
    let tls = tls_registry(&d);
    let plain = Registry::start("", "");
    let p = plain.addr.as_str();
    ok(&env.hush(&["push", "busybox:local", &format!("{p}/there/busybox:1")]));
    let unauthorized = refusing(401, true);
    let forbidden = refusing(403, false);
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let unknown = "hush-nowhere.invalid:5000";
    let netns = std::process::Command::new("unshare")
        .args(["-n", "true"])
        .status()
        .is_ok_and(|s| s.success());
    // Credentials for the server that refuses them: they must never show.
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("alice:{password}"));
    std::fs::create_dir_all(d.join("docker")).unwrap();
    let docker_config = format!(r#"{{"auths":{{"{unauthorized}":{{"auth":"{auth}"}}}}}}"#);
    std::fs::write(d.join("docker/config.json"), &docker_config).unwrap();
    env.vars.push(("NO_PROXY".into(), "*".into()));

    let not_found = "check the repository's name and that the tag exists";
    let unreachable = "check that";
    let tls_hint = "--registry-ca";
    let table: Vec<Row> = vec![
        (
            "bad reference",
            "MyApp:Latest".into(),
            vec![Cmd::Pull, Cmd::Push, Cmd::Build],
            2,
            vec![
                "\"MyApp:Latest\"".into(),
                "must be lowercase".into(),
                "hint:".into(),
            ],
        ),
        (
            "unknown host",
            format!("{unknown}/app:1"),
            vec![Cmd::Pull, Cmd::Push, Cmd::Build, Cmd::Login],
            1,
            vec![format!("failed to reach {unknown}"), unreachable.into()],
        ),
        (
            "refused",
            format!("{refused}/app:1"),
            vec![Cmd::Pull, Cmd::Push, Cmd::Build, Cmd::Login],
            1,
            vec![
                format!("failed to reach {refused}"),
                "refused".into(),
                unreachable.into(),
            ],
        ),
        (
            "401",
            format!("{unauthorized}/app:1"),
            vec![Cmd::Pull, Cmd::Push, Cmd::Build, Cmd::Login],
            1,
            vec![
                format!("{unauthorized} refused access"),
                "HTTP 401".into(),
                format!("hush login {unauthorized}"),
            ],
        ),
        (
            "403",
            format!("{forbidden}/app:1"),
            vec![Cmd::Pull, Cmd::Push, Cmd::Build],
            1,
            vec![
                format!("{forbidden} refused access to /v2/app/"),
                "HTTP 403".into(),
                format!("hush login {forbidden}"),
            ],
        ),
        (
            "404 repository",
            format!("{p}/nothere/app:1"),
            vec![Cmd::Pull, Cmd::Build],
            1,
            vec![
                format!("{p} answered HTTP 404"),
                "/v2/nothere/app/manifests/1".into(),
                not_found.into(),
            ],
        ),
        (
            "404 tag",
            format!("{p}/there/busybox:nope"),
            vec![Cmd::Pull, Cmd::Build],
            1,
            vec![
                "HTTP 404".into(),
                "/v2/there/busybox/manifests/nope".into(),
                "MANIFEST_UNKNOWN".into(),
                not_found.into(),
            ],
        ),
        (
            "untrusted certificate",
            format!("{}/app:1", tls.addr),
            vec![Cmd::Pull, Cmd::Push, Cmd::Build, Cmd::Login],
            1,
            vec![
                format!("failed to reach {}", tls.addr),
                "certificate".into(),
                tls_hint.into(),
                "--insecure-registry".into(),
            ],
        ),
    ];
    let mut n = 0;
    for (case, reference, cmds, code, needles) in &table {
        if *case == "unknown host" && !netns {
            common::skip("unshare -n does not work here: no unknown-host case");
            continue;
        }
        let wrapper: &[&str] = if *case == "unknown host" {
            &["unshare", "-n"]
        } else {
            &[]
        };
        for cmd in cmds {
            n += 1;
            let before = store_files(&env.root());
            let host = reference.split('/').next().unwrap();
            let ctx = format!("ctx{n}");
            let o = match cmd {
                Cmd::Pull => env.run_wrapped(wrapper, "root", &["pull", reference], b""),
                Cmd::Push => {
                    env.run_wrapped(wrapper, "root", &["push", "busybox:local", reference], b"")
                }
                Cmd::Build => {
                    std::fs::create_dir_all(d.join(&ctx)).unwrap();
                    let (from, tag) = if *code == 2 {
                        ("busybox:local", reference.as_str())
                    } else {
                        (reference.as_str(), "out:1")
                    };
                    std::fs::write(
                        d.join(&ctx).join("Dockerfile"),
                        format!("FROM {from}\nRUN true\n"),
                    )
                    .unwrap();
                    env.run_wrapped(
                        wrapper,
                        "root",
                        &["build", "--network=none", "-t", tag, &ctx],
                        b"",
                    )
                }
                Cmd::Login => env.run_wrapped(
                    wrapper,
                    "root",
                    &["login", "-u", "alice", "--password-stdin", host],
                    format!("{password}-wrong\n").as_bytes(),
                ),
            };
            let l = log(&o);
            let what = format!("{case}, {cmd:?}");
            assert_eq!(o.status.code(), Some(*code), "{what}: {l}");
            for needle in needles {
                assert!(l.contains(needle.as_str()), "{what}: {needle:?} in {l}");
            }
            if *code == 1 {
                assert!(l.contains("hint:"), "{what}: a hint in {l}");
            }
            for secret in [password, auth.as_str()] {
                assert!(!l.contains(secret), "{what}: a credential in {l}");
            }
            assert_eq!(
                store_files(&env.root()),
                before,
                "{what}: the store changed"
            );
            assert_eq!(
                std::fs::read_to_string(d.join("docker/config.json")).unwrap(),
                docker_config,
                "{what}: docker's config changed"
            );
        }
    }
    // A login to something that is not a registry's name: a usage error.
    let o = env.hush_in(
        "root",
        &["login", "-u", "alice", "--password-stdin", "bad host!"],
        b"pw\n",
    );
    assert_eq!(o.status.code(), Some(2), "{}", log(&o));
    assert!(log(&o).contains("bad host!"), "{}", log(&o));
}
