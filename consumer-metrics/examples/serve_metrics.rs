//! Publishes a stream of events and serves their metrics.
//!
//! ```text
//! cargo run -p consumer-metrics --example serve_metrics            # 127.0.0.1:9464, runs 60 s
//! cargo run -p consumer-metrics --example serve_metrics -- 127.0.0.1:0 5
//! curl -s http://127.0.0.1:9464/metrics
//! ```
//!
//! It also prints one rendering to stdout at the end, so running it shows the output even
//! without `curl`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bus_core::EventBus;
use consumer_metrics::install_prometheus;
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args.next().as_deref().unwrap_or("127.0.0.1:9464").parse()?;
    let seconds: u64 = args.next().as_deref().unwrap_or("60").parse()?;

    let bus = EventBus::builder().filters(["hook.*", "agent.*"]).build()?;
    let server = install_prometheus(&bus, addr)?;
    eprintln!(
        "scrape http://{}/metrics for the next {seconds} s",
        server.local_addr()
    );
    bus.on("hook.error", |_: &bus_core::Event| {
        Err::<(), _>("this handler always fails")
    })?;
    bus.on_async("agent.*", |_| async {
        tokio::time::sleep(Duration::from_millis(2)).await;
    })?;

    let end = Instant::now() + Duration::from_secs(seconds);
    let mut i = 0u64;
    while Instant::now() < end {
        let kind = [
            "hook.pre_tool",
            "hook.post_tool",
            "hook.error",
            "agent.step",
            "noise",
        ][(i % 5) as usize];
        bus.publish(kind, json!({"seq": i}));
        i += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    bus.flush_blocking(Duration::from_secs(5))?;
    #[allow(clippy::print_stdout)]
    {
        println!("{}", server.metrics().render());
    }
    Ok(())
}
