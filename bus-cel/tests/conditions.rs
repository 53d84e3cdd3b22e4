//! Compiling and evaluating CEL conditions against events.

use std::time::{Duration, UNIX_EPOCH};

use bus_cel::{CelCondition, CelError, Condition};
use bus_core::EventView;
use proptest::prelude::*;
use serde_json::{Value, json};

fn view<'a>(event_type: &'a str, data: &'a Value) -> EventView<'a> {
    EventView {
        event_type,
        id: 7,
        timestamp: UNIX_EPOCH + Duration::from_secs(1_780_000_000),
        data,
    }
}

#[test]
fn conditions_see_type_id_timestamp_and_data() {
    let data = json!({"tool_name": "Edit", "n": 3, "nested": {"list": [1, 2.5, null, true]}});
    for (expr, expected) in [
        (
            r#"type.startsWith("hook.") && data.tool_name in ["Edit", "Write"]"#,
            true,
        ),
        (r#"data.tool_name == "Read""#, false),
        ("id == 7u && data.n > 2", true),
        (r#"timestamp > "2026-01-01" && timestamp < "2027""#, true),
        (
            "size(data.nested.list) == 4 && data.nested.list[1] == 2.5",
            true,
        ),
        ("has(data.cwd)", false),
        (r#"data.nested.list.exists(x, x == true)"#, true),
    ] {
        let c = CelCondition::compile(expr, "test").unwrap();
        assert_eq!(c.matches(view("hook.pre_tool", &data)), expected, "{expr}");
        assert_eq!(c.errors(), 0, "{expr}: {:?}", c.last_error());
    }
}

#[test]
fn a_failure_on_one_event_is_no_match_and_counted() {
    let c = CelCondition::compile(r#"data.tool_name == "Edit""#, "test").unwrap();
    assert!(!c.matches(view("a", &json!({}))));
    assert!(!c.matches(view("a", &json!(null))));
    assert_eq!(c.errors(), 2);
    assert!(
        c.last_error().unwrap().contains("event 7"),
        "{:?}",
        c.last_error()
    );
    assert!(c.matches(view("a", &json!({"tool_name": "Edit"}))));
    let not_bool = CelCondition::compile("data.n", "test").unwrap();
    assert!(!not_bool.matches(view("a", &json!({"n": 1}))));
    assert_eq!(not_bool.errors(), 1);
}

#[test]
fn syntax_errors_name_the_origin_and_the_column() {
    let err = CelCondition::compile("data.x == ", "CLAUDE_MPM_RELAY_WHERE").unwrap_err();
    let CelError::Syntax { column, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*column, 11, "{err}"); // just past the end: an operand was expected
    let text = err.to_string();
    assert!(text.starts_with("CLAUDE_MPM_RELAY_WHERE: "), "{text}");
    assert!(text.contains("column 11"), "{text}");
    let err = CelCondition::compile("tool_name == 'x'", "where").unwrap_err();
    assert!(
        matches!(err, CelError::UnknownVariable { ref name, .. } if name == "tool_name"),
        "{err}"
    );
    assert!(
        err.to_string().contains("type, id, timestamp and data"),
        "{err}"
    );
}

proptest! {
    /// A numeric comparison agrees with Rust's, whatever the payload's number.
    #[test]
    fn comparisons_agree_with_rust(n in any::<i64>(), k in -1000i64..1000) {
        let c = CelCondition::compile(&format!("data.n > {k}"), "test").unwrap();
        let data = json!({"n": n});
        prop_assert_eq!(c.matches(view("t", &data)), n > k);
        prop_assert_eq!(c.errors(), 0);
    }
}
