// `EventLog::read_rendered`'s cases, `include!`d after cases.rs (whose imports and helpers
// they use) by bus-store's tests/contract.rs and by bus-redis's.

// A rendering that shows every field, so any difference from `read` shows.
fn rendered_text(event: bus_store::EventRef<'_>, out: &mut String) {
    let at = event.timestamp.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    out.push_str(&format!(
        "{}|{}|{}|{}|{:?};",
        event.id.0,
        event.event_type,
        event.data,
        at.as_micros(),
        event.priority
    ));
}

#[tokio::test]
async fn a_rendered_page_is_the_page_read_renders() {
    use bus_store::Priority;
    for backend in BACKENDS {
        let subject = subject(backend, keep_all());
        let log = &*subject.log;
        let start = SystemTime::now() - Duration::from_secs(60);
        let batch = (0..25)
            .map(|n| {
                let event_type = if n % 3 == 0 { "hook.pre_tool" } else { "other" };
                let event = event_at(event_type, n, start + Duration::from_secs(n));
                if n % 4 == 0 { event.with_priority(Priority::High) } else { event }
            })
            .collect();
        let ids = log.append(batch).await.unwrap();
        let queries = [
            ReadQuery::after(None, 10),
            ReadQuery::after(Some(ids[3]), 7),
            ReadQuery::after(Some(ids[24]), 7),
            ReadQuery {
                pattern: Some("hook.*".to_owned()),
                ..ReadQuery::after(None, 4)
            },
            ReadQuery {
                since: Some(start + Duration::from_secs(20)),
                ..ReadQuery::after(None, 100)
            },
        ];
        for query in queries {
            let page = log.read(query.clone()).await.unwrap();
            let mut expected = String::from("page:");
            for event in &page.events {
                rendered_text(event.borrowed(), &mut expected);
            }
            let rendered = log
                .read_rendered(query.clone(), "page:".to_owned(), Box::new(rendered_text))
                .await
                .unwrap();
            assert_eq!(rendered.text, expected, "{backend}: {query:?}");
            assert_eq!(rendered.events, page.events.len(), "{backend}: {query:?}");
            assert_eq!(rendered.next, page.next, "{backend}: {query:?}");
            assert_eq!(rendered.missed, page.missed, "{backend}: {query:?}");
        }
    }
}
