//! A hostile registry: a loopback HTTP server that serves a blob whose bytes do not match its
//! digest, a body longer or shorter than its descriptor, an endless body, a redirect loop, and
//! a 500 before a success. Each pull fails with a clear error — or succeeds after the retry —
//! and a failed pull leaves the store as it was.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hush_oci::store::Store;
use hush_oci::Digest;
use hush_registry::{Event, ImageRef, Options, Progress};

/// What the server answers.
enum Reply {
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// 200 with no length, then bytes until the client hangs up.
    Endless,
}

fn ok(body: &[u8], ctype: &str) -> Reply {
    Reply::Full {
        status: 200,
        headers: vec![("Content-Type".into(), ctype.into())],
        body: body.to_vec(),
    }
}

fn status(code: u16) -> Reply {
    Reply::Full {
        status: code,
        headers: vec![],
        body: vec![],
    }
}

type Handler = dyn Fn(&str, usize) -> Reply + Send + Sync;

/// A server on 127.0.0.1 that answers each request with `handler(path, n)`, `n` counting the
/// requests for that path. It stops when the test process ends.
fn serve(handler: Box<Handler>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let counts: Arc<Mutex<std::collections::HashMap<String, usize>>> = Arc::default();
    let handler: Arc<Handler> = Arc::from(handler);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let (h, counts) = (handler.clone(), counts.clone());
            std::thread::spawn(move || answer(conn, &*h, &counts));
        }
    });
    addr
}

fn answer(
    mut conn: TcpStream,
    handler: &Handler,
    counts: &Mutex<std::collections::HashMap<String, usize>>,
) {
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut first = String::new();
    if reader.read_line(&mut first).is_err() {
        return;
    }
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let _ = (&mut reader).take(len as u64).read_to_end(&mut Vec::new());
    let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
    let n = {
        let mut c = counts.lock().unwrap();
        let n = c.entry(path.clone()).or_insert(0);
        *n += 1;
        *n
    };
    match handler(&path, n) {
        Reply::Full {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&body);
        }
        Reply::Endless => {
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            let chunk = [0u8; 64 << 10];
            // Bounded, so a client that never stops reading cannot keep this up forever.
            for _ in 0..16 * 1024 {
                if conn.write_all(&chunk).is_err() {
                    return;
                }
            }
        }
    }
}

/// An image with one uncompressed layer (an empty tar archive).
struct Fixture {
    layer: Vec<u8>,
    config: Vec<u8>,
}

impl Fixture {
    fn new() -> Self {
        let layer = vec![0u8; 1024];
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
            Digest::of(&layer)
        )
        .into_bytes();
        Fixture { layer, config }
    }

    /// A manifest whose layer descriptor says `layer_size`.
    fn manifest(&self, layer_size: usize) -> Vec<u8> {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}]}}"#,
            Digest::of(&self.config),
            self.config.len(),
            Digest::of(&self.layer),
            layer_size
        )
        .into_bytes()
    }

    /// The registry: `/v2/`, the manifest, the config, and the layer as `layer` answers.
    fn registry(
        self,
        layer_size: usize,
        layer: impl Fn(&[u8], usize) -> Reply + Send + Sync + 'static,
    ) -> String {
        let manifest = self.manifest(layer_size);
        let cfg_path = format!("/v2/t/blobs/{}", Digest::of(&self.config));
        let layer_path = format!("/v2/t/blobs/{}", Digest::of(&self.layer));
        serve(Box::new(move |path, n| match path {
            "/v2/" => status(200),
            "/v2/t/manifests/1" => ok(&manifest, "application/vnd.oci.image.manifest.v1+json"),
            p if p == cfg_path => ok(&self.config, "application/octet-stream"),
            p if p == layer_path => layer(&self.layer, n),
            _ => status(404),
        }))
    }
}

/// Events, kept.
#[derive(Default)]
struct Seen(Mutex<Vec<Event>>);

impl Progress for Seen {
    fn event(&self, e: Event) {
        self.0.lock().unwrap().push(e);
    }
}

fn options() -> Options {
    Options::default().retries(3, Duration::from_millis(10))
}

/// Every file under the store, but its per-process work dirs.
fn files(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
            if rel.starts_with("tmp") {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

/// Pull `addr/t:1` into a fresh store; return the result and the store's files before and after.
fn pull(
    addr: &str,
) -> (
    hush_registry::Result<hush_registry::Pulled>,
    Vec<String>,
    Vec<String>,
    Seen,
) {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let before = files(t.path());
    let seen = Seen::default();
    let r = hush_registry::pull(
        &store,
        &ImageRef::parse(&format!("{addr}/t:1")).unwrap(),
        &options(),
        &seen,
    );
    store.end_session().unwrap();
    let after = files(t.path());
    (r, before, after, seen)
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_refused_and_nothing_is_stored() {
    let f = Fixture::new();
    let n = f.layer.len();
    let addr = f.registry(n, |layer, _| {
        let mut bad = layer.to_vec();
        bad[0] = 1;
        ok(&bad, "application/octet-stream")
    });
    let (r, before, after, _) = pull(&addr);
    let e = r.unwrap_err();
    assert!(
        matches!(e, hush_registry::Error::DigestMismatch { .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("does not match its digest"), "{e}");
    assert_eq!(before, after, "the store is as it was");
}

#[test]
fn a_body_longer_or_shorter_than_its_descriptor_is_refused() {
    for (declared, served) in [(1024, 2048), (1024, 512)] {
        let f = Fixture::new();
        let addr = f.registry(declared, move |layer, _| {
            let mut body = layer.to_vec();
            body.resize(served, 0);
            ok(&body, "application/octet-stream")
        });
        let (r, before, after, _) = pull(&addr);
        let e = r.unwrap_err();
        let msg = e.to_string();
        if served > declared {
            assert!(
                matches!(e, hush_registry::Error::TooLong { size: 1024, .. }),
                "{e:?}"
            );
        } else {
            assert!(
                matches!(e, hush_registry::Error::TooShort { .. }) || msg.contains("read"),
                "{e:?}"
            );
        }
        assert_eq!(before, after, "the store is as it was");
    }
}

#[test]
fn an_endless_body_stops_at_its_declared_size() {
    let f = Fixture::new();
    let addr = f.registry(1024, |_, _| Reply::Endless);
    let (r, before, after, _) = pull(&addr);
    let e = r.unwrap_err();
    assert!(
        matches!(e, hush_registry::Error::TooLong { size: 1024, .. }),
        "{e:?}"
    );
    assert_eq!(before, after);
}

#[test]
fn a_redirect_loop_is_a_clear_error() {
    let f = Fixture::new();
    let addr = Arc::new(Mutex::new(String::new()));
    let a2 = addr.clone();
    let layer_path = format!("/v2/t/blobs/{}", Digest::of(&f.layer));
    let real = f.registry(1024, move |_, _| Reply::Full {
        status: 307,
        headers: vec![(
            "Location".into(),
            format!("http://{}{layer_path}", a2.lock().unwrap()),
        )],
        body: vec![],
    });
    *addr.lock().unwrap() = real.clone();
    let (r, before, after, _) = pull(&real);
    let e = r.unwrap_err();
    assert!(matches!(e, hush_registry::Error::Transport { .. }), "{e:?}");
    let chain = format!("{e}: {}", std::error::Error::source(&e).unwrap());
    assert!(chain.contains("redirect"), "{chain}");
    assert_eq!(before, after);
}

#[test]
fn a_500_is_tried_again_and_the_pull_succeeds() {
    let f = Fixture::new();
    let config = f.config.clone();
    let addr = f.registry(1024, |layer, n| {
        if n == 1 {
            status(500)
        } else {
            ok(layer, "application/octet-stream")
        }
    });
    let (r, _, after, seen) = pull(&addr);
    let pulled = r.unwrap();
    assert_eq!(pulled.image.config_digest, Digest::of(&config));
    assert!(after.contains(&"images.json".to_string()), "{after:?}");
    let events = seen.0.lock().unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Retrying { reason, .. } if reason.contains("500"))),
        "{events:?}"
    );
}

#[test]
fn a_manifest_that_does_not_match_the_digest_pulled_is_refused() {
    let f = Fixture::new();
    let manifest = f.manifest(1024);
    let addr = serve(Box::new(move |path, _| match path {
        "/v2/" => status(200),
        p if p.starts_with("/v2/t/manifests/sha256:") => {
            ok(&manifest, "application/vnd.oci.image.manifest.v1+json")
        }
        _ => status(404),
    }));
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let r = hush_registry::pull(
        &store,
        &ImageRef::parse(&format!("{addr}/t@sha256:{}", "0".repeat(64))).unwrap(),
        &options(),
        &(),
    );
    let e = r.unwrap_err();
    assert!(
        matches!(e, hush_registry::Error::DigestMismatch { .. }),
        "{e:?}"
    );
}
