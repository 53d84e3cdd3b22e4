//! The compiled condition (constants folded, fields read straight from the payload, see
//! `bus-cel/src/rewrite.rs` and `vars.rs`) answers exactly what the interpreter answers for
//! the expression as written with all four variables converted up front: the reference
//! here is `cel` alone (`Program::execute`, values built through `cel::Value`), sharing no
//! code with bus-cel's conversion or rewrites.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::{Duration, UNIX_EPOCH};

use bus_cel::{CelCondition, Condition};
use bus_core::EventView;
use cel::{Context, Program, Value as Cel};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Conditions of every shape the rewrites touch (and some they must leave alone).
const EXPRESSIONS: &[&str] = &[
    r#"data.tool_name in ["Edit", "Write"]"#,
    r#"data.tool_name == "Edit" || data.tool_name == "Write""#,
    r#"data.tool_name in ["Edit", 3, 3u, 3.0, null, true]"#,
    r#"type.startsWith("hook.") && data.tool_name in ["Edit", "Write"]"#,
    r#"!(data.tool_name in ["Read"])"#,
    "data.n > 2",
    "data.n == 2.5 || data.n == 3u",
    "data.n in [1, 2u, 2.5, -3]",
    r#"has(data.cwd) && data.cwd.startsWith("/")"#,
    "has(data.tool_input.file_path)",
    r#"data.tool_input.file_path.endsWith(".txt")"#,
    r#"data.tool_input == {"file_path": "/a.txt", "content": "x"}"#,
    "size(data.tool_input) == 2",
    "size(data) > 3",
    r#""tool_name" in data"#,
    r#"data["tool_name"] == "Edit""#,
    r#"data.l.exists(x, x in [1, "a"])"#,
    "data.l.all(x, x > 0)",
    "data.l == [1, 2] || data.l == []",
    "[1, 2, 3].exists(x, x == data.n)",
    r#"[{"tool_name": "Edit"}].exists(data, data.tool_name == "Edit") && data.n > 0"#,
    "data.l.map(x, x * 2) == [2, 4]",
    "data.m.k == 1 || true",
    "data.m == {'k': 1} && data.m.k == 1",
    "data.missing == 1 || data.n > 0",
    r#"data.n > 0 ? data.tool_name == "Edit" : data.cwd == "/home""#,
    r#"data.tool_name + "x" == "Editx""#,
    r#"{"a": 1, "a": 2}.a == 1 || data.n == 1"#,
    r#"{"k": [1, 2]}.k == data.l"#,
    "data.tool_name",
    "data.l",
    r#"id == 7u && timestamp > "2026" && type == "hook.pre_tool""#,
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-4i64..5).prop_map(Value::from),
        Just(json!(u64::MAX)),
        Just(json!(2.5)),
        Just(json!(3.0)),
        prop::sample::select(vec!["Edit", "Write", "Read", "/home", "a", "", "3"])
            .prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec!["k", "file_path", "content"]).prop_map(String::from),
                inner,
                0..3
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Payloads with (or without) the fields the expressions read, of any type.
fn payload() -> impl Strategy<Value = Value> {
    let keys = vec!["tool_name", "n", "cwd", "tool_input", "l", "m", "other"];
    prop_oneof![
        9 => prop::collection::btree_map(prop::sample::select(keys).prop_map(String::from), value(), 0..7)
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        1 => value(),
    ]
}

fn reference_value(v: &Value) -> Cel {
    match v {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Cel::Int(i),
            (None, Some(u)) => Cel::UInt(u),
            _ => Cel::Float(n.as_f64().unwrap()),
        },
        Value::String(s) => Cel::String(s.clone().into()),
        Value::Array(items) => items.iter().map(reference_value).collect::<Vec<_>>().into(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), reference_value(v)))
            .collect::<HashMap<_, _>>()
            .into(),
    }
}

/// `Ok(b)` when the expression as written evaluates to a bool, `Err` otherwise.
fn reference(source: &str, event: EventView<'_>) -> Result<bool, String> {
    let program = Program::compile(source).unwrap();
    let mut ctx = Context::default();
    ctx.add_variable_from_value("type", event.event_type.to_owned());
    ctx.add_variable_from_value("id", event.id);
    let timestamp = humantime::format_rfc3339_micros(event.timestamp).to_string();
    ctx.add_variable_from_value("timestamp", timestamp);
    ctx.add_variable_from_value("data", reference_value(event.data));
    match program.execute(&ctx) {
        Ok(Cel::Bool(b)) => Ok(b),
        Ok(other) => Err(format!("{other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

fn view(data: &Value) -> EventView<'_> {
    EventView {
        event_type: "hook.pre_tool",
        id: 7,
        timestamp: UNIX_EPOCH + Duration::from_secs(1_780_000_000),
        data,
    }
}

/// Each expression compiled once, for every case.
static CONDITIONS: LazyLock<Vec<CelCondition>> = LazyLock::new(|| {
    EXPRESSIONS
        .iter()
        .map(|source| CelCondition::compile(source, "test").unwrap())
        .collect()
});

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn every_expression_answers_as_the_interpreter_does(data in payload()) {
        for (source, condition) in EXPRESSIONS.iter().zip(CONDITIONS.iter()) {
            let expected = reference(source, view(&data));
            let got = condition.evaluate(view(&data));
            prop_assert_eq!(
                got.as_ref().ok(), expected.as_ref().ok(),
                "{} on {}: got {:?}, the interpreter {:?}", source, data, got, expected
            );
            // `matches` counts exactly the events the condition cannot be evaluated for.
            let errors = condition.errors();
            prop_assert_eq!(condition.matches(view(&data)), expected == Ok(true));
            prop_assert_eq!(condition.errors() - errors, u64::from(expected.is_err()));
        }
    }
}

#[test]
fn the_hook_payload_answers_as_the_interpreter_does() {
    let data = json!({
        "session_id": "abc123", "cwd": "/home/me/demo", "hook_event_name": "PreToolUse",
        "tool_name": "Write", "n": 3, "l": [1, "a"],
        "tool_input": {"file_path": "/home/me/demo/notes.txt", "content": "line one"}
    });
    let mut answered = 0;
    for source in EXPRESSIONS {
        let condition = CelCondition::compile(source, "test").unwrap();
        let expected = reference(source, view(&data));
        assert_eq!(
            condition.evaluate(view(&data)).ok(),
            expected.clone().ok(),
            "{source}"
        );
        answered += usize::from(expected.is_ok());
    }
    // Most of the set evaluates on this payload: the comparison is not all errors.
    assert!(
        answered * 3 > EXPRESSIONS.len() * 2,
        "{answered} of {}",
        EXPRESSIONS.len()
    );
}
