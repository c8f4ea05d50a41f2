//! Instruction flags (`--from=x`, `--link`, repeated `--mount=`), validated against what each
//! instruction accepts.

use crate::error::{did_you_mean, ParseError, ParseErrorKind};
use crate::parser::Node;

pub(crate) struct Flags<'a> {
    node: &'a Node,
    values: Vec<(String, Option<String>)>,
}

impl<'a> Flags<'a> {
    pub(crate) fn new(node: &'a Node, allowed: &[&str]) -> Result<Self, ParseError> {
        let mut values = Vec::new();
        for f in &node.flags {
            let body = f.trim_start_matches('-');
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (body.to_string(), None),
            };
            if !allowed.contains(&name.as_str()) {
                let mut e = ParseError::new(
                    ParseErrorKind::UnknownFlag {
                        instruction: node.name.to_uppercase(),
                        flag: name.clone(),
                    },
                    node.location,
                );
                if let Some(s) = did_you_mean(&name, allowed) {
                    e = e.with_hint(format!("did you mean --{s}?"));
                }
                return Err(e);
            }
            values.push((name, value));
        }
        Ok(Flags { node, values })
    }

    fn take(&mut self, name: &str) -> Vec<Option<String>> {
        let (hit, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.values)
            .into_iter()
            .partition(|(n, _)| n == name);
        self.values = rest;
        hit.into_iter().map(|(_, v)| v).collect()
    }

    pub(crate) fn string(&mut self, name: &str) -> Option<String> {
        self.take(name).pop().map(Option::unwrap_or_default)
    }

    pub(crate) fn strings(&mut self, name: &str) -> Vec<String> {
        self.take(name)
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect()
    }

    pub(crate) fn opt_bool(&mut self, name: &str) -> Result<Option<bool>, ParseError> {
        match self.take(name).pop() {
            None => Ok(None),
            Some(None) => Ok(Some(true)),
            Some(Some(v)) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "" => Ok(Some(true)),
                "false" | "0" => Ok(Some(false)),
                _ => Err(ParseError::new(
                    ParseErrorKind::InvalidFlag(format!(
                        "expecting boolean value for flag {name}, not: {v}"
                    )),
                    self.node.location,
                )),
            },
        }
    }

    pub(crate) fn bool(&mut self, name: &str) -> Result<bool, ParseError> {
        Ok(self.opt_bool(name)?.unwrap_or(false))
    }

    pub(crate) fn finish(self) -> Result<(), ParseError> {
        Ok(())
    }
}
