//! `--format` as docker's CLI takes it, for the fields of a listing: `table` (the default
//! columns), `json` (`{{json .}}`), `table TEMPLATE` (columns with a header, aligned by a
//! tabwriter) or a TEMPLATE printed per row. A template is text with `{{.Field}}`,
//! `{{json .Field}}` and `{{json .}}` actions, and `\t` / `\n` written as two characters are a
//! tab and a newline (docker's `formatter.Context`). Other Go-template actions are refused.

use std::collections::BTreeMap;

use super::CliError;

/// A field of a listing: its name in a template, and its column header.
pub(crate) type Field = (&'static str, &'static str);

/// One row: each field's value.
pub(crate) type Row = BTreeMap<&'static str, String>;

/// A parsed `--format`.
pub(crate) struct Template {
    parts: Vec<Part>,
    table: bool,
}

enum Part {
    Text(String),
    Field(Field),
    Json(Option<&'static str>),
}

impl Template {
    /// Parse `format` (`table`, `json`, `table TEMPLATE` or `TEMPLATE`) for rows of `fields`;
    /// `table` alone is `default`.
    pub(crate) fn parse(
        format: &str,
        default: &str,
        fields: &'static [Field],
    ) -> Result<Self, CliError> {
        let (table, text) = match format {
            "table" => (true, default),
            "json" => (false, "{{json .}}"),
            f => match f.strip_prefix("table") {
                Some(t) if t.starts_with([' ', '\t']) => (true, t.trim_start()),
                _ => (false, f),
            },
        };
        let text = text.replace("\\t", "\t").replace("\\n", "\n");
        let bad = |why: String| {
            CliError::Usage(format!(
                "invalid --format {format:?}: {why} (fields: {})",
                fields
                    .iter()
                    .map(|(n, _)| format!(".{n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        };
        let field = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| *n == name)
                .copied()
                .ok_or_else(|| bad(format!("there is no field .{name}")))
        };
        let mut parts = Vec::new();
        let mut rest = text.as_str();
        while let Some(open) = rest.find("{{") {
            parts.push(Part::Text(rest[..open].into()));
            let close = rest[open..]
                .find("}}")
                .ok_or_else(|| bad("a '{{' is not closed by '}}'".into()))?;
            let action = rest[open + 2..open + close].trim();
            parts.push(match action.split_whitespace().collect::<Vec<_>>()[..] {
                ["json", "."] => Part::Json(None),
                ["json", f] if f.starts_with('.') => Part::Json(Some(field(&f[1..])?.0)),
                [f] if f.starts_with('.') && f.len() > 1 => Part::Field(field(&f[1..])?),
                _ => {
                    return Err(bad(format!(
                    "{{{{{action}}}}} is not {{{{.Field}}}}, {{{{json .Field}}}} or {{{{json .}}}}"
                )))
                }
            });
            rest = &rest[open + close + 2..];
        }
        parts.push(Part::Text(rest.into()));
        Ok(Template { parts, table })
    }

    /// The lines to print for `rows`: a header first and aligned columns for a table.
    pub(crate) fn render(&self, rows: &[Row]) -> Vec<String> {
        let mut lines: Vec<String> = Vec::new();
        if self.table {
            lines.push(self.expand(|p| match p {
                Part::Field((_, header)) => header.to_string(),
                _ => String::new(),
            }));
        }
        for row in rows {
            lines.push(self.expand(|p| match p {
                Part::Field((name, _)) => row[name].clone(),
                Part::Json(None) => serde_json::to_string(row).expect("json"),
                Part::Json(Some(name)) => serde_json::to_string(&row[name]).expect("json"),
                Part::Text(_) => String::new(),
            }));
        }
        if self.table {
            align(&lines)
        } else {
            lines
        }
    }

    fn expand(&self, value: impl Fn(&Part) -> String) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.clone(),
                p => value(p),
            })
            .collect()
    }
}

/// Tab-separated cells in columns, as docker's tabwriter sets them (`minwidth` 10, padding 3):
/// a column is as wide as its widest cell plus 3, at least 10; a line's last cell is not padded.
fn align(lines: &[String]) -> Vec<String> {
    let text: String = lines.join("\n");
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for r in &rows {
        for (i, c) in r.iter().enumerate().take(r.len().saturating_sub(1)) {
            let w = (c.chars().count() + 3).max(10);
            match widths.get_mut(i) {
                Some(x) => *x = (*x).max(w),
                None => widths.push(w),
            }
        }
    }
    rows.iter()
        .map(|r| {
            let mut l = String::new();
            for (i, c) in r.iter().enumerate() {
                l.push_str(c);
                if i + 1 < r.len() {
                    let pad = widths[i] - c.chars().count();
                    l.extend(std::iter::repeat_n(' ', pad));
                }
            }
            l
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[Field] = &[("Repository", "REPOSITORY"), ("Tag", "TAG")];

    fn rows() -> Vec<Row> {
        [("ubuntu", "22.04"), ("localhost:5000/team/app", "latest")]
            .iter()
            .map(|(r, t)| Row::from([("Repository", r.to_string()), ("Tag", t.to_string())]))
            .collect()
    }

    fn render(format: &str) -> Vec<String> {
        Template::parse(format, "{{.Repository}}\\t{{.Tag}}", FIELDS)
            .unwrap()
            .render(&rows())
    }

    #[test]
    fn templates_as_docker_formats_them() {
        assert_eq!(
            render("{{.Repository}}:{{.Tag}}"),
            ["ubuntu:22.04", "localhost:5000/team/app:latest"]
        );
        assert_eq!(
            render("{{ .Tag }} {{json .Repository}}"),
            ["22.04 \"ubuntu\"", "latest \"localhost:5000/team/app\""]
        );
        assert_eq!(
            render("{{json .}}"),
            [
                r#"{"Repository":"ubuntu","Tag":"22.04"}"#,
                r#"{"Repository":"localhost:5000/team/app","Tag":"latest"}"#
            ]
        );
        assert_eq!(render("json"), render("{{json .}}"));
        // `\t` typed as two characters is a tab; a table gets a header and aligned columns.
        assert_eq!(render("{{.Tag}}\\t."), ["22.04\t.", "latest\t."]);
        let table = [
            "REPOSITORY                TAG",
            "ubuntu                    22.04",
            "localhost:5000/team/app   latest",
        ];
        assert_eq!(render("table"), table);
        assert_eq!(render("table {{.Repository}}\\t{{.Tag}}"), table);
        assert_eq!(
            render("table {{.Tag}}\\t{{.Tag}}"),
            ["TAG       TAG", "22.04     22.04", "latest    latest"]
        );
    }

    #[test]
    fn unknown_fields_and_actions_are_usage_errors() {
        for (f, why) in [
            ("{{.Nope}}", "there is no field .Nope"),
            ("{{.Tag", "not closed"),
            ("{{range .}}x{{end}}", "{{range .}} is not"),
            ("{{.}}", "{{.}} is not"),
        ] {
            match Template::parse(f, "", FIELDS) {
                Err(CliError::Usage(m)) => {
                    assert!(m.contains(why) && m.contains(".Repository"), "{f}: {m}")
                }
                _ => panic!("{f} was accepted"),
            }
        }
    }
}
