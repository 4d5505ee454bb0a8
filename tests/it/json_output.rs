//! The JSON outputs: the committed schemas under `schema/` are the ones the types generate
//! and the outputs validate against them; `apply --format json` is an event stream ended
//! by a result (against the local cloud); a plan declined at the prompt (a real
//! pseudo-terminal) exits 1 and changes nothing; `status` reads the agent's status file.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use fpga_sync::output::{SCHEMAS, schema_text};

use crate::support::Site;
use crate::support::cloud::{NOAUTH, local_cloud, unique};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Panics unless `value` is valid against the committed `schema/<name>.schema.json`.
pub fn assert_valid(name: &str, value: &serde_json::Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("schema/{name}.schema.json"));
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{name}: {errors:#?}\n{value:#}");
}

#[test]
fn committed_output_schemas_are_current() {
    for name in SCHEMAS {
        let path = format!("schema/{name}.schema.json");
        let committed = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(&path))
            .unwrap_or_default();
        assert!(
            committed == schema_text(name).unwrap(),
            "{path} is stale: run `cargo run -- schema {name} > {path}` and commit it"
        );
        let out =
            crate::support::fpga_sync(&["schema", name], Path::new(env!("CARGO_MANIFEST_DIR")));
        assert_eq!(text(&out.stdout), committed, "fpga-sync schema {name}");
    }
}

/// A site of one trait and one resource class of unique names, on the noauth cloud.
fn placement_site() -> (Site, String) {
    let token = unique("JSON");
    let site = Site::new();
    site.write(
        "placement.yaml",
        format!(
            "apiVersion: fpga-sync/v1\nkind: Trait\nname: CUSTOM_{token}\n---\napiVersion: fpga-sync/v1\nkind: ResourceClass\nname: CUSTOM_{token}_PF\n"
        ),
    );
    (site, token)
}

fn command(site: &Site, token: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fpga-sync"));
    c.current_dir(site.path())
        .envs(local_cloud().os_env())
        .env("OS_CLOUD", NOAUTH)
        .env("FPGA_SYNC_SITE", token)
        .env("FPGA_SYNC_CACHE_DIR", site.path().join(".cache"))
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG");
    c
}

fn run(site: &Site, token: &str, args: &[&str]) -> Output {
    command(site, token).args(args).output().unwrap()
}

#[test]
fn apply_in_json_is_a_stream_of_events_ended_by_a_result() {
    let (site, token) = placement_site();
    let out = run(
        &site,
        &token,
        &["apply", "--repo", ".", "--format", "json", "-y"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let events: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    for e in &events {
        assert_valid("apply", e);
    }
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"plan"));
    assert_eq!(kinds.last(), Some(&"result"));
    assert_eq!(
        kinds.iter().filter(|k| **k == "started").count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "done").count(),
        2,
        "{kinds:?}"
    );
    let plan = &events[0]["plan"];
    assert_eq!(plan["actions"].as_array().unwrap().len(), 2);
    let result = events.last().unwrap();
    assert_eq!(
        (
            result["ok"].clone(),
            result["done"].clone(),
            result["failed"].clone()
        ),
        (true.into(), 2.into(), 0.into())
    );
    let done: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "done")
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(
        done.contains(&format!("CUSTOM_{token}").as_str()),
        "{done:?}"
    );
    // Nothing left to do: a plan event with no actions and an ok result.
    let out = run(&site, &token, &["apply", "--repo", ".", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[1]["ok"], true);
    // `plan --format json` and `observe --format json` validate too.
    let out = run(&site, &token, &["plan", "--repo", ".", "--format", "json"]);
    assert_valid("plan", &serde_json::from_slice(&out.stdout).unwrap());
    let out = run(&site, &token, &["observe", "--format", "json"]);
    assert_valid("observe", &serde_json::from_slice(&out.stdout).unwrap());
    let out = run(
        &site,
        &token,
        &["validate", "--repo", ".", "--format", "json"],
    );
    assert_valid("validate", &serde_json::from_slice(&out.stdout).unwrap());
}

/// Runs `args` on a pseudo-terminal (util-linux `script`), typing `input`; stdout holds
/// what the terminal showed.
fn on_a_terminal(site: &Site, token: &str, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let line = std::iter::once(env!("CARGO_BIN_EXE_fpga-sync"))
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .current_dir(site.path())
        .envs(local_cloud().os_env())
        .env("OS_CLOUD", NOAUTH)
        .env("FPGA_SYNC_SITE", token)
        .env("FPGA_SYNC_CACHE_DIR", site.path().join(".cache"))
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("util-linux `script` is needed for a terminal: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn a_plan_declined_at_the_prompt_exits_1_and_changes_nothing() {
    let (site, token) = placement_site();
    let out = on_a_terminal(&site, &token, &["apply", "--repo", "."], "no\n");
    let shown = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("Only `yes` applies"), "{shown}");
    assert!(shown.contains("Not applied."), "{shown}");
    let session = local_cloud().session(NOAUTH).await;
    let traits = fpga_sync::cloud::placement::Placement::new(&session)
        .traits("CUSTOM_")
        .await
        .unwrap();
    assert!(
        !traits.contains(&format!("CUSTOM_{token}")),
        "a declined plan created nothing"
    );
    // `yes` applies.
    let out = on_a_terminal(&site, &token, &["apply", "--repo", "."], "yes\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

fn status_file(site: &Site, finished_ago: u64, failing: bool) -> String {
    let now = fpga_sync::host::report::status::now();
    let failed = if failing {
        r#",{"slot":{"address":"0000:5e:00.0","region":"0"},"bitstream":"aes","state":"failed","message":"programming `aes` failed: fpgaconf exited 1","provider":"h_0000:5e:00.0","programmed":true,"failures":3}"#
    } else {
        ""
    };
    let backoff = if failing {
        format!(
            r#"[{{"slot":{{"address":"0000:5e:00.0","region":"0"}},"attempts":3,"next_attempt_at":{}}}]"#,
            now + 40
        )
    } else {
        "[]".into()
    };
    let body = format!(
        r#"{{"host":"compute-a01","commit":"137a6a8c0ffee","finished_at":{},"error":null,"slots":[{{"slot":{{"address":"0000:5e:00.0"}},"bitstream":"shell","state":"verified","message":"shell `shell` is on the card","provider":null,"programmed":false,"failures":0}}{failed}],"removals":[],"trigger":"verify","duration_ms":120,"passes":42,"backoff":{backoff}}}"#,
        now - finished_ago
    );
    site.write("status.json", &body);
    site.path()
        .join("status.json")
        .to_string_lossy()
        .into_owned()
}

/// Point 10: `status` reads the agent's status file, for people and as JSON; its exit code
/// says whether the agent is healthy.
#[test]
fn status_reads_the_agent_s_status_file() {
    let site = Site::new();
    let file = status_file(&site, 5, false);
    let out = site.run(&["status", "--status-file", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.starts_with("host compute-a01: commit 137a6a8c0ffe; last pass 5 s ago, trigger verify, 120 ms, 42 pass(es)"),
        "{shown}"
    );
    assert!(
        shown.contains("0000:5e:00.0             verified  shell `shell` is on the card"),
        "{shown}"
    );
    assert!(shown.trim_end().ends_with("healthy"), "{shown}");
    // Too old for `--max-age`: the agent stopped.
    let out = site.run(&["status", "--status-file", &file, "--max-age", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("unhealthy: 1 problem(s)"));
    // A failing slot, backing off.
    let file = status_file(&site, 5, true);
    let out = site.run(&["status", "--status-file", &file, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_valid("status", &report);
    assert_eq!(report["healthy"], false);
    assert_eq!(
        report["problems"],
        serde_json::json!([
            "0000:5e:00.0 region 0: FAILED: programming `aes` failed: fpgaconf exited 1"
        ])
    );
    assert_eq!(report["status"]["passes"], 42);
    let out = site.run(&["status", "--status-file", &file]);
    let shown = text(&out.stdout);
    assert!(
        shown.contains("backing off after 3 failed attempt(s): next in"),
        "{shown}"
    );
    // No status file: why, and where it should be.
    let out = site.run(&["status", "--state-dir", "nowhere", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_valid("error", &report);
    assert!(
        report["diagnostics"][0]["message"]
            .as_str()
            .unwrap()
            .contains("cannot read the status file `nowhere/status.json`"),
        "{report}"
    );
}
