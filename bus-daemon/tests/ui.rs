//! The web view's HTTP side, the daemon as a real process: the page and its assets compiled
//! in and served with a strict Content-Security-Policy, the startup line and `eventbus open`
//! naming the page, and with a token: the login form alone, the API refused until
//! `POST /ui/login`, whose session cookie (HttpOnly, SameSite=Strict) then carries the reads
//! and the stream but never a publish. (The page itself runs in Chromium in
//! `cargo xtask integration`.)

mod common;

use std::time::Duration;

use common::*;
use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};

const TOKEN: &str = "ui-test-token-7d2e";

fn start(envs: &[(&str, &str)]) -> Daemon {
    let mut all = vec![("CLAUDE_MPM_EVENTBUS_STORE", "memory")];
    all.extend_from_slice(envs);
    Daemon::start(&all)
}

/// A client that shows redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_assets_are_served_under_a_strict_policy() {
    let mut daemon = start(&[]);
    let response = client().get(daemon.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let csp = response.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(csp, bus_daemon::ui::CONTENT_SECURITY_POLICY);
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp} lacks {part}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert!(
        response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{:?}",
        response.headers()
    );
    let html = response.text().await.unwrap();
    // No inline script: each <script> loads its code from the daemon.
    let scripts: Vec<&str> = html.split("<script").skip(1).collect();
    assert_eq!(scripts.len(), 1, "{html}");
    assert!(
        scripts[0].trim_start().starts_with("src=\"/ui/app.js\""),
        "{html}"
    );
    assert!(
        !html.contains("style=\""),
        "inline styles are refused by the policy"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing from elsewhere"
    );

    for (path, content_type, needle) in [
        ("/ui/app.js", "text/javascript", "textContent"),
        ("/ui/style.css", "text/css", "table"),
        ("/ui/icon.svg", "image/svg+xml", "<svg"),
    ] {
        let response = client().get(daemon.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert!(
            response.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with(content_type),
            "{path}"
        );
        assert_eq!(
            response.headers()["x-content-type-options"],
            "nosniff",
            "{path}"
        );
        let body = response.text().await.unwrap();
        assert!(body.contains(needle), "{path}");
    }
    let js = get_text(&daemon.url("/ui/app.js")).await.1;
    for sink in [
        ".innerHTML",
        ".outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
    ] {
        assert!(!js.contains(sink), "app.js uses {sink}");
    }
    // The page reads the same stream every client does.
    assert!(js.contains("/events/stream?") && js.contains("Last-Event-ID"));

    let info = get_json(&daemon.url("/ui/info")).await;
    assert_eq!(info["auth"], false, "{info}");
    assert_eq!(info["where"], true, "the stream takes ?where=: {info}");

    // The startup line and `eventbus open` name the page.
    let line = daemon.stderr_text();
    let url = format!("http://{}/", daemon.addr);
    assert!(line.contains(&format!("web view: {url}")), "{line}");
    let addr = daemon.addr.to_string();
    let out = run(&["open", "--addr", &addr], &[], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{url}\n"));
    daemon.sigterm();
    daemon.wait_exit(Duration::from_secs(30));
    let out = run(&["open", "--addr", &addr], &[], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains(&url), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_the_page_needs_a_login_and_the_session_only_reads() {
    let daemon = start(&[("CLAUDE_MPM_EVENTBUS_TOKEN", TOKEN)]);
    let http = no_redirects();

    // Before login: the login form, and nothing else answers.
    let (status, page) = get_text(&daemon.url("/")).await;
    assert_eq!(status, 200);
    assert!(page.contains("action=\"/ui/login\""), "{page}");
    assert!(
        !page.contains("<script"),
        "the login form loads no script: {page}"
    );
    for path in [
        "/events/stream",
        "/stats",
        "/events",
        "/ui/info",
        "/events/recent",
    ] {
        let (status, _) = get_text(&daemon.url(path)).await;
        assert_eq!(status, 401, "{path} before login");
    }

    // A wrong token: 401, no cookie.
    let wrong = http
        .post(daemon.url("/ui/login"))
        .form(&[("token", "not-it")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get(SET_COOKIE).is_none());
    assert!(wrong.text().await.unwrap().contains("Wrong token"));

    // The browser rules still hold for the login: another site's page is refused.
    let foreign = http
        .post(daemon.url("/ui/login"))
        .header("origin", "http://evil.example")
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    assert!(foreign.headers().get(SET_COOKIE).is_none());

    // The right token: a redirect to the page with a session cookie that is not the token.
    let login = http
        .post(daemon.url("/ui/login"))
        .header("origin", format!("http://{}", daemon.addr))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    assert_eq!(login.headers()[LOCATION], "/");
    let set_cookie = login.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let name = format!("eventbus_session_{}=", daemon.addr.port());
    assert!(set_cookie.starts_with(&name), "{set_cookie}");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(part), "{set_cookie} lacks {part}");
    }
    assert!(!set_cookie.contains(TOKEN), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();

    let with_cookie = |path: &str| http.get(daemon.url(path)).header(COOKIE, cookie.clone());
    for path in ["/stats", "/events", "/ui/info"] {
        let response = with_cookie(path).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path} with the session");
    }
    let page = with_cookie("/").send().await.unwrap().text().await.unwrap();
    assert!(page.contains("/ui/app.js"), "{page}");

    // The stream runs on the session: an event posted with the token arrives on it.
    let mut stream = with_cookie("/events/stream").send().await.unwrap();
    assert_eq!(stream.status(), 200);
    let (status, _) = post_with_token(&daemon, "ui.seen", Some(TOKEN)).await;
    assert_eq!(status, 200);
    let mut got = String::new();
    while !got.contains("ui.seen") {
        let chunk = tokio::time::timeout(Duration::from_secs(30), stream.chunk())
            .await
            .expect("the event on the stream")
            .unwrap()
            .expect("the stream stays open");
        got.push_str(&String::from_utf8_lossy(&chunk));
    }
    let stats: serde_json::Value = with_cookie("/stats")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["sse"]["open"], 1, "{stats}");
    drop(stream);

    // A session reads; it never publishes.
    let publish = http
        .post(daemon.url("/events"))
        .header(COOKIE, cookie.clone())
        .header("content-type", "application/json")
        .body(r#"{"type": "ui.forged", "data": null}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(publish.status(), 401);

    // Logout ends the session and clears the cookie.
    let logout = http
        .post(daemon.url("/ui/logout"))
        .header(COOKIE, cookie.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 303);
    assert!(
        logout.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(with_cookie("/stats").send().await.unwrap().status(), 401);
}

async fn post_with_token(daemon: &Daemon, event_type: &str, token: Option<&str>) -> (u16, String) {
    let mut request = client()
        .post(daemon.url("/events"))
        .header("content-type", "application/json")
        .body(format!(r#"{{"type": "{event_type}", "data": {{}}}}"#));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}
