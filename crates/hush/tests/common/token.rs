//! A token server for the registry's `auth: token:` (docker's token flow), on 127.0.0.1: it
//! checks basic credentials, grants scopes by a fixed policy and signs the JWT distribution
//! 2.8 expects (RS256, the signing certificate in `x5c`, verified against the registry's
//! `rootcertbundle`). It records every request (the user and the scopes asked for) so tests
//! can count token fetches.
//!
//! Policy: anyone may pull `public/*`; `alice` with her password may pull everything and push
//! `alice/*` and `public/*`; nobody may push elsewhere.

use super::registry::{sh, Registry};

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;

/// The `service` (the token's audience) and `issuer` the registry is configured with.
pub const SERVICE: &str = "hush-test-registry";
pub const ISSUER: &str = "hush-test-issuer";
pub const USER: &str = "alice";

/// One request to the token server.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The user of its basic credentials (`None`: anonymous); a refused password is `Some`.
    pub user: Option<String>,
    /// Its `scope` parameters.
    pub scopes: Vec<String>,
    /// The status answered.
    pub status: u16,
}

/// The server, answering until the test process ends.
pub struct TokenServer {
    pub realm: String,
    pub hits: Arc<Mutex<Vec<Hit>>>,
    /// Every token it gave, to look for in outputs and stores.
    pub tokens: Arc<Mutex<Vec<String>>>,
}

impl TokenServer {
    /// Start one signing with a key and certificate made in `dir` (`token-ca.pem` is the
    /// registry's `rootcertbundle`), accepting `password` for alice.
    pub fn start(dir: &Path, password: &str) -> TokenServer {
        sh(
            "openssl req -x509 -newkey rsa:2048 -nodes -keyout token-ca.key -out token-ca.pem -days 2 -subj /CN=hush-token-ca 2>/dev/null
             openssl req -newkey rsa:2048 -nodes -keyout token.key -out token.csr -subj /CN=hush-token-signer 2>/dev/null
             openssl x509 -req -in token.csr -CA token-ca.pem -CAkey token-ca.key -CAcreateserial -out token.pem -days 2 2>/dev/null",
            dir,
        );
        let key =
            jsonwebtoken::EncodingKey::from_rsa_pem(&std::fs::read(dir.join("token.key")).unwrap())
                .unwrap();
        let cert = pem_body(&std::fs::read_to_string(dir.join("token.pem")).unwrap());
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let port = server.server_addr().to_ip().unwrap().port();
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let tokens: Arc<Mutex<Vec<String>>> = Arc::default();
        let (h, t, password) = (hits.clone(), tokens.clone(), password.to_string());
        std::thread::spawn(move || {
            for req in server.incoming_requests() {
                let (status, body, hit) = answer(&req, &password, &key, &cert);
                if let Some(tok) = &body.token {
                    t.lock().unwrap().push(tok.clone());
                }
                h.lock().unwrap().push(hit);
                let json = serde_json::to_string(&body).unwrap();
                let _ = req.respond(
                    tiny_http::Response::from_string(json)
                        .with_status_code(status)
                        .with_header(
                            "Content-Type: application/json"
                                .parse::<tiny_http::Header>()
                                .unwrap(),
                        ),
                );
            }
        });
        TokenServer {
            realm: format!("http://127.0.0.1:{port}/token"),
            hits,
            tokens,
        }
    }

    /// A registry trusting this server's tokens.
    pub fn registry(&self, dir: &Path) -> Registry {
        Registry::start(
            "",
            &format!(
                "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                self.realm,
                dir.join("token-ca.pem").display()
            ),
        )
    }

    /// The requests so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

#[derive(serde::Serialize, Default)]
struct Reply {
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<String>,
}

#[derive(serde::Serialize)]
struct Access {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    actions: Vec<String>,
}

/// distribution's `token.ClaimSet`.
#[derive(serde::Serialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: String,
    access: Vec<Access>,
}

fn answer(
    req: &tiny_http::Request,
    password: &str,
    key: &jsonwebtoken::EncodingKey,
    cert: &str,
) -> (u16, Reply, Hit) {
    let query = req.url().split_once('?').map_or("", |(_, q)| q);
    let params: Vec<(String, String)> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect();
    let scopes: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(String::from).collect::<Vec<_>>())
        .collect();
    let basic = req
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .and_then(|h| h.value.as_str().strip_prefix("Basic ").map(String::from))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let user = basic
        .as_ref()
        .map(|b| b.split_once(':').map_or(b.as_str(), |(u, _)| u).to_string());
    let mut hit = Hit {
        user: user.clone(),
        scopes: scopes.clone(),
        status: 200,
    };
    let service = params
        .iter()
        .find(|(k, _)| k == "service")
        .map(|(_, v)| v.as_str());
    if !req.url().starts_with("/token") || service != Some(SERVICE) {
        hit.status = 400;
        let details = Some(format!("bad request {}", req.url()));
        return (
            400,
            Reply {
                token: None,
                details,
            },
            hit,
        );
    }
    let alice = match &basic {
        None => false,
        Some(b) if *b == format!("{USER}:{password}") => true,
        Some(_) => {
            hit.status = 401;
            let details = Some("invalid username or password".into());
            return (
                401,
                Reply {
                    token: None,
                    details,
                },
                hit,
            );
        }
    };
    let access = scopes
        .iter()
        .filter_map(|s| {
            let mut parts = s.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            let granted: Vec<String> = actions
                .split(',')
                .filter(|a| match *a {
                    "pull" => alice || name.starts_with("public/"),
                    "push" => alice && (name.starts_with("alice/") || name.starts_with("public/")),
                    _ => false,
                })
                .map(String::from)
                .collect();
            Some(Access {
                kind: kind.into(),
                name: name.into(),
                actions: granted,
            })
        })
        .collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = Claims {
        iss: ISSUER.into(),
        sub: user.unwrap_or_default(),
        aud: SERVICE.into(),
        exp: now + 300,
        nbf: now - 10,
        iat: now,
        jti: format!("{now}-{}", rand_id()),
        access,
    };
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.x5c = Some(vec![cert.to_string()]);
    let token = jsonwebtoken::encode(&header, &claims, key).unwrap();
    (
        200,
        Reply {
            token: Some(token),
            details: None,
        },
        hit,
    )
}

/// A request counter, for the token id.
fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The base64 body of a PEM certificate: the DER in standard base64, as `x5c` holds it.
fn pem_body(pem: &str) -> String {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

/// `%XX` and `+` decoded.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
