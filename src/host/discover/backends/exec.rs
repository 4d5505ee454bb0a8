//! The `exec` backend: operator-supplied commands for any other tool (dfx-mgr, a vendor
//! CLI, a site script). Each command is an argv run without a shell, with the timeout
//! `timeout_seconds` (default 600) and its process group killed past it. I/O: runs the
//! commands, nothing else.
//!
//! `discover` prints on stdout a JSON list of devices:
//!
//! ```json
//! [{"address": "0000:5e:00.0", "pci_id": "8086:0b2b", "description": "my card",
//!   "loaded": null, "busy": false,
//!   "regions": [{"name": "0", "accepts": "a5d72a3c-…", "loaded": "9aeffe5f…",
//!                "busy": "2 open contexts"}]}]
//! ```
//!
//! `address` is required; `pci_id`, `description`, `accepts` may be null or absent;
//! `accepts` is one id or a list of ids (an image built for any of them loads);
//! `loaded` is null, `""` or an all-zero id for nothing, else an id in any written form;
//! `busy` is `false`/`true` or a string naming the holder (`""` = free); `regions` may be
//! absent.
//!
//! `program` gets `{address}`, `{region}` (empty for a whole device), `{image}`,
//! `{expected}` (32 hex digits) and `{force}` (`force` or empty) replaced inside each
//! argument (an argument that is just an empty `{force}` or `{region}` is left out); exit
//! 0 means it programmed. Before running it the backend runs `discover`
//! and refuses an image the region does not accept (forced or not) and a busy slot unless
//! forced. `read_back` gets `{address}` and `{region}` and prints the id the slot carries,
//! or nothing when it carries nothing.

use std::time::Duration;

use serde::Deserialize;

use super::tool;
use crate::desired::host_group::Backend;
pub use crate::desired::host_group::ExecCommands;
use crate::host::driver::{
    Busy, DeviceInfo, Driver, DriverError, Loaded, ProgramReport, ProgramRequest, RegionInfo, Slot,
    interface_fits,
};
use crate::host::id::Id128;

/// The `exec` backend.
pub struct Exec {
    commands: ExecCommands,
}

#[derive(Deserialize)]
struct ExecDevice {
    address: String,
    #[serde(default)]
    pci_id: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    loaded: Option<String>,
    #[serde(default)]
    busy: ExecBusy,
    #[serde(default)]
    regions: Vec<ExecRegion>,
}

#[derive(Deserialize)]
struct ExecRegion {
    name: String,
    #[serde(default)]
    accepts: Option<ExecAccepts>,
    #[serde(default)]
    loaded: Option<String>,
    #[serde(default)]
    busy: ExecBusy,
}

/// One interface id, or a list of them (an image for any of them loads).
#[derive(Deserialize)]
#[serde(untagged)]
enum ExecAccepts {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ExecBusy {
    Flag(bool),
    Holder(String),
}

impl Default for ExecBusy {
    fn default() -> Self {
        ExecBusy::Flag(false)
    }
}

impl ExecBusy {
    fn busy(self) -> Busy {
        match self {
            ExecBusy::Flag(false) => Busy::Free,
            ExecBusy::Flag(true) => Busy::InUse("the discover command says so".into()),
            ExecBusy::Holder(h) if h.trim().is_empty() => Busy::Free,
            ExecBusy::Holder(h) => Busy::InUse(h),
        }
    }
}

impl Exec {
    /// A backend running `commands`.
    pub fn new(commands: ExecCommands) -> Self {
        Exec { commands }
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.commands.timeout_seconds.unwrap_or(600))
    }

    fn source(&self) -> String {
        self.commands.discover.join(" ")
    }

    fn device_of(&self, slot: &Slot) -> Result<DeviceInfo, DriverError> {
        self.discover()?
            .into_iter()
            .find(|d| d.address == slot.address)
            .ok_or_else(|| DriverError::NotFound(slot.clone()))
    }
}

fn parse_id(text: Option<&str>, source: &str) -> Result<Option<Id128>, DriverError> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => t.parse().map(Some).map_err(|e| DriverError::Parse {
            source: source.to_owned(),
            reason: format!("{e}"),
        }),
    }
}

fn accepts(accepts: Option<ExecAccepts>, source: &str) -> Result<Vec<Id128>, DriverError> {
    let texts = match accepts {
        None => Vec::new(),
        Some(ExecAccepts::One(t)) => vec![t],
        Some(ExecAccepts::Many(ts)) => ts,
    };
    let mut out = Vec::new();
    for t in texts {
        if let Some(id) = parse_id(Some(&t), source)?
            && !out.contains(&id)
        {
            out.push(id);
        }
    }
    Ok(out)
}

fn loaded(text: Option<&str>, source: &str) -> Result<Loaded, DriverError> {
    Ok(match parse_id(text, source)? {
        Some(id) if !id.is_zero() => Loaded::Id(id),
        _ => Loaded::Empty,
    })
}

/// The devices a discover command printed (its JSON device list); `source` names the
/// command in errors. Pure.
pub fn parse_devices(text: &str, source: &str) -> Result<Vec<DeviceInfo>, DriverError> {
    let devices: Vec<ExecDevice> =
        serde_json::from_str(text.trim()).map_err(|e| DriverError::Parse {
            source: source.to_owned(),
            reason: format!("not the JSON device list: {e}"),
        })?;
    devices
        .into_iter()
        .map(|d| {
            let regions = d
                .regions
                .into_iter()
                .map(|r| {
                    Ok(RegionInfo {
                        accepts: accepts(r.accepts, source)?,
                        loaded: loaded(r.loaded.as_deref(), source)?,
                        busy: r.busy.busy(),
                        name: r.name,
                    })
                })
                .collect::<Result<Vec<_>, DriverError>>()?;
            Ok(DeviceInfo {
                address: d.address.to_ascii_lowercase(),
                pci_id: d.pci_id.map(|p| p.to_ascii_lowercase()),
                backend: Backend::Exec,
                description: d.description.unwrap_or_else(|| "exec device".into()),
                loaded: loaded(d.loaded.as_deref(), source)?,
                busy: d.busy.busy(),
                regions,
                cannot_program: None,
            })
        })
        .collect()
}

/// `template` with the placeholders of `values` replaced, argument by argument. An
/// argument that is only a placeholder with an empty value (`{force}` unforced, `{region}`
/// of a whole device) is left out rather than passed as `""`.
fn substitute(template: &[String], values: &[(&str, &str)]) -> Vec<String> {
    template
        .iter()
        .filter(|arg| {
            !values
                .iter()
                .any(|(k, v)| v.is_empty() && **arg == format!("{{{k}}}"))
        })
        .map(|arg| {
            values
                .iter()
                .fold(arg.clone(), |a, (k, v)| a.replace(&format!("{{{k}}}"), v))
        })
        .collect()
}

impl Driver for Exec {
    fn backend(&self) -> Backend {
        Backend::Exec
    }

    fn discover(&self) -> Result<Vec<DeviceInfo>, DriverError> {
        if let Some(program) = self.commands.discover.first() {
            super::preflight::command("exec", program, "exec.discover")?;
        }
        let out = tool::run(&self.commands.discover, self.timeout())?;
        parse_devices(&out.stdout, &self.source())
    }

    fn program(&self, request: &ProgramRequest<'_>) -> Result<ProgramReport, DriverError> {
        let slot = request.slot;
        let device = self.device_of(slot)?;
        let (_, accepts, busy) = device
            .slot_state(slot)
            .ok_or_else(|| DriverError::NotFound(slot.clone()))?;
        if slot.region.is_some()
            && let Some(requires) = request.requires
            && !interface_fits(Some(requires), &accepts)
        {
            return Err(DriverError::Incompatible {
                slot: slot.clone(),
                requires,
                accepts,
            });
        }
        if let Busy::InUse(holder) = busy
            && !request.force
        {
            return Err(DriverError::Busy {
                slot: slot.clone(),
                holder,
            });
        }
        let image = request.image.display().to_string();
        let expected = request.expected.to_string();
        let argv = substitute(
            &self.commands.program,
            &[
                ("address", &slot.address),
                ("region", slot.region.as_deref().unwrap_or("")),
                ("image", &image),
                ("expected", &expected),
                ("force", if request.force { "force" } else { "" }),
            ],
        );
        let timeout = request.timeout.min(self.timeout());
        let out = tool::run(&argv, timeout)?;
        Ok(ProgramReport {
            command: argv,
            output: out.combined(),
        })
    }

    fn read_back(&self, slot: &Slot) -> Result<Loaded, DriverError> {
        let argv = substitute(
            &self.commands.read_back,
            &[
                ("address", &slot.address),
                ("region", slot.region.as_deref().unwrap_or("")),
            ],
        );
        let out = tool::run(&argv, self.timeout())?;
        let text = out.stdout.trim();
        match text.parse::<Id128>() {
            _ if text.is_empty() => Ok(Loaded::Empty),
            Ok(id) if id.is_zero() => Ok(Loaded::Empty),
            Ok(id) => Ok(Loaded::Id(id)),
            Err(e) => Err(DriverError::Parse {
                source: argv.join(" "),
                reason: format!("{e}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_inside_arguments() {
        let t: Vec<String> = ["tool", "--dev={address}/{region}", "{force}"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            substitute(
                &t,
                &[("address", "0000:5e:00.0"), ("region", "0"), ("force", "")]
            ),
            ["tool", "--dev=0000:5e:00.0/0"]
        );
    }
}
