//! The shapes of fpga-sync's JSON outputs, as types, and their JSON Schemas generated
//! from them (committed under `schema/`, described in `docs/json.md`; a test fails when a
//! committed schema is stale). The plan (`plan --format json`, saved plans) is
//! [`crate::reconcile::SavedPlan`] and the observation is [`crate::observed::Observed`];
//! here are the envelopes around them and the outputs that have no type elsewhere: the
//! error object every `--format json` command prints when it fails, `validate`'s report,
//! `apply`'s event stream, `import`'s and `program`'s results and `status`'s report.
//! Types and schema generation only: no I/O of its own.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::{Deserialize, Serialize};

use crate::diagnostic::{Diagnostic, JsonDiagnostic};
use crate::host::status::HostStatus;
use crate::observed::Observed;
use crate::plan::{Kind, ObjectType, Plan};
use crate::reconcile::SavedPlan;
use crate::reconcile::watch::{BackoffEntry, Trigger};

/// The version of every JSON output; bumped on an incompatible change. Within a version,
/// fields are added, never renamed or removed.
pub const FORMAT_VERSION: u32 = 1;

/// What a command given `--format json` prints on stdout when it fails (exit 1): every
/// problem, each with its help. `validate` keeps its own report, which holds the same
/// diagnostics.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ErrorReport {
    /// The format's version: 1.
    pub format_version: u32,
    /// Always `false`: the command failed.
    pub ok: bool,
    /// What went wrong; file, line and column when the problem is in a desired-state file.
    pub diagnostics: Vec<JsonDiagnostic>,
}

impl ErrorReport {
    /// The report of `diagnostics`.
    pub fn of(diagnostics: &[Diagnostic]) -> Self {
        ErrorReport {
            format_version: FORMAT_VERSION,
            ok: false,
            diagnostics: diagnostics.iter().map(Diagnostic::to_json).collect(),
        }
    }
}

/// `validate --format json`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ValidateReport {
    /// The format's version: 1.
    pub format_version: u32,
    /// Whether the desired state is valid (no errors).
    pub valid: bool,
    /// What was read; `null` when the repository could not be read.
    pub source: Option<SourceReport>,
    /// How many documents of each kind, when the desired state is valid.
    pub documents: BTreeMap<String, usize>,
    /// YAML files that hold no fpga-sync document (no `apiVersion: fpga-sync/v1`).
    pub skipped_files: Vec<String>,
    /// Every problem found.
    pub diagnostics: Vec<JsonDiagnostic>,
}

/// Where a desired state was read from.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct SourceReport {
    /// The repository: a local checkout's root, a folder, or a remote URL without
    /// credentials.
    pub repo: String,
    /// The commit read; `null` for files on disk.
    pub commit: Option<String>,
    /// The reference given with `--ref`.
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    /// The desired-state folder inside the repository (`""` for its root).
    pub dir: String,
}

/// `observe --format json`: the observation, with the cloud's name. It reads back as an
/// [`Observed`] (a scenario's `observed.json`).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ObserveReport {
    /// The format's version: 1.
    pub format_version: u32,
    /// The cloud's name in clouds.yaml (`environment` for `OS_*` variables).
    pub cloud: String,
    /// What the cloud holds.
    #[serde(flatten)]
    pub observed: Observed,
}

/// One line of `apply --format json`: events as they happen, then one `result`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ApplyEvent {
    /// The plan about to be carried out (the first line): the saved plan given, or the
    /// one just made.
    Plan {
        /// The format's version: 1.
        format_version: u32,
        /// The plan.
        plan: Plan,
    },
    /// An action started.
    Started(ActionRef),
    /// Bytes of an upload sent (at most one event per tenth of the file).
    Progress {
        /// The action.
        #[serde(flatten)]
        action: ActionRef,
        /// Bytes sent so far.
        sent: u64,
        /// The file's size.
        total: u64,
    },
    /// An action succeeded.
    Done {
        /// The action.
        #[serde(flatten)]
        action: ActionRef,
        /// How long it took.
        seconds: f64,
    },
    /// An action failed.
    Failed {
        /// The action.
        #[serde(flatten)]
        action: ActionRef,
        /// What went wrong.
        error: String,
        /// How to fix it, when something can be said.
        help: Option<String>,
    },
    /// An action was not started because one it depends on did not succeed.
    Skipped {
        /// The action.
        #[serde(flatten)]
        action: ActionRef,
        /// The id of the action that did not succeed.
        because: usize,
    },
    /// The last line of a cloud-wide apply.
    Result(ApplyResult),
    /// The last line of `apply --host`: the host's status, as the status file holds it.
    HostResult {
        /// The format's version: 1.
        format_version: u32,
        /// Whether every managed slot is verified and nothing failed.
        ok: bool,
        /// Each slot's result.
        status: HostStatus,
    },
}

/// Which action an event is about.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ActionRef {
    /// The action's `id` in the plan.
    pub action: usize,
    /// `create`, `update`, `replace` or `delete`.
    pub kind: Kind,
    /// `trait`, `resource_class`, `image` or `flavor`.
    pub object: ObjectType,
    /// The object's name.
    pub name: String,
}

/// How a cloud-wide apply ended.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ApplyResult {
    /// The format's version: 1.
    pub format_version: u32,
    /// Whether everything asked was done (exit 0).
    pub ok: bool,
    /// Actions that succeeded.
    pub done: usize,
    /// Actions that failed.
    pub failed: usize,
    /// Actions not started because one they depend on did not succeed.
    pub skipped: usize,
    /// Why nothing was applied, when it ended before the actions (a stale saved plan, an
    /// unreadable repository, an unreachable cloud, a `no` at the prompt).
    pub diagnostics: Vec<JsonDiagnostic>,
}

/// `import --format json`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ImportReport {
    /// The format's version: 1.
    pub format_version: u32,
    /// Always `true` (a failure prints the error object).
    pub ok: bool,
    /// The files written, under `--to`.
    pub written: Vec<String>,
    /// What was left out or is incomplete, and why.
    pub warnings: Vec<String>,
}

/// `program --format json`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ProgramReport {
    /// The format's version: 1.
    pub format_version: u32,
    /// Always `true` (a failure prints the error object).
    pub ok: bool,
    /// What was loaded and read back.
    pub message: String,
}

/// A status file: what `apply --host --status-file` writes, and what `watch` writes (the
/// same, plus what the service knows of the pass).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct StatusFile {
    /// The host's last reconcile.
    #[serde(flatten)]
    pub host: HostStatus,
    /// `watch`: why the last pass ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    /// `watch`: how long the last pass took, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// `watch`: passes since the service started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passes: Option<u64>,
    /// `watch`: slots backing off, and when each is tried again.
    #[serde(default)]
    pub backoff: Vec<BackoffEntry>,
}

/// `status --format json`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct StatusReport {
    /// The format's version: 1.
    pub format_version: u32,
    /// The status file read.
    pub file: String,
    /// No error, every managed slot verified, and (with `--max-age`) a recent pass.
    pub healthy: bool,
    /// Why it is not healthy, one line each.
    pub problems: Vec<String>,
    /// Seconds since the last pass finished.
    pub age_seconds: u64,
    /// The status file's content.
    pub status: StatusFile,
}

/// The outputs with a committed schema: `schema/<name>.schema.json`.
pub const SCHEMAS: [&str; 7] = [
    "plan", "observe", "validate", "apply", "status", "rollout", "error",
];

/// Rustdoc's links (`` [`Observed`] ``) read as plain code in a schema's descriptions.
fn unlink(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => *s = s.replace("[`", "`").replace("`]", "`"),
        serde_json::Value::Array(items) => items.iter_mut().for_each(unlink),
        serde_json::Value::Object(map) => map.values_mut().for_each(unlink),
        _ => {}
    }
}

fn schema_of<T: JsonSchema>(title: &str, description: &str) -> String {
    let generator = SchemaSettings::draft07().into_generator();
    let mut schema =
        serde_json::to_value(generator.into_root_schema_for::<T>()).expect("schemas serialise");
    unlink(&mut schema);
    if let Some(object) = schema.as_object_mut() {
        object.insert("title".into(), title.into());
        object.insert("description".into(), description.into());
    }
    serde_json::to_string_pretty(&schema).expect("schemas serialise") + "\n"
}

/// The JSON Schema of the output `name` (one of [`SCHEMAS`]).
pub fn schema_text(name: &str) -> Option<String> {
    Some(match name {
        "plan" => schema_of::<SavedPlan>(
            "fpga-sync plan",
            "`fpga-sync plan --format json` and the file `plan --out FILE` saves, which `apply FILE` reads.",
        ),
        "observe" => schema_of::<ObserveReport>(
            "fpga-sync observe",
            "`fpga-sync observe --format json`: what the cloud holds that fpga-sync cares about.",
        ),
        "validate" => schema_of::<ValidateReport>(
            "fpga-sync validate",
            "`fpga-sync validate --format json`: every diagnostic, with file, line and column.",
        ),
        "apply" => schema_of::<ApplyEvent>(
            "fpga-sync apply event",
            "One line of `fpga-sync apply --format json`: a `plan` event, events per action, then a `result` (or `host_result`).",
        ),
        "status" => schema_of::<StatusReport>(
            "fpga-sync status",
            "`fpga-sync status --format json`: the host agent's status file and whether it is healthy.",
        ),
        "rollout" => schema_of::<crate::host::plan::rollout_view::RolloutReport>(
            "fpga-sync rollout status",
            "`fpga-sync rollout status --format json`: every rollout as the fleet reports it.",
        ),
        "error" => schema_of::<ErrorReport>(
            "fpga-sync error",
            "What a command given `--format json` prints on stdout when it fails (exit 1).",
        ),
        _ => return None,
    })
}
