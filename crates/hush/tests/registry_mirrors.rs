//! Mirrors of Docker Hub (docker's `registry-mirrors`, in hush's config file or
//! `--registry-mirror`): a loopback registry holding `library/busybox:latest` serves `FROM
//! busybox` and `hush pull busybox`; a mirror that is down or lacks the image is passed over;
//! when every mirror fails, Docker Hub is tried last — through `HTTPS_PROXY`, a loopback
//! listener that records the `CONNECT` and closes, so the test never reaches the internet.

mod common;
use common::log;
use common::registry::{can_run, ok, store_files, Env, Registry};

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// A loopback "proxy" that records the first line of each connection and closes it.
fn closed_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let s = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut line = String::new();
            let _ = BufReader::new(&conn).read_line(&mut line);
            s.lock().unwrap().push(line.trim().to_string());
        }
    });
    (addr, seen)
}

/// A loopback port nothing listens on.
fn down() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

#[test]
fn docker_hub_images_come_from_the_mirrors_in_order_and_docker_hub_is_tried_last() {
    if !can_run() {
        return;
    }
    let reg = Registry::start("", "");
    let mut env = Env::new();
    let d = env.dir.path().to_path_buf();
    let a = reg.addr.clone();
    let (proxy, seen) = closed_proxy();
    env.vars = vec![
        ("HTTPS_PROXY".into(), format!("http://{proxy}")),
        ("HTTP_PROXY".into(), format!("http://{proxy}")),
        ("NO_PROXY".into(), "127.0.0.1".into()),
    ];
    let id = env.id("root", "busybox:local");
    ok(&env.hush(&[
        "push",
        "busybox:local",
        &format!("{a}/library/busybox:latest"),
    ]));
    let dead = down();
    let config = |mirrors: &[&str]| {
        let list: Vec<String> = mirrors.iter().map(|m| format!("\"{m}\"")).collect();
        std::fs::write(
            d.join("hush-config.json"),
            format!(
                r#"{{"registry-mirrors": [{}], "debug": true}}"#,
                list.join(",")
            ),
        )
        .unwrap();
    };
    config(&[&format!("http://{dead}"), &format!("http://{a}")]);

    // `hush pull busybox`: the first mirror is down, the second has it; named as docker.io's.
    let o = env.hush_in("pulled", &["pull", "busybox"], b"");
    assert_eq!(ok(&o).trim(), "docker.io/library/busybox:latest");
    assert!(
        log(&o).contains(&format!("mirror http://{dead} failed")),
        "{}",
        log(&o)
    );
    assert_eq!(env.id("pulled", "docker.io/library/busybox:latest"), id);
    assert_eq!(
        env.id("pulled", "busybox"),
        id,
        "and found by its short name"
    );

    // `FROM busybox` pulls through the mirror too.
    let ctx = d.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN echo ok > /ok\n").unwrap();
    ok(&env.hush_in(
        "built",
        &["build", "--network=none", "-t", "out", "ctx"],
        b"",
    ));
    assert_eq!(env.id("built", "docker.io/library/busybox:latest"), id);
    assert!(
        seen.lock().unwrap().is_empty(),
        "Docker Hub was not needed: {seen:?}"
    );

    // Neither mirror has `alpine` (one down, one 404): Docker Hub is tried last, and the
    // error says all three; the store is as it was.
    let before = store_files(&d.join("pulled"));
    let o = env.hush_in("pulled", &["pull", "alpine:3"], b"");
    assert_eq!(o.status.code(), Some(1), "{}", log(&o));
    let l = log(&o);
    for part in [
        "failed to pull docker.io/library/alpine:3".to_string(),
        format!("the mirror http://{dead}"),
        format!("the mirror http://{a}"),
        "HTTP 404".into(),
        "then registry-1.docker.io".into(),
        "hint:".into(),
    ] {
        assert!(l.contains(&part), "{part:?} in {l}");
    }
    // Tried last, and only through the test's proxy, which closes the tunnel: once, or again
    // if hush takes the closed tunnel for a transient error (it depends on when the proxy's
    // close lands), never anywhere else.
    let tried = seen.lock().unwrap().clone();
    assert!(
        !tried.is_empty()
            && tried
                .iter()
                .all(|l| l == "CONNECT registry-1.docker.io:443 HTTP/1.1"),
        "Docker Hub tried, through the test's proxy only: {tried:?}"
    );
    assert_eq!(store_files(&d.join("pulled")), before);

    // --registry-mirror replaces the config's list; a registry that is not docker.io never
    // goes through a mirror.
    config(&[&format!("http://{dead}")]);
    let o = env.hush_in(
        "flag",
        &[
            "pull",
            "--registry-mirror",
            &format!("http://{a}"),
            "busybox",
        ],
        b"",
    );
    ok(&o);
    assert!(!log(&o).contains(&dead), "{}", log(&o));
    let o = env.hush_in(
        "flag",
        &["pull", &format!("{}/library/busybox", down())],
        b"",
    );
    assert_eq!(o.status.code(), Some(1), "{}", log(&o));
    assert!(!log(&o).contains("mirror"), "{}", log(&o));

    // A mirror that is not an URL: a usage error naming it.
    config(&["mirror.example"]);
    let o = env.hush_in("flag", &["pull", "busybox"], b"");
    assert_eq!(o.status.code(), Some(2), "{}", log(&o));
    assert!(
        log(&o).contains("invalid registry mirror \"mirror.example\""),
        "{}",
        log(&o)
    );
}
