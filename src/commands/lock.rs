//! `fpga-sync lock status|break`: who holds the lease of a site (or a host), for people or
//! as JSON, and breaking it by its id with a loud warning. I/O: stdout, stderr.

use std::time::{Duration, SystemTime};

use serde_json::json;

use crate::cli::{Format, LockAction, LockArgs, LockBreakArgs, LockStatusArgs};
use crate::reconcile::lease::{Held, LeaseStatus};
use crate::reconcile::{self, Error};

/// The version of `lock status --format json`.
pub const FORMAT_VERSION: u32 = 1;

/// Runs `lock`; returns the exit code.
pub fn run(args: &LockArgs, color: bool) -> std::io::Result<u8> {
    let runtime = reconcile::runtime()?;
    let result = match &args.action {
        LockAction::Status(a) => runtime.block_on(status(a)),
        LockAction::Break(a) => runtime.block_on(force_break(a)),
    };
    match result {
        Ok(()) => Ok(0),
        Err(e) => {
            super::report(&e.diagnostics(), color);
            Ok(1)
        }
    }
}

async fn status(args: &LockStatusArgs) -> Result<(), Error> {
    let scope = args.scope.scope();
    let status =
        reconcile::lease::show(args.scope.cloud.os_cloud.as_deref(), &scope, super::warn).await?;
    match args.format {
        Format::Human => print!("{}", human(&status)),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&status)).expect("JSON serialises")
        ),
    }
    Ok(())
}

fn ago(t: SystemTime) -> String {
    match SystemTime::now().duration_since(t) {
        Ok(d) => format!(
            "{} ago",
            humantime::format_duration(Duration::from_secs(d.as_secs()))
        ),
        Err(_) => "in the future by this host's clock".into(),
    }
}

/// `lock status` for people.
pub fn human(status: &LeaseStatus) -> String {
    let scope = &status.scope;
    let Some(held) = &status.held else {
        return format!(
            "The lease of {scope} is free (Placement provider `{}`{}).\n",
            status.provider_name,
            if status.provider.is_none() {
                ": not made yet"
            } else {
                ""
            }
        );
    };
    let mut out = format!(
        "The lease of {scope} is held (Placement provider `{}`):\n",
        status.provider_name
    );
    match &held.holder {
        Some(h) => {
            out.push_str(&format!(
                "  host:       {}\n  pid:        {}\n  operation:  {}\n",
                h.host, h.pid, h.op
            ));
            if let Some(c) = &h.commit {
                out.push_str(&format!("  commit:     {c}\n"));
            }
            out.push_str(&format!(
                "  since:      {} ({})\n  ttl:        {} s (renewed every {} s; a run that waits breaks it after {} s without a renewal)\n",
                humantime::format_rfc3339_seconds(h.since_time()),
                ago(h.since_time()),
                h.ttl,
                (h.ttl as f64 / 3.0).max(0.1),
                h.ttl
            ));
        }
        None => out.push_str(&format!(
            "  holder:     not an fpga-sync run (user `{}`): it never lapses by itself\n",
            held.user
        )),
    }
    if let Some(g) = held.generation {
        out.push_str(&format!("  renewals:   {}\n", g.saturating_sub(1)));
    }
    out.push_str(&format!(
        "  lease id:   {}\n\nTo break it (only if that run is gone, or must stop): fpga-sync lock break {} {}\n",
        held.id,
        held.id,
        scope.flag()
    ));
    out
}

fn held_json(held: &Held) -> serde_json::Value {
    let h = held.holder.as_ref();
    json!({
        "id": held.id,
        "host": h.map(|h| h.host.clone()),
        "pid": h.map(|h| h.pid),
        "operation": h.map(|h| h.op.clone()),
        "commit": h.and_then(|h| h.commit.clone()),
        "since": h.map(|h| humantime::format_rfc3339_seconds(h.since_time()).to_string()),
        "ttl_seconds": h.map(|h| h.ttl),
        "generation": held.generation,
        "user_id": held.user,
    })
}

/// `lock status --format json`.
pub fn to_json(status: &LeaseStatus) -> serde_json::Value {
    json!({
        "format_version": FORMAT_VERSION,
        "scope": {"kind": status.scope.kind(), "name": status.scope.name()},
        "provider": {"name": status.provider_name, "uuid": status.provider},
        "held": status.held.is_some(),
        "lease": status.held.as_ref().map(held_json),
    })
}

async fn force_break(args: &LockBreakArgs) -> Result<(), Error> {
    let scope = args.scope.scope();
    let broken = reconcile::lease::break_named(
        args.scope.cloud.os_cloud.as_deref(),
        &scope,
        &args.id,
        super::warn,
    )
    .await?;
    let held = &broken.held;
    eprintln!(
        "WARNING: broke the lease of {scope} held by {}.",
        held.describe()
    );
    match broken.running_here {
        Some(true) => eprintln!(
            "WARNING: that run's process is still running on this host (pid {}).",
            held.holder.as_ref().map_or(0, |h| h.pid)
        ),
        Some(false) => eprintln!("Its process is no longer running on this host."),
        None => {}
    }
    let within = held.ttl().map_or("its next renewal".to_owned(), |t| {
        format!("{:.0} s", (t.as_secs_f64() / 3.0).ceil())
    });
    eprintln!(
        "WARNING: if that run is still working, it notices within {within}, starts nothing more and fails; \
         what it was doing (an upload, a programming) may be left for the next apply to finish, \
         and another run may take the lease meanwhile."
    );
    println!("Lease {} of {scope} broken.", held.id);
    Ok(())
}
