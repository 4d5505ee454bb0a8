//! `fpga-sync watch`: sets up logging, the agent's options and the cloud connection, and
//! runs the service loop of [`crate::host::watch`] on a multi-thread runtime until SIGTERM,
//! SIGINT or `--max-runs`. I/O: stderr (tracing), and through the loop: the repository,
//! the drivers, the cloud and the status file.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::sync::Notify;

use super::host::{agent_options, init_logging};
use crate::cli::WatchArgs;
use crate::host::watch::{self, WatchConfig};

/// The loop's configuration from the command line. Intervals of 0 are taken as the
/// shortest sensible ones (1 s; 1 ms for the debounce).
pub fn config(args: &WatchArgs) -> WatchConfig {
    let secs = |s: u64| Duration::from_secs(s.max(1));
    WatchConfig {
        options: agent_options(&args.host, &args.site.name, args.force, &args.driver),
        spec: super::repo_spec(&args.source),
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
    }
}

/// Runs `watch`; returns the exit code (0 after a clean stop).
pub fn run(args: &WatchArgs) -> std::io::Result<u8> {
    init_logging(args.log_format);
    let config = config(args);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let wake = Arc::new(Notify::new());
        watch::spawn_signal_handler(stop.clone(), wake.clone())?;
        let cloud = &args.cloud;
        let connect = || async move {
            super::connect_with(cloud, super::Needs::Placement, |w| tracing::warn!("{w}"))
                .await
                .map_err(|d| match &d.help {
                    Some(help) => format!("{} (help: {help})", d.message),
                    None => d.message.clone(),
                })
        };
        Ok(watch::run(config, connect, stop, wake).await)
    })
}
