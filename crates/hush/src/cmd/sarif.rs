//! SARIF 2.1.0 output (what GitHub code scanning reads) for `hush lint` and `hush audit`.

use serde_json::{json, Value};

/// One result: rule id, `error`/`warning`, message, file and line (line 0: no region).
pub(crate) struct SarifResult {
    pub rule: String,
    pub level: &'static str,
    pub message: String,
    pub uri: String,
    pub line: usize,
}

/// A SARIF log with one run of the `hush` tool.
pub(crate) fn log(results: &[SarifResult]) -> Value {
    let mut rules: Vec<&str> = results.iter().map(|r| r.rule.as_str()).collect();
    rules.sort();
    rules.dedup();
    let results: Vec<Value> = results
        .iter()
        .map(|r| {
            let mut physical = json!({ "artifactLocation": { "uri": r.uri } });
            if r.line > 0 {
                physical["region"] = json!({ "startLine": r.line });
            }
            json!({
                "ruleId": r.rule,
                "level": r.level,
                "message": { "text": r.message },
                "locations": [{ "physicalLocation": physical }],
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "hush",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules.iter().map(|id| json!({ "id": id, "shortDescription": { "text": id } })).collect::<Vec<_>>(),
            }},
            "results": results,
        }],
    })
}
