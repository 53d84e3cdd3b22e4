//! The content hooks: a validator before dispatch, conditions on subscriptions and on the
//! allow-list.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bus_core::{
    Condition, Event, EventBus, EventView, HandlerResult, Invalid, Refusal, Subscriber, Validator,
    Violation, async_trait,
};
use serde_json::{Value, json};

/// `data.tool == <tool>`, counting its calls.
struct ToolIs(&'static str, AtomicUsize);

impl Condition for ToolIs {
    fn matches(&self, event: EventView<'_>) -> bool {
        self.1.fetch_add(1, Ordering::Relaxed);
        event.data["tool"] == self.0
    }
    fn source(&self) -> &str {
        self.0
    }
}

fn tool_is(tool: &'static str) -> Arc<ToolIs> {
    Arc::new(ToolIs(tool, AtomicUsize::new(0)))
}

struct NeedsTool;

impl Validator for NeedsTool {
    fn validate(&self, event_type: &str, data: &Value) -> Result<(), Invalid> {
        if data.get("tool").is_some_and(Value::is_string) {
            return Ok(());
        }
        Err(Invalid {
            event_type: event_type.to_owned(),
            violations: vec![Violation {
                pointer: "/tool".into(),
                message: "required string".into(),
            }],
        })
    }
}

#[test]
fn on_where_runs_only_for_matching_content_after_the_pattern() {
    let bus = EventBus::new();
    let edit = tool_is("Edit");
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    bus.on_where("hook.*", edit.clone(), move |_: &Event| {
        h.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap();
    let all = Arc::new(AtomicUsize::new(0));
    let a = all.clone();
    bus.on("*", move |_: &Event| {
        a.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap();
    bus.publish("hook.pre", json!({"tool": "Edit"}));
    bus.publish("hook.pre", json!({"tool": "Read"}));
    bus.publish("other", json!({"tool": "Edit"}));
    assert_eq!(hits.load(Ordering::Relaxed), 1);
    assert_eq!(
        all.load(Ordering::Relaxed),
        3,
        "patterns-only handlers see all"
    );
    assert_eq!(edit.1.load(Ordering::Relaxed), 2, "not asked for `other`");
}

struct Collect(std::sync::Mutex<Vec<u64>>, Arc<ToolIs>);

#[async_trait]
impl Subscriber for Collect {
    fn name(&self) -> &str {
        "collect"
    }
    fn patterns(&self) -> Vec<String> {
        vec!["*".into()]
    }
    fn condition(&self) -> Option<Arc<dyn Condition>> {
        Some(self.1.clone())
    }
    async fn handle(&self, event: Event) -> HandlerResult {
        self.0.lock().unwrap().push(event.id());
        Ok(())
    }
}

#[tokio::test]
async fn subscribers_and_async_handlers_with_a_condition_get_only_matches() {
    let bus = EventBus::new();
    let sub = Arc::new(Collect(Default::default(), tool_is("Write")));
    bus.subscribe(sub.clone()).unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    bus.on_async_where("*", tool_is("Edit"), move |_e: Event| {
        let s = s.clone();
        async move {
            s.fetch_add(1, Ordering::Relaxed);
        }
    })
    .unwrap();
    let w = bus.try_publish("a", json!({"tool": "Write"})).unwrap();
    bus.publish("a", json!({"tool": "Edit"}));
    bus.publish("a", json!({}));
    bus.flush().await;
    assert_eq!(*sub.0.lock().unwrap(), [w.id()]);
    assert_eq!(seen.load(Ordering::Relaxed), 1);
}

#[test]
fn the_allow_list_condition_filters_and_counts() {
    let bus = EventBus::builder()
        .filters(["hook.*"])
        .filter_where(tool_is("Edit"))
        .build()
        .unwrap();
    assert_eq!(bus.filter_where().as_deref(), Some("Edit"));
    assert!(bus.publish("hook.a", json!({"tool": "Edit"})));
    assert_eq!(
        bus.try_publish("hook.a", json!({"tool": "Read"})).err(),
        Some(Refusal::Filtered)
    );
    assert_eq!(
        bus.admit_event("hook.a", &json!({"tool": "Read"})),
        Err(Refusal::Filtered)
    );
    assert_eq!(bus.admit_event("hook.a", &json!({"tool": "Edit"})), Ok(()));
    let given = Event::new(99, "hook.a", json!({"tool": "Read"}));
    assert_eq!(bus.try_publish_event(given).err(), Some(Refusal::Filtered));
    assert_eq!(
        bus.recent_events(10).len(),
        1,
        "refused events are not recorded"
    );
    assert_eq!(bus.stats().events_filtered, 3);
    bus.set_filter_where(None);
    assert!(bus.publish("hook.a", json!({"tool": "Read"})));
}

#[test]
fn a_validator_refuses_in_process_publishes_with_the_reason() {
    let bus = EventBus::builder()
        .validator(Arc::new(NeedsTool))
        .build()
        .unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    bus.on("*", move |_: &Event| {
        s.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap();
    let err = bus.try_publish("a", json!({"tool": 1})).unwrap_err();
    let Refusal::Invalid(invalid) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(invalid.violations[0].to_string(), "/tool: required string");
    assert_eq!(
        err.to_string(),
        "a does not match its schema: /tool: required string"
    );
    assert!(!bus.publish("a", json!(null)));
    assert!(bus.validate("a", &json!({})).is_err());
    assert!(bus.publish("a", json!({"tool": "x"})));
    assert_eq!(seen.load(Ordering::Relaxed), 1);
    assert_eq!(bus.stats().events_published, 1);
    // A given event (from a durable log) was checked before it was stored.
    assert!(
        bus.try_publish_event(Event::new(50, "a", json!(null)))
            .is_ok()
    );
    bus.set_validator(None);
    assert!(bus.publish("a", json!(null)));
}
