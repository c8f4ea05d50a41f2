//! Dockerfile bytes → text. BuildKit reads bytes and never checks them; hush works on UTF-8.
//! A Latin-1 comment between instructions (common in old files) changes nothing that is built,
//! so it is accepted as BuildKit accepts it; an invalid byte anywhere else (an instruction, a
//! continuation, a heredoc body) would reach the build changed, so it is an error at its line
//! and column, as is a UTF-16 file.

use super::{is_comment, parse};
use crate::error::{Location, ParseError, ParseErrorKind};

/// Decode a Dockerfile read from disk or stdin.
pub fn decode(bytes: &[u8]) -> Result<String, ParseError> {
    if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
        return Err(
            ParseError::new(ParseErrorKind::Utf16, Location::lines(1, 1))
                .with_hint("save the Dockerfile as UTF-8"),
        );
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(text.to_string());
    }
    let mut text = String::with_capacity(bytes.len());
    // (line, column, the first invalid byte) of each line that is not UTF-8.
    let mut bad: Vec<(usize, usize, u8)> = Vec::new();
    for (i, line) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
        match std::str::from_utf8(line) {
            Ok(s) => text.push_str(s),
            Err(e) => {
                let valid = &line[..e.valid_up_to()];
                let column = String::from_utf8_lossy(valid).chars().count() + 1;
                bad.push((i + 1, column, line[e.valid_up_to()]));
                text.push_str(&String::from_utf8_lossy(line));
            }
        }
    }
    // Lines that belong to an instruction (continuations and heredocs included).
    let used: Vec<Location> = parse(&text)
        .map(|d| d.children.iter().map(|n| n.location).collect())
        .unwrap_or_default();
    for (line, column, byte) in bad {
        let raw = text.split('\n').nth(line - 1).unwrap_or_default();
        let inside = used
            .iter()
            .any(|l| (l.start_line..=l.end_line).contains(&line));
        if !is_comment(raw) || inside {
            let at = Location {
                column: Some(column),
                ..Location::lines(line, line)
            };
            return Err(
                ParseError::new(ParseErrorKind::NotUtf8 { byte, column }, at)
                    .with_hint("save the Dockerfile as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)"),
            );
        }
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_comments_between_instructions_are_accepted() {
        let text = decode(b"# Auteur: Fr\xe9d\xe9ric\nFROM a\n  # \xe9t\xe9\nRUN true\n").unwrap();
        let df = parse(&text).unwrap();
        assert_eq!(df.children.len(), 2);
        assert_eq!(df.children[1].original, "RUN true");
    }

    #[test]
    fn other_invalid_bytes_fail_at_their_line_and_column() {
        // `(file, line, column, byte)`.
        let cases: [(&[u8], usize, usize, u8); 4] = [
            (b"FROM a\nRUN echo caf\xe9\n", 2, 13, 0xe9),
            (b"FROM a\nRUN echo \\\n  # \xe9\n  x\n", 3, 5, 0xe9),
            (b"FROM a\nCOPY <<EOF /f\n# \xff\nEOF\n", 3, 3, 0xff),
            (b"FROM a\nLABEL a=\xc3\n", 2, 9, 0xc3),
        ];
        for (bytes, line, column, byte) in cases {
            let e = decode(bytes).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("invalid UTF-8: byte 0x{byte:02x} at column {column}"),
                "{bytes:?}"
            );
            assert_eq!(
                (e.location.start_line, e.location.column),
                (line, Some(column))
            );
        }
    }

    #[test]
    fn utf16_is_named() {
        for bom in [&b"\xff\xfeF\0R\0"[..], b"\xfe\xff\0F\0R"] {
            let e = decode(bom).unwrap_err();
            assert!(matches!(e.kind, ParseErrorKind::Utf16));
            assert_eq!(e.location.start_line, 1);
        }
        assert_eq!(decode("FROM a\n".as_bytes()).unwrap(), "FROM a\n");
    }
}
