//! The byte strings that count as a secret: its value, encodings, and structured fields.

use base64::Engine;
use zeroize::{Zeroize, Zeroizing};

use crate::{Form, TooShort};

/// How a needle's bytes relate to the secret: which part of it, how encoded, how wrapped.
/// Shown as `raw`, `base64`, `field "password", hex`, `base64, wrapped at 76 columns`….
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormKind {
    /// A field of a structured secret (JSON key, `KEY=VALUE` name, `.netrc` word, `PEM line`),
    /// or none for the whole value.
    pub field: Option<String>,
    /// The encoding of those bytes.
    pub encoding: Encoding,
    /// Found wrapped across lines of this many columns (base64 or hex).
    pub wrapped_at: Option<usize>,
}

/// An encoding the guard looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// The bytes as they are.
    Raw,
    /// A multi-line value with its line ends switched (LF and CRLF).
    OtherLineEnds,
    /// Standard base64, at any alignment, padded or not.
    Base64,
    /// URL-safe base64.
    Base64Url,
    /// Lower-case hex.
    Hex,
    /// Upper-case hex.
    HexUpper,
    /// Percent-encoding.
    UrlEncoded,
    /// Escaped as inside a JSON string.
    JsonEscaped,
}

impl Encoding {
    fn as_str(self) -> &'static str {
        match self {
            Encoding::Raw => "raw",
            Encoding::OtherLineEnds => "raw, other line ends",
            Encoding::Base64 => "base64",
            Encoding::Base64Url => "base64url",
            Encoding::Hex => "hex",
            Encoding::HexUpper => "HEX",
            Encoding::UrlEncoded => "url-encoded",
            Encoding::JsonEscaped => "json-escaped",
        }
    }
}

impl std::fmt::Display for FormKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.field, self.encoding) {
            (None, e) => f.write_str(e.as_str())?,
            (Some(field), Encoding::Raw) => write!(f, "field {field:?}")?,
            (Some(field), e) => write!(f, "field {field:?}, {}", e.as_str())?,
        }
        if let Some(w) = self.wrapped_at {
            write!(f, ", wrapped at {w} columns")?;
        }
        Ok(())
    }
}

/// Needles for one secret, and what was too short to guard.
pub(crate) fn needles_for(
    id: &str,
    value: &[u8],
    min_len: usize,
) -> (Vec<(Form, Vec<u8>)>, Vec<TooShort>) {
    let mut out = Vec::new();
    let mut short = Vec::new();
    let trimmed = trim_ascii(value);
    if trimmed.len() < min_len {
        short.push(TooShort {
            secret_id: id.into(),
            what: "the whole value".into(),
            len: trimmed.len(),
        });
    } else {
        encodings(id, None, trimmed, &mut out);
        if let Some(other) = other_line_ends(trimmed) {
            out.push((
                Form {
                    secret_id: id.into(),
                    form: FormKind {
                        field: None,
                        encoding: Encoding::OtherLineEnds,
                        wrapped_at: None,
                    },
                },
                other,
            ));
        }
    }
    for (field, v) in fields(trimmed) {
        let v = Zeroizing::new(v);
        if v.len() < min_len {
            short.push(TooShort {
                secret_id: id.into(),
                what: format!("field {field:?}"),
                len: v.len(),
            });
            continue;
        }
        if v.as_slice() == trimmed {
            continue;
        }
        encodings(id, Some(&field), &v, &mut out);
    }
    (out, short)
}

/// A multi-line value with its line ends switched (LF to CRLF, or CRLF to LF): what `unix2dos`,
/// a Windows editor or git's `autocrlf` make of a copied file.
fn other_line_ends(v: &[u8]) -> Option<Vec<u8>> {
    if !v.contains(&b'\n') {
        return None;
    }
    // Room for the longest result: no reallocation leaves a copy behind.
    let mut out = Vec::with_capacity(2 * v.len());
    if v.windows(2).any(|w| w == b"\r\n") {
        let mut i = 0;
        while i < v.len() {
            if v[i] == b'\r' && v.get(i + 1) == Some(&b'\n') {
                i += 1;
                continue;
            }
            out.push(v[i]);
            i += 1;
        }
    } else {
        for &b in v {
            if b == b'\n' {
                out.push(b'\r');
            }
            out.push(b);
        }
    }
    Some(out)
}

fn trim_ascii(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end]
}

fn encodings(id: &str, field: Option<&str>, v: &[u8], out: &mut Vec<(Form, Vec<u8>)>) {
    let form = |encoding| Form {
        secret_id: id.into(),
        form: FormKind {
            field: field.map(str::to_string),
            encoding,
            wrapped_at: None,
        },
    };
    out.push((form(Encoding::Raw), v.to_vec()));
    for (name, engine) in [
        (
            Encoding::Base64,
            &base64::engine::general_purpose::STANDARD_NO_PAD,
        ),
        (
            Encoding::Base64Url,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ),
    ] {
        for align in 0..3usize {
            let mut buf = Zeroizing::new(Vec::with_capacity(align + v.len()));
            buf.resize(align, 0);
            buf.extend_from_slice(v);
            let enc = Zeroizing::new(engine.encode(&*buf));
            // Characters wholly determined by the secret's bits, whatever surrounds it.
            let first = (8 * align).div_ceil(6);
            let last = (8 * (align + v.len())) / 6;
            if last > first {
                out.push((form(name), enc.as_bytes()[first..last].to_vec()));
            }
        }
    }
    out.push((form(Encoding::Hex), hex::encode(v).into_bytes()));
    out.push((form(Encoding::HexUpper), hex::encode_upper(v).into_bytes()));
    let mut url = url_encode(v);
    if url != v {
        out.push((form(Encoding::UrlEncoded), url));
    } else {
        url.zeroize();
    }
    if let Ok(s) = std::str::from_utf8(v) {
        // At most 6 bytes per byte (`\u00XX`) and the quotes: no reallocation leaves a copy.
        let mut json = Zeroizing::new(Vec::with_capacity(6 * s.len() + 2));
        if serde_json::to_writer(&mut *json, s).is_ok() {
            let mut inner = json[1..json.len() - 1].to_vec();
            if inner != v {
                out.push((form(Encoding::JsonEscaped), inner));
            } else {
                inner.zeroize();
            }
        }
    }
}

fn url_encode(v: &[u8]) -> Vec<u8> {
    // At most 3 bytes per byte: no reallocation leaves a copy behind.
    let mut out = Vec::with_capacity(3 * v.len());
    for &b in v {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b);
        } else {
            out.push(b'%');
            out.extend_from_slice(hex::encode_upper([b]).as_bytes());
        }
    }
    out
}

/// Field values of structured secrets: JSON strings (docker `auths` decoded), `KEY=VALUE`
/// lines, `.netrc` logins and passwords, PEM body lines.
fn fields(v: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(v) {
        json_fields("", &json, &mut out);
        zeroize_json(&mut json);
        return out;
    }
    let Ok(text) = std::str::from_utf8(v) else {
        return out;
    };
    if text.contains("-----BEGIN ") {
        for line in text.lines() {
            let l = line.trim();
            if !l.is_empty() && !l.starts_with("-----") && !l.contains(':') {
                out.push(("PEM line".into(), l.as_bytes().to_vec()));
            }
        }
        return out;
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.iter().any(|w| *w == "machine" || *w == "password") {
        for pair in words.windows(2) {
            if pair[0] == "password" || pair[0] == "login" {
                out.push((pair[0].to_string(), pair[1].as_bytes().to_vec()));
            }
        }
        return out;
    }
    for line in text.lines() {
        let line = line.trim().trim_start_matches("export ");
        if let Some((k, val)) = line.split_once('=') {
            if !k.is_empty() && !k.starts_with('#') && !k.contains(' ') {
                let val = val.trim().trim_matches(['"', '\'']);
                out.push((k.to_string(), val.as_bytes().to_vec()));
            }
        }
    }
    out
}

fn json_fields(key: &str, v: &serde_json::Value, out: &mut Vec<(String, Vec<u8>)>) {
    match v {
        serde_json::Value::String(s) => {
            out.push((key.to_string(), s.as_bytes().to_vec()));
            if key == "auth" {
                if let Ok(decoded) = base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map(Zeroizing::new)
                {
                    if let Some(p) = decoded.iter().position(|b| *b == b':') {
                        out.push(("auth password".into(), decoded[p + 1..].to_vec()));
                    }
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| json_fields(key, x, out)),
        serde_json::Value::Object(o) => o.iter().for_each(|(k, x)| json_fields(k, x, out)),
        _ => {}
    }
}

/// Zeroize the strings of a parsed JSON secret (its keys are names, not values).
fn zeroize_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(a) => a.iter_mut().for_each(zeroize_json),
        serde_json::Value::Object(o) => o.values_mut().for_each(zeroize_json),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How findings name a form (in warnings, errors, audit rules): one string per shape.
    #[test]
    fn forms_read_as_before() {
        let kind = |field: Option<&str>, encoding, wrapped_at| FormKind {
            field: field.map(str::to_string),
            encoding,
            wrapped_at,
        };
        for (form, want) in [
            (kind(None, Encoding::Raw, None), "raw"),
            (
                kind(None, Encoding::OtherLineEnds, None),
                "raw, other line ends",
            ),
            (kind(None, Encoding::HexUpper, None), "HEX"),
            (
                kind(Some("password"), Encoding::Raw, None),
                "field \"password\"",
            ),
            (
                kind(Some("auth password"), Encoding::JsonEscaped, None),
                "field \"auth password\", json-escaped",
            ),
            (
                kind(None, Encoding::Base64, Some(76)),
                "base64, wrapped at 76 columns",
            ),
            (
                kind(Some("PEM line"), Encoding::Hex, Some(60)),
                "field \"PEM line\", hex, wrapped at 60 columns",
            ),
        ] {
            assert_eq!(form.to_string(), want);
        }
    }
}
