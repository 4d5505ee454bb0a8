//! `fpga-sync watch`: sets up logging, the agent and what wakes it, and runs the service
//! loop of [`crate::reconcile::watch`] until SIGTERM, SIGINT or `--max-runs` (exit 0), or
//! until the agent's configuration proves wrong (exit 1: at startup, a cloud that cannot be
//! resolved; later, a fatal pass). I/O: stderr (tracing).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::sync::Notify;
use tracing::{error, info, warn};

use crate::cli::WatchArgs;
use crate::reconcile::rollout::Mode;
use crate::reconcile::watch::{self, Agent, Wakers, WatchConfig, metrics, triggers};
use crate::reconcile::{self, Needs};

/// The loop's configuration from the command line. Intervals of 0 are taken as the
/// shortest sensible ones (1 s; 1 ms for the debounce).
pub fn config(args: &WatchArgs) -> WatchConfig {
    let secs = |s: u64| Duration::from_secs(s.max(1));
    let mut options = args
        .driver
        .host_options(&args.host, &args.site.name, args.allow_busy);
    options.rollouts = Mode::Act;
    WatchConfig {
        options,
        spec: args.source.spec(),
        poll: secs(args.poll),
        debounce: Duration::from_millis(args.debounce.max(1)),
        verify_every: secs(args.verify_every),
        resync_every: secs(args.resync_every),
        max_backoff: secs(args.max_backoff),
        status_file: args
            .status_file
            .clone()
            .unwrap_or_else(|| args.driver.state_dir.join("status.json")),
        max_runs: args.max_runs,
        lease: args.lease.options("watch"),
    }
}

/// The metrics address: `none` (or empty) serves none.
fn metrics_address(text: &str) -> Result<Option<std::net::SocketAddr>, String> {
    if text.is_empty() || text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|e| {
        format!("`--metrics-address {text}` is not an address and port (e.g. 127.0.0.1:9847) or `none`: {e}")
    })
}

/// Runs `watch`; returns the exit code (0 after a clean stop, 1 when the agent's
/// configuration is wrong).
pub fn run(args: &WatchArgs) -> std::io::Result<u8> {
    super::init_logging(args.log_format, "info");
    if let Err(e) = reconcile::check_cloud_config(args.cloud.os_cloud.as_deref()) {
        error!(error = %e.one_line(), "the agent's cloud configuration is wrong; exiting");
        return Ok(1);
    }
    let metrics_at = match metrics_address(&args.metrics_address) {
        Ok(address) => address,
        Err(e) => {
            error!(error = %e, "the agent's configuration is wrong; exiting");
            return Ok(1);
        }
    };
    let config = config(args);
    let runtime = reconcile::runtime()?;
    runtime.block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let wake = Arc::new(Notify::new());
        triggers::spawn_signal_handler(stop.clone(), wake.clone())?;
        let paths = triggers::watch_paths(&config.spec);
        // The watcher lives as long as the loop; dropping it stops the notifications.
        let (_watcher, events) = match triggers::start_watcher(&paths) {
            Ok((w, rx)) if !paths.is_empty() => (Some(w), Some(rx)),
            Ok(_) => (None, None),
            Err(e) => {
                warn!(error = %e, "cannot watch the checkout; re-reading it every --poll instead");
                (None, None)
            }
        };
        let polling = events.is_none();
        let timing = config.timing(polling);
        info!(
            host = %config.options.host,
            repo = %crate::cloud::secret::redact_url(&config.spec.repo),
            watching = %paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
            poll_s = polling.then_some(config.poll.as_secs()),
            verify_every_s = config.verify_every.as_secs(),
            resync_every_s = config.resync_every.as_secs(),
            status_file = %config.status_file.display(),
            "watching"
        );
        let os_cloud = args.cloud.os_cloud.as_deref();
        let connect = || reconcile::connect(os_cloud, Needs::Placement, |w| warn!("{w}"));
        let (poll, debounce, max_runs) = (config.poll, config.debounce, config.max_runs);
        let mut agent = Agent::new(config, connect, stop.clone());
        // Metrics are for people; a port that cannot be had (another agent's, a restart
        // racing the old process) does not stop reconciling. A malformed address did, above.
        let _server = match metrics_at {
            None => None,
            Some(address) => match metrics::serve(address, agent.metrics()).await {
                Ok((bound, task)) => {
                    info!(address = %bound, "serving metrics on /metrics and the health check on /healthz");
                    Some(task)
                }
                Err(e) => {
                    error!(address = %address, error = %e, "cannot serve metrics; reconciling without them");
                    None
                }
            },
        };
        let wakers = Wakers { events, wake, stop };
        let ended = watch::run(&mut agent, timing, poll, debounce, wakers, max_runs).await;
        Ok(u8::from(ended.fatal))
    })
}
