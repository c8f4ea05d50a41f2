//! A small HTTP/1.1 file server on 127.0.0.1 for `ADD https://…` tests: files with
//! `Last-Modified` and an `ETag` (answering `If-None-Match` with 304), a 404, redirects (one and
//! a loop), an endless body, and a file behind basic auth. It counts what it served.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// One file the server serves.
#[derive(Clone)]
pub struct File {
    pub body: Vec<u8>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// `user:password` that basic auth must give.
    pub auth: Option<String>,
}

/// What the server has and what it saw.
#[derive(Default)]
pub struct State {
    pub files: BTreeMap<String, File>,
    /// Paths whose body was sent (200), in order.
    pub served: Vec<String>,
    /// Paths answered 304.
    pub not_modified: Vec<String>,
    /// Every request's `Authorization` header (to see what was sent where).
    pub auth_seen: Vec<Option<String>>,
}

pub struct Server {
    pub port: u16,
    pub state: Arc<Mutex<State>>,
}

impl Server {
    pub fn start() -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let state: Arc<Mutex<State>> = Arc::default();
        let st = state.clone();
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                let st = st.clone();
                std::thread::spawn(move || {
                    let _ = serve(c, &st);
                });
            }
        });
        Server { port, state }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn put(&self, path: &str, f: File) {
        self.state.lock().unwrap().files.insert(path.into(), f);
    }
}

fn serve(c: TcpStream, st: &Mutex<State>) -> std::io::Result<()> {
    let mut r = BufReader::new(c.try_clone()?);
    let mut w = c;
    let mut line = String::new();
    r.read_line(&mut line)?;
    let target = line.split_whitespace().nth(1).unwrap_or("/");
    let path = target.split('?').next().unwrap_or("/").to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    st.lock()
        .unwrap()
        .auth_seen
        .push(headers.get("authorization").cloned());
    let head = |w: &mut TcpStream, status: &str, extra: &str| {
        write!(w, "HTTP/1.1 {status}\r\nConnection: close\r\n{extra}\r\n")
    };
    match path.as_str() {
        "/missing" => head(&mut w, "404 Not Found", "Content-Length: 0\r\n"),
        "/redirect" => head(
            &mut w,
            "302 Found",
            "Location: /files/hello.txt\r\nContent-Length: 0\r\n",
        ),
        "/loop" => head(
            &mut w,
            "302 Found",
            "Location: /loop\r\nContent-Length: 0\r\n",
        ),
        "/endless" => {
            head(&mut w, "200 OK", "")?;
            let chunk = vec![b'z'; 64 << 10];
            loop {
                w.write_all(&chunk)?;
            }
        }
        p => {
            let file = st.lock().unwrap().files.get(p).cloned();
            let Some(f) = file else {
                return head(&mut w, "404 Not Found", "Content-Length: 0\r\n");
            };
            if let Some(a) = &f.auth {
                use base64::Engine;
                let want = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(a)
                );
                if headers.get("authorization") != Some(&want) {
                    return head(&mut w, "401 Unauthorized", "Content-Length: 0\r\n");
                }
            }
            let mut extra = String::new();
            if let Some(e) = &f.etag {
                extra.push_str(&format!("ETag: {e}\r\n"));
                if headers.get("if-none-match") == Some(e) {
                    st.lock().unwrap().not_modified.push(p.into());
                    return head(&mut w, "304 Not Modified", &extra);
                }
            }
            if let Some(lm) = &f.last_modified {
                extra.push_str(&format!("Last-Modified: {lm}\r\n"));
            }
            extra.push_str(&format!("Content-Length: {}\r\n", f.body.len()));
            st.lock().unwrap().served.push(p.into());
            head(&mut w, "200 OK", &extra)?;
            w.write_all(&f.body)
        }
    }
}
