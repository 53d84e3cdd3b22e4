//! The web view (`GET /`) in a real browser: Debian's headless Chromium, driven through
//! chromedriver (WebDriver, with fantoccini) on a free loopback port, against the daemon as
//! a process.
//!
//! Without a token: the page loads with no console error (chromedriver's browser log), an
//! event posted after load shows within 1 s, the type filter hides what does not match,
//! pause + 50 posted + resume shows all 50 (the page resumes with `Last-Event-ID`), an
//! `<img onerror>` payload shows as text and runs nothing, history pages from the oldest, and
//! under a flood the table keeps at most 1,000 rows while every event is counted; a
//! screenshot of the page under load is saved under the target dir. With a token: only the
//! login form loads, the stream and `/stats` answer 401 until the login, a wrong token is
//! refused, and after it the session cookie (not readable by the page) carries the stream.
//!
//! chromedriver runs in a process group of its own, so that it and every Chromium process
//! it started are ended together; the check then looks for any process still using its
//! profile directory and fails if one is left.

pub(crate) mod driver;
mod flood;

use std::path::Path;
use std::time::{Duration, Instant};

use fantoccini::Client;
use serde_json::{Value, json};

use super::Env;
use super::peers::{Daemon, free_port};
use driver::{
    Chromedriver, browser, click, console, find, js, no_console_errors, page_text, wait_gone,
    wait_js,
};

/// The check's name in the integration table.
pub(crate) const NAME: &str = "web view in headless Chromium (WebDriver)";

/// The page must show an event this soon after it was posted.
const SHOWN_WITHIN: Duration = Duration::from_secs(1);
/// Any other wait in the browser.
const PATIENCE: Duration = Duration::from_secs(30);
const TOKEN: &str = "web-view-check-token-5f1c";
const XSS: &str = "<img src=x onerror=alert(1)>";

/// Installs the browser if needed, runs both daemons' checks, and leaves no browser behind.
pub(crate) fn check(env: &Env) -> Result<String, String> {
    crate::setup::ensure_browser()?;
    let profile = env.work.join("chromium-profile");
    let _ = std::fs::remove_dir_all(&profile);
    let port = free_port()?;
    let driver = Chromedriver::start(env, port)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let result = runtime.block_on(run_all(env, port, &profile));
    driver.stop();
    let left = wait_gone(&profile);
    let summary = result?;
    if left.is_empty() {
        Ok(summary)
    } else {
        Err(format!(
            "{summary}; but chromium processes outlived chromedriver (pids {left:?}, now killed)"
        ))
    }
}

async fn run_all(env: &Env, port: u16, profile: &Path) -> Result<String, String> {
    let open = without_token(env, port, profile).await?;
    let token = with_token(env, port, profile).await?;
    Ok(format!("{open}; {token}"))
}

async fn wait_live(client: &Client) -> Result<(), String> {
    let answered = wait_js(
        client,
        "the stream to be live",
        "return document.getElementById('conn').dataset.state === 'live';",
        PATIENCE,
    )
    .await;
    match answered {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("{e}; the page says: {}", page_text(client).await)),
    }
}

/// Types `pattern` into the filter box and applies it, as a person would.
async fn set_filter(client: &Client, pattern: &str) -> Result<(), String> {
    let input = find(client, "#pattern").await?;
    input
        .clear()
        .await
        .map_err(|e| format!("clearing the filter: {e}"))?;
    if !pattern.is_empty() {
        input
            .send_keys(pattern)
            .await
            .map_err(|e| format!("typing the filter: {e}"))?;
    }
    click(client, "#apply").await?;
    wait_js(
        client,
        "the filter to clear the table",
        "return document.querySelectorAll('#rows tr').length === 0;",
        PATIENCE,
    )
    .await?;
    wait_live(client).await
}

/// How many live rows have a type starting with `prefix`.
async fn rows_of(client: &Client, prefix: &str) -> Result<u64, String> {
    let script = format!(
        "return [...document.querySelectorAll('#rows tr')].filter(r => r.dataset.type.startsWith({})).length;",
        json!(prefix)
    );
    Ok(js(client, &script).await?.as_u64().unwrap_or(0))
}

/// The daemon for the checks: no relay, no bus filters, an in-memory log.
pub(crate) fn daemon(env: &Env, extra: &[(&str, &str)]) -> Result<Daemon, String> {
    let mut all = vec![
        ("CLAUDE_MPM_RELAY_ENABLED", "false"),
        ("CLAUDE_MPM_EVENTBUS_FILTERS", ""),
        ("CLAUDE_MPM_EVENTBUS_STORE", "memory"),
        ("CLAUDE_MPM_EVENTBUS_LOGGING", "false"),
    ];
    all.extend_from_slice(extra);
    Daemon::start(env, free_port()?, &all)
}

fn post(daemon: &Daemon, token: Option<&str>, events: &[(String, Value)]) -> Result<(), String> {
    let body: String = events
        .iter()
        .map(|(t, d)| format!("{}\n", json!({"type": t, "data": d})))
        .collect();
    let mut request = ureq::post(&daemon.url("/events")).content_type("application/x-ndjson");
    if let Some(token) = token {
        request = request.header("authorization", &format!("Bearer {token}"));
    }
    let reply: Value = request
        .send(body)
        .map_err(|e| format!("POST /events: {e}"))?
        .body_mut()
        .read_json()
        .map_err(|e| format!("POST /events reply: {e}"))?;
    if reply["accepted"].as_u64() == Some(events.len() as u64) {
        Ok(())
    } else {
        Err(format!("POST /events: not all accepted: {reply}"))
    }
}

fn one(event_type: &str, data: Value) -> Vec<(String, Value)> {
    vec![(event_type.to_owned(), data)]
}

async fn without_token(env: &Env, port: u16, profile: &Path) -> Result<String, String> {
    let daemon = daemon(env, &[])?;
    let client = browser(port, profile).await?;
    let result = open_checks(&client, port, &daemon).await;
    let _ = client.close().await;
    result
}

async fn open_checks(client: &Client, port: u16, daemon: &Daemon) -> Result<String, String> {
    client
        .goto(&daemon.url("/"))
        .await
        .map_err(|e| format!("opening the page: {e}"))?;
    wait_live(client).await?;
    no_console_errors(client, port, "while loading the page").await?;

    // An event posted after load shows within a second.
    post(daemon, None, &one("web.first", json!({"n": 1})))?;
    let posted = Instant::now();
    wait_js(
        client,
        "the first event's row",
        "return document.querySelector('#rows tr[data-type=\"web.first\"]') !== null;",
        SHOWN_WITHIN,
    )
    .await?;
    let latency = posted.elapsed();

    // The filter goes to the server: what does not match never reaches the table.
    set_filter(client, "keep.*").await?;
    let mixed: Vec<(String, Value)> = (0..10)
        .flat_map(|n| {
            [
                ("drop.x".to_owned(), json!({"n": n})),
                ("keep.x".to_owned(), json!({"n": n})),
            ]
        })
        .collect();
    post(daemon, None, &mixed)?;
    wait_js(
        client,
        "the ten keep.x rows",
        "return document.querySelectorAll('#rows tr[data-type=\"keep.x\"]').length === 10;",
        PATIENCE,
    )
    .await?;
    let hidden = rows_of(client, "drop.").await?;
    if hidden != 0 {
        return Err(format!(
            "the filter keep.* let {hidden} drop.x rows through"
        ));
    }

    // A CEL condition beside the pattern, applied by the server: only n >= 7 of keep.x.
    let condition = find(client, "#where").await?;
    condition
        .send_keys("data.n >= 7")
        .await
        .map_err(|e| format!("typing the condition: {e}"))?;
    set_filter(client, "keep.*").await?;
    post(daemon, None, &mixed)?;
    wait_js(
        client,
        "the three keep.x rows with n >= 7",
        "return document.querySelectorAll('#rows tr[data-type=\"keep.x\"]').length === 3;",
        PATIENCE,
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (kept, dropped) = (
        rows_of(client, "keep.").await?,
        rows_of(client, "drop.").await?,
    );
    if (kept, dropped) != (3, 0) {
        return Err(format!(
            "the condition data.n >= 7 showed {kept} keep.x and {dropped} drop.x rows (expected 3 and 0)"
        ));
    }
    condition
        .clear()
        .await
        .map_err(|e| format!("clearing the condition: {e}"))?;

    // Pause, 50 events, resume: all 50, each once.
    set_filter(client, "pause.*").await?;
    click(client, "#pause").await?;
    wait_js(
        client,
        "the page to pause",
        "return document.getElementById('conn').dataset.state === 'paused';",
        PATIENCE,
    )
    .await?;
    let fifty: Vec<(String, Value)> = (0..50)
        .map(|n| ("pause.n".to_owned(), json!({"n": n})))
        .collect();
    post(daemon, None, &fifty)?;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let while_paused = rows_of(client, "pause.").await?;
    if while_paused != 0 {
        return Err(format!("{while_paused} rows arrived while paused"));
    }
    click(client, "#pause").await?;
    wait_js(
        client,
        "the 50 events posted while paused",
        "return document.querySelectorAll('#rows tr[data-type=\"pause.n\"]').length >= 50;",
        PATIENCE,
    )
    .await?;
    let numbers = js(
        client,
        "return [...document.querySelectorAll('#rows tr[data-type=\"pause.n\"]')].map(r => JSON.parse(r.lastChild.textContent).n).sort((a, b) => a - b);",
    )
    .await?;
    if numbers != json!((0..50).collect::<Vec<u32>>()) {
        return Err(format!(
            "after resume the rows were n = {numbers}, not 0..49 once each"
        ));
    }

    // A payload that is markup shows as text, in the table and in the detail.
    set_filter(client, "").await?;
    post(
        daemon,
        None,
        &[
            ("xss.img".to_owned(), json!(XSS)),
            (
                "xss.script".to_owned(),
                json!({"html": "<script>window.pwned = 1</script>", "type": XSS}),
            ),
        ],
    )?;
    wait_js(
        client,
        "the markup payload's rows",
        "return document.querySelectorAll('#rows tr[data-type^=\"xss.\"]').length === 2;",
        PATIENCE,
    )
    .await?;
    let shown = js(
        client,
        "return document.querySelector('#rows tr[data-type=\"xss.img\"]').lastChild.textContent;",
    )
    .await?;
    if shown != json!(format!("{}", json!(XSS))) {
        return Err(format!(
            "the markup payload showed as {shown}, not as its JSON text"
        ));
    }
    click(client, "#rows tr[data-type=\"xss.img\"] td").await?;
    let detail = js(
        client,
        "return document.getElementById('json').textContent;",
    )
    .await?;
    if !detail.as_str().is_some_and(|d| d.contains(XSS)) {
        return Err(format!("the detail of the markup payload is {detail}"));
    }
    let ran = js(
        client,
        "return {imgs: document.querySelectorAll('img').length, scripts: document.querySelectorAll('script').length, pwned: window.pwned === 1};",
    )
    .await?;
    if ran != json!({"imgs": 0, "scripts": 1, "pwned": false}) {
        return Err(format!("the markup payload became markup: {ran}"));
    }
    if client.get_alert_text().await.is_ok() {
        return Err("an alert is open: the payload ran".into());
    }
    let curl = js(
        client,
        "return document.getElementById('curl').textContent;",
    )
    .await?;
    if !curl
        .as_str()
        .is_some_and(|c| c.starts_with("curl -X POST ") && c.contains("xss.img"))
    {
        return Err(format!("copy-as-curl shows {curl}"));
    }

    // Totals and consumers follow /stats live; the page's own stream is counted.
    let published = daemon.get_json("/stats")?["events_published"]
        .as_u64()
        .ok_or("/stats has no events_published")?;
    wait_js(
        client,
        "the totals and consumers to follow /stats",
        &format!(
            "return Number(document.getElementById('t-published').textContent.replace(/\\D/g, '')) === {published}
                && document.getElementById('consumer-rows').textContent.includes('SSE clients: 1 open');"
        ),
        PATIENCE,
    )
    .await?;

    // History from the oldest stored event.
    click(client, "#oldest").await?;
    let first_id = wait_js(
        client,
        "the history's first page",
        "const r = document.querySelector('#history-rows tr'); return r && r.dataset.id;",
        PATIENCE,
    )
    .await?;
    if first_id != json!("1") {
        return Err(format!(
            "history from the oldest starts at id {first_id}, not 1"
        ));
    }
    no_console_errors(client, port, "during the checks").await?;

    let flood = flood::flood(client, daemon).await?;
    no_console_errors(client, port, "under load").await?;
    Ok(format!(
        "no console errors; shown {} ms after the post; filter and CEL condition (3 of 10), pause/resume (50 of 50), markup as text, totals and consumers live, history; {flood}",
        latency.as_millis()
    ))
}

async fn with_token(env: &Env, port: u16, profile: &Path) -> Result<String, String> {
    let daemon = daemon(env, &[("CLAUDE_MPM_EVENTBUS_TOKEN", TOKEN)])?;
    let client = browser(port, profile).await?;
    let result = token_checks(&client, port, &daemon).await;
    let _ = client.close().await;
    result
}

async fn token_checks(client: &Client, port: u16, daemon: &Daemon) -> Result<String, String> {
    client
        .goto(&daemon.url("/"))
        .await
        .map_err(|e| format!("opening the page: {e}"))?;
    find(client, "form#login").await?;
    let page = js(client, "return {rows: document.getElementById('rows') !== null, scripts: document.scripts.length};").await?;
    if page != json!({"rows": false, "scripts": 0}) {
        return Err(format!(
            "without a session the page loaded more than the login form: {page}"
        ));
    }
    no_console_errors(client, port, "on the login form").await?;
    let refused = js_fetch_statuses(client).await?;
    if refused != json!([401, 401]) {
        return Err(format!(
            "before login the stream and /stats answered {refused}, not 401"
        ));
    }
    // The deliberate 401s are in the console; start afresh after them.
    console(client, port).await?;

    login(client, "not-the-token").await?;
    find(client, "#login-error").await?;
    // The refused login's 401 is in the console too.
    console(client, port).await?;
    login(client, TOKEN).await?;
    wait_live(client).await?;
    let url = client
        .current_url()
        .await
        .map_err(|e| format!("current url: {e}"))?;
    if url.as_str().contains(TOKEN) || url.path() != "/" {
        return Err(format!("after login the page is at {url}"));
    }
    let cookies = js(client, "return document.cookie;").await?;
    if cookies != json!("") {
        return Err(format!(
            "the page can read its cookies ({cookies}): the session is not HttpOnly"
        ));
    }
    post(daemon, Some(TOKEN), &one("auth.ok", json!({"ok": true})))?;
    wait_js(
        client,
        "the event posted with the token",
        "return document.querySelector('#rows tr[data-type=\"auth.ok\"]') !== null;",
        PATIENCE,
    )
    .await?;
    let allowed = js_fetch_statuses(client).await?;
    if allowed != json!([200, 200]) {
        return Err(format!(
            "after login the stream and /stats answered {allowed}"
        ));
    }
    no_console_errors(client, port, "after login").await?;
    Ok("with a token: login form only, stream and /stats 401 until login, wrong token refused, then live over an HttpOnly session cookie".into())
}

async fn login(client: &Client, token: &str) -> Result<(), String> {
    let field = find(client, "#token").await?;
    field
        .clear()
        .await
        .map_err(|e| format!("clearing the token field: {e}"))?;
    field
        .send_keys(token)
        .await
        .map_err(|e| format!("typing the token: {e}"))?;
    click(client, "#login button").await?;
    let answered = wait_js(
        client,
        "the login answer",
        "return document.readyState === 'complete' && (document.getElementById('rows') !== null || document.getElementById('login-error') !== null);",
        PATIENCE,
    )
    .await;
    match answered {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("{e}; the page says: {}", page_text(client).await)),
    }
}

/// The statuses of `GET /events/stream` and `GET /stats` fetched from the page.
async fn js_fetch_statuses(client: &Client) -> Result<Value, String> {
    let script = "const done = arguments[0];
        const stream = new AbortController();
        Promise.all([
            fetch('/events/stream', {signal: stream.signal}).then(r => { const s = r.status; stream.abort(); return s; }),
            fetch('/stats').then(r => r.status),
        ]).then(done, e => done(String(e)));";
    client
        .execute_async(script, Vec::new())
        .await
        .map_err(|e| format!("fetching from the page: {e}"))
}
