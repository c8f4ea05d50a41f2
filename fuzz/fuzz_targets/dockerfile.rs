//! The Dockerfile frontend end to end on arbitrary text: parse, dump, lower to stages, lint,
//! resolve the global ARGs and dispatch every stage (which expands every word). Nothing may
//! panic; errors must render.
#![no_main]

use std::collections::BTreeMap;

use hush_dockerfile::instructions::args::global_arg_values;
use hush_dockerfile::instructions::dispatch::{dispatch_stage, DispatchInput, HistoryArgs};
use hush_dockerfile::instructions::parse_stages;
use hush_dockerfile::instructions::step::ImageState;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let df = match hush_dockerfile::parser::parse(&text) {
        Ok(df) => df,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    for node in &df.children {
        let _ = node.dump();
    }
    let stages = match parse_stages(&df) {
        Ok(s) => s,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let _ = hush_dockerfile::lint::lint(&stages, None);
    let _ = hush_dockerfile::lint::lint(&stages, Some(&["id".to_string()]));
    let build_args = BTreeMap::from([("B".to_string(), "b v".to_string())]);
    let Ok(globals) = global_arg_values(&stages.global_args, &build_args, stages.escape) else {
        return;
    };
    let names: Vec<Option<String>> = stages.stages.iter().map(|s| s.name.clone()).collect();
    let input = DispatchInput {
        build_args: &build_args,
        global_args: &globals,
        stage_names: &names,
        escape: stages.escape,
        // The default, with a value judged secret by content: both redaction paths run.
        history_args: HistoryArgs::Safe {
            is_secret: &|_, v| v.contains("tok"),
        },
    };
    for stage in &stages.stages {
        let _ = hush_dockerfile::instructions::args::expand_from(stage, &globals, stages.escape);
        if let Err(e) = dispatch_stage(stage, ImageState::default(), &input) {
            let _ = e.to_string();
        }
    }
});
