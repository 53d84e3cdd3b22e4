//! Loading schema files from disk and checking events against them.

use std::sync::Arc;

use bus_core::{EventBus, Refusal, Validator};
use bus_schema::{SchemaError, SchemaMode, SchemaSet, SchemaValidator};
use proptest::prelude::*;
use serde_json::json;

fn write(dir: &tempfile::TempDir, name: &str, body: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, body).unwrap();
    path
}

const TOOL: &str = r#"{"type": "object", "required": ["tool_name"],
  "properties": {"tool_name": {"type": "string"}, "session_id": {"type": "string"}}}"#;

#[test]
fn every_matching_pattern_applies_and_refs_are_relative_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir, "schemas/tool.json", TOOL);
    let file = write(
        &dir,
        "schemas.json",
        r#"{"hook.pre_tool": {"$ref": "schemas/tool.json"},
            "hook.*": {"type": "object", "properties": {"cwd": {"type": "string"}}}}"#,
    );
    let set = SchemaSet::load(&file).unwrap();
    // The file's keys come in sorted order (serde_json's map).
    assert_eq!(set.patterns(), ["hook.*", "hook.pre_tool"]);
    assert!(
        set.check("hook.pre_tool", &json!({"tool_name": "Read"}))
            .is_empty()
    );
    let v = set.check("hook.pre_tool", &json!({"tool_name": 42, "cwd": 1}));
    let text: Vec<String> = v.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            r#"/cwd: 1 is not of type "string""#,
            r#"/tool_name: 42 is not of type "string""#
        ]
    );
    assert_eq!(set.check("hook.post_tool", &json!({"cwd": 1})).len(), 1);
    assert!(
        set.check("other", &json!(5)).is_empty(),
        "no pattern, no check"
    );
    let missing = set.check("hook.pre_tool", &json!({}));
    assert_eq!(missing[0].pointer, "");
    assert!(missing[0].message.contains("tool_name"), "{:?}", missing);
}

#[test]
fn nested_refs_resolve_next_to_the_schema_that_names_them() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir,
        "defs/name.json",
        r#"{"type": "string", "minLength": 1}"#,
    );
    let file = write(
        &dir,
        "schemas.json",
        r#"{"a": {"type": "object", "properties": {"n": {"$ref": "defs/name.json"}}}}"#,
    );
    let set = SchemaSet::load(&file).unwrap();
    assert!(set.check("a", &json!({"n": "x"})).is_empty());
    assert_eq!(set.check("a", &json!({"n": ""}))[0].pointer, "/n");
}

#[test]
fn earlier_drafts_declared_by_the_schema_are_honoured() {
    // A boolean `exclusiveMinimum` is draft 4; in 2020-12 (the default) it must be a number.
    let schema = json!({"a": {"$schema": "http://json-schema.org/draft-04/schema#",
        "minimum": 5, "exclusiveMinimum": true}});
    let set = SchemaSet::from_value(&schema, std::path::Path::new("s.json")).unwrap();
    assert_eq!(set.check("a", &json!(5)).len(), 1);
    assert!(set.check("a", &json!(6)).is_empty());
    let modern = json!({"a": {"minimum": 5, "exclusiveMinimum": true}});
    let err = SchemaSet::from_value(&modern, std::path::Path::new("s.json")).unwrap_err();
    assert!(err.to_string().contains("not a valid JSON Schema"), "{err}");
}

#[test]
fn bad_files_name_the_file_the_pattern_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("notjson.json", "{nope", "not JSON"),
        ("array.json", "[1]", "expected a JSON object"),
        ("pattern.json", r#"{" hook.*": {}}"#, "pattern \" hook.*\""),
        (
            "schema.json",
            r#"{"hook.*": {"type": "strin"}}"#,
            "pattern \"hook.*\": not a valid JSON Schema",
        ),
        (
            "noschema.json",
            r#"{"hook.*": 5}"#,
            "pattern \"hook.*\": expected a schema",
        ),
        (
            "missing.json",
            r#"{"hook.*": {"$ref": "gone.json"}}"#,
            "$ref \"gone.json\" does not resolve",
        ),
        (
            "nested.json",
            r#"{"hook.*": {"properties": {"a": {"$ref": "gone.json"}}}}"#,
            "gone.json",
        ),
        (
            "remote.json",
            r#"{"hook.*": {"$ref": "https://example.com/s.json"}}"#,
            "remote $ref https://example.com/s.json refused",
        ),
    ];
    for (name, body, needle) in cases {
        let file = write(&dir, name, body);
        let err = SchemaSet::load(&file).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(name), "{name}: {text}");
        assert!(text.contains(needle), "{name}: {text}");
    }
    let err = SchemaSet::load(dir.path().join("absent.json")).unwrap_err();
    assert!(matches!(err, SchemaError::Read { .. }), "{err}");
}

#[test]
fn reject_refuses_in_process_publish_and_warn_accepts_and_counts() {
    let set = || {
        SchemaSet::from_value(
            &json!({"hook.*": serde_json::from_str::<serde_json::Value>(TOOL).unwrap()}),
            std::path::Path::new("s.json"),
        )
        .unwrap()
    };
    let reject = Arc::new(SchemaValidator::new(set(), SchemaMode::Reject));
    let bus = EventBus::builder()
        .validator(reject.clone())
        .build()
        .unwrap();
    let err = bus
        .try_publish("hook.pre_tool", json!({"tool_name": 1}))
        .unwrap_err();
    let Refusal::Invalid(invalid) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(invalid.event_type, "hook.pre_tool");
    assert_eq!(invalid.violations[0].pointer, "/tool_name");
    assert_eq!(bus.stats().events_published, 0);
    assert!(bus.recent_events(10).is_empty(), "nothing recorded");
    assert!(bus.publish("hook.pre_tool", json!({"tool_name": "Read"})));
    assert!(bus.publish("other", json!(1)), "no schema for this type");
    assert_eq!(reject.counts().total, 1);
    assert_eq!(reject.counts().by_type["hook.pre_tool"], 1);

    let warn = Arc::new(SchemaValidator::new(set(), SchemaMode::Warn));
    bus.set_validator(Some(warn.clone()));
    assert!(bus.publish("hook.pre_tool", json!({"tool_name": 1})));
    assert_eq!(warn.counts().total, 1);
    bus.set_validator(None);
    assert!(bus.publish("hook.pre_tool", json!({"tool_name": 1})));
    assert_eq!(warn.counts().total, 1);
}

proptest! {
    /// Whatever the payload, the check agrees with the schema's plain verdict, and every
    /// violation's pointer resolves inside the payload.
    #[test]
    fn violations_point_into_the_payload(name in prop_oneof![
        any::<i64>().prop_map(|n| json!(n)),
        "[a-z]{0,5}".prop_map(|s| json!(s)),
        any::<bool>().prop_map(|b| json!(b)),
    ], count in any::<i32>()) {
        let schema = json!({"t": {"type": "object", "properties": {
            "name": {"type": "string"}, "count": {"type": "integer", "minimum": 0}}}});
        let set = SchemaSet::from_value(&schema, std::path::Path::new("s.json")).unwrap();
        let data = json!({"name": name, "count": count});
        let v = SchemaValidator::new(set, SchemaMode::Reject);
        let outcome = v.validate("t", &data);
        let expected_bad = usize::from(!data["name"].is_string()) + usize::from(count < 0);
        match outcome {
            Ok(()) => prop_assert_eq!(expected_bad, 0),
            Err(invalid) => {
                prop_assert_eq!(invalid.violations.len(), expected_bad);
                for violation in &invalid.violations {
                    prop_assert!(data.pointer(&violation.pointer).is_some());
                }
            }
        }
    }
}
