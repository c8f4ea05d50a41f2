//! Reports never reveal: every value a detector rule or a `--secret` matched is replaced by
//! `<redacted>` wherever a report shows text taken from the image (a layer's history
//! instruction, a path, a config field's name).

use std::ops::Range;

use aho_corasick::AhoCorasick;

use crate::rules::Rules;
use crate::Guard;

/// What replaces a value.
pub const REDACTED: &str = "<redacted>";

/// Redacts text for a report: the forms of the guard's secrets, whatever the rules match in the
/// text itself, and every value the rules matched elsewhere in the image (a password found in a
/// file is redacted in a history entry where no rule would recognise it on its own).
pub struct Redactor<'a> {
    guard: &'a Guard,
    rules: &'a Rules,
    /// The values matched by rules, in one automaton (an image can have thousands).
    values: Option<AhoCorasick>,
}

impl<'a> Redactor<'a> {
    /// A redactor for the guard's secrets and the rules' matches, knowing `values` too.
    pub fn new(guard: &'a Guard, rules: &'a Rules, mut values: Vec<Vec<u8>>) -> Self {
        values.sort();
        values.dedup();
        values.retain(|v| !v.is_empty());
        let values = (!values.is_empty())
            .then(|| AhoCorasick::new(&values).expect("values build an automaton"));
        Redactor {
            guard,
            rules,
            values,
        }
    }

    /// `text` with every known or recognisable value replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        let bytes = text.as_bytes();
        let mut spans: Vec<Range<usize>> = self.guard.spans(bytes);
        spans.extend(
            self.rules
                .scan(bytes)
                .into_iter()
                .map(|h| h.offset..h.offset + h.len),
        );
        if let Some(ac) = &self.values {
            spans.extend(ac.find_overlapping_iter(bytes).map(|m| m.start()..m.end()));
        }
        if spans.is_empty() {
            return text.to_string();
        }
        spans.sort_by_key(|r| (r.start, std::cmp::Reverse(r.end)));
        let mut out = Vec::with_capacity(bytes.len());
        let mut at = 0;
        for s in spans {
            if s.end <= at {
                continue;
            }
            // A span that overlaps the previous one extends it.
            if s.start >= at {
                out.extend_from_slice(&bytes[at..s.start]);
                out.extend_from_slice(REDACTED.as_bytes());
            }
            at = s.end;
        }
        out.extend_from_slice(&bytes[at..]);
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Guard {
    /// Where any form of any secret occurs in `bytes` (overlapping occurrences included).
    pub(crate) fn spans(&self, bytes: &[u8]) -> Vec<Range<usize>> {
        match &self.ac {
            None => Vec::new(),
            Some(ac) => ac
                .find_overlapping_iter(bytes)
                .map(|m| m.start()..m.end())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_secrets_rule_matches_and_known_values() {
        let guard = Guard::new(
            [("db", &b"hunter2-correct-horse"[..])],
            crate::DEFAULT_MIN_LEN,
        );
        let rules = Rules::new();
        let token = format!("ghp_{}", "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5");
        let r = Redactor::new(&guard, &rules, vec![b"Zq8kP2vLm9xR".to_vec()]);
        let text = format!(
            "RUN |3 DB=hunter2-correct-horse T={token} P=Zq8kP2vLm9xR /bin/sh -c echo aHVudGVyMi1jb3JyZWN0LWhvcnNl"
        );
        assert_eq!(
            r.redact(&text),
            "RUN |3 DB=<redacted> T=<redacted> P=<redacted> /bin/sh -c echo <redacted>"
        );
        assert_eq!(r.redact("RUN make"), "RUN make");
    }
}
