//! Authentication as the registry asks for it in `WWW-Authenticate` (RFC 7235): `Basic`, or
//! `Bearer` — docker's token flow: a token for the scopes a request needs, from the realm the
//! challenge names, anonymous or with the user's credentials (basic auth on a GET, or an
//! identity token as an OAuth2 refresh token on a POST, as docker's `auth.FetchToken` does).

use hush_secrets::Secret;

use crate::credentials::Credentials;
use crate::{Error, Result};

/// What the registry asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// HTTP basic auth.
    Basic,
    /// A bearer token from `realm`.
    Bearer {
        /// The token server.
        realm: String,
        /// The `service` to ask a token for.
        service: Option<String>,
    },
}

impl Challenge {
    /// Parse a `WWW-Authenticate` value (`Bearer realm="…",service="…",scope="…"`).
    pub(crate) fn parse(registry: &str, header: &str) -> Result<Self> {
        let bad = || Error::Challenge {
            registry: registry.into(),
            challenge: header.chars().take(200).collect(),
        };
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        let params = parse_params(rest);
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => Ok(Challenge::Basic),
            "bearer" => {
                let get = |k: &str| {
                    params
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(k))
                        .map(|(_, v)| v.clone())
                };
                let realm = get("realm")
                    .filter(|r| r.starts_with("http"))
                    .ok_or_else(bad)?;
                Ok(Challenge::Bearer {
                    realm,
                    service: get("service"),
                })
            }
            _ => Err(bad()),
        }
    }
}

/// The scope a `Bearer` challenge says the token lacks (`error="insufficient_scope"`), as
/// `(repository, actions)`: `repository:team/app:pull,push` is `("team/app", "pull,push")`.
pub(crate) fn insufficient_scope(header: &str) -> Option<(String, String)> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
    };
    if get("error") != Some("insufficient_scope") {
        return None;
    }
    // Several scopes are space separated; the first repository one names what was refused.
    get("scope")?.split(' ').find_map(|s| {
        let mut parts = s.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("repository"), Some(repo), Some(actions)) => Some((repo.into(), actions.into())),
            _ => None,
        }
    })
}

/// `k=v` and `k="v, with \"quotes\""` pairs, comma separated.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ','))
            .collect::<String>()
            .trim()
            .to_string();
        if name.is_empty() {
            return out;
        }
        if chars.next_if_eq(&'=').is_none() {
            continue;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_string();
        }
        out.push((name, value));
    }
}

/// What a token server answers.
#[derive(serde::Deserialize)]
struct TokenReply {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

/// Get a bearer token for `scopes`.
pub(crate) fn fetch_token(
    agent: &ureq::Agent,
    registry: &str,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    creds: Option<&Credentials>,
) -> Result<Secret> {
    let mut query: Vec<(&str, &str)> = Vec::new();
    if let Some(s) = service {
        query.push(("service", s));
    }
    for s in scopes {
        query.push(("scope", s));
    }
    let transport = |method, source| Error::Transport {
        registry: registry.into(),
        method,
        url: realm.into(),
        source: Box::new(source),
    };
    let reply = match creds {
        Some(c) if c.is_identity_token() => {
            let refresh = String::from_utf8_lossy(c.secret().expose()).into_owned();
            let mut form = query.clone();
            form.extend([
                ("grant_type", "refresh_token"),
                ("client_id", "hush"),
                ("refresh_token", refresh.as_str()),
            ]);
            let body = encode_query(&form);
            agent
                .post(realm)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .send(body.as_bytes())
                .map_err(|e| transport("POST", e))?
        }
        _ => {
            let url = format!("{realm}{}{}", sep(realm), encode_query(&query));
            let mut req = agent.get(&url);
            if let Some(c) = creds {
                req = req.header("Authorization", format!("Basic {}", c.basic()));
            }
            req.call().map_err(|e| transport("GET", e))?
        }
    };
    let status = reply.status().as_u16();
    let mut body = reply.into_body();
    let bytes = body
        .with_config()
        .limit(1 << 20)
        .read_to_vec()
        .unwrap_or_default();
    if status != 200 {
        return Err(Error::Token {
            registry: registry.into(),
            realm: realm.into(),
            status,
            had_credentials: creds.is_some(),
            detail: crate::client::error_detail(&bytes, creds),
        });
    }
    let r: TokenReply = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
        registry: registry.into(),
        what: format!("the token from {realm}"),
        source,
    })?;
    match r.token.or(r.access_token) {
        Some(t) if !t.is_empty() => Ok(Secret::new(t.into_bytes())),
        _ => Err(Error::Token {
            registry: registry.into(),
            realm: realm.into(),
            status,
            had_credentials: creds.is_some(),
            detail: ": the answer holds no token".into(),
        }),
    }
}

/// `?` or `&`, to append a query to `url`.
pub(crate) fn sep(url: &str) -> char {
    if url.contains('?') {
        '&'
    } else {
        '?'
    }
}

/// `k=v&k=v`, percent-encoded.
pub(crate) fn encode_query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encode all but RFC 3986's unreserved characters.
pub(crate) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let c = Challenge::parse(
            "r",
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            }
        );
        assert_eq!(
            Challenge::parse("r", r#"Basic realm="Registry Realm""#).unwrap(),
            Challenge::Basic
        );
        assert_eq!(
            Challenge::parse("r", "bearer realm=http://127.0.0.1:1/t").unwrap(),
            Challenge::Bearer {
                realm: "http://127.0.0.1:1/t".into(),
                service: None
            }
        );
        for bad in [
            "Negotiate abc",
            "Bearer service=x",
            r#"Bearer realm="file:///etc""#,
        ] {
            assert!(Challenge::parse("r", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn insufficient_scopes_name_the_repository() {
        assert_eq!(
            insufficient_scope(
                r#"Bearer realm="http://t/token",service="s",scope="repository:bob/app:pull,push",error="insufficient_scope""#
            ),
            Some(("bob/app".into(), "pull,push".into()))
        );
        for other in [
            r#"Bearer realm="http://t/token",service="s",scope="repository:bob/app:pull""#,
            r#"Basic realm="x""#,
            r#"Bearer realm="http://t/token",error="invalid_token""#,
        ] {
            assert_eq!(insufficient_scope(other), None, "{other}");
        }
    }

    #[test]
    fn queries_are_encoded() {
        assert_eq!(
            encode_query(&[("scope", "repository:a/b:pull,push"), ("service", "x y")]),
            "scope=repository%3Aa%2Fb%3Apull%2Cpush&service=x%20y"
        );
    }
}
