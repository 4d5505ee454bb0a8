//! Test support: temporary site repositories (plain folders or real git repositories made
//! with git2), running the loader in-process, and running the `fpga-sync` binary.

#![allow(dead_code, reason = "each test module uses a different part")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fpga_sync::desired::Outcome;
use fpga_sync::reconcile::check as load;
use fpga_sync::source::{self, RepoSpec};
use tempfile::TempDir;

pub mod central_site;
pub mod chaos;
pub mod cloud;
pub mod fake_host;
pub mod faulty;
pub mod fleet;
pub mod host_site;
pub mod servers;

/// A temporary site repository.
pub struct Site {
    pub dir: TempDir,
}

impl Site {
    pub fn new() -> Self {
        Site {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `contents` at `rel`, making folders.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> &Self {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
        self
    }

    /// Loads the folder as a plain folder (no git).
    pub fn load(&self) -> Outcome {
        self.load_spec(|_| {})
    }

    /// Loads with a customised spec.
    pub fn load_spec(&self, edit: impl FnOnce(&mut RepoSpec)) -> Outcome {
        let mut spec = self.spec();
        edit(&mut spec);
        let snapshot =
            source::read(&spec).unwrap_or_else(|d| panic!("source failed: {}", d.message));
        load(&snapshot)
    }

    pub fn spec(&self) -> RepoSpec {
        RepoSpec {
            repo: self.path().to_string_lossy().into_owned(),
            reference: None,
            dir: None,
            worktree: false,
            cache_dir: self.path().join(".cache"),
            ssh: Default::default(),
            require_signed_by: None,
        }
    }

    /// Runs the binary in this folder's parent with `args`.
    pub fn run(&self, args: &[&str]) -> Output {
        fpga_sync(args, self.path())
    }
}

/// Runs the `fpga-sync` binary.
pub fn fpga_sync(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fpga-sync"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("FPGA_SYNC_CACHE_DIR")
        .output()
        .expect("run fpga-sync")
}

/// Every diagnostic as `file:line:column: severity: message`.
pub fn findings(outcome: &Outcome) -> Vec<String> {
    outcome
        .diagnostics
        .iter()
        .map(|d| {
            let j = d.to_json();
            format!(
                "{}:{}:{}: {:?}: {}",
                j.file.as_deref().unwrap_or("-"),
                j.line.unwrap_or(0),
                j.column.unwrap_or(0),
                j.severity,
                j.message
            )
            .replace(": Error: ", ": error: ")
            .replace(": Warning: ", ": warning: ")
        })
        .collect()
}

/// The help text of the diagnostic whose message contains `needle`.
pub fn help_of(outcome: &Outcome, needle: &str) -> String {
    outcome
        .diagnostics
        .iter()
        .find(|d| d.message.contains(needle))
        .unwrap_or_else(|| {
            panic!(
                "no diagnostic contains {needle:?}: {:#?}",
                findings(outcome)
            )
        })
        .help
        .clone()
        .unwrap_or_default()
}

/// The project's `examples/` folder.
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

pub const SHELL_UUID: &str = "0b7d2b4e-8f0c-4d1a-9e55-3c2f6a1d7e01";
pub const AES_UUID: &str = "5e4f3a2b-1c0d-4e8f-9a7b-6c5d4e3f2a1b";

/// A small valid site: a shell and a partial bitstream with their files, two traits, a
/// resource class, a flavor and a host group.
pub fn valid_site() -> Site {
    let site = Site::new();
    site.write("files/shell.bin", b"shell bitstream")
        .write("files/aes.gbs", b"aes bitstream")
        .write("bitstreams.yaml", BITSTREAMS)
        .write("placement.yaml", PLACEMENT)
        .write("flavors.yaml", FLAVORS)
        .write("hosts.yaml", HOSTS);
    site
}

pub const BITSTREAMS: &str = r#"apiVersion: fpga-sync/v1
kind: Bitstream
name: pac-shell
file: files/shell.bin
metadata:
  bs-name: pac-a10-fim
  bs-uuid: 0b7d2b4e-8f0c-4d1a-9e55-3c2f6a1d7e01
  vendor: Intel
  board: PAC-A10
  version: "1.2"
  driver_ver: "2.1"
  driver_path: /opt/opae
  function_uuid: 1d2c3b4a-5e6f-4a0b-8c1d-2e3f4a5b6c7d
---
apiVersion: fpga-sync/v1
kind: Bitstream
name: aes-128
file: files/aes.gbs
tags: [crypto]
metadata:
  bs-name: aes-128
  bs-uuid: 5e4f3a2b-1c0d-4e8f-9a7b-6c5d4e3f2a1b
  vendor: Intel
  board: PAC-A10
  shell_id: 0b7d2b4e-8f0c-4d1a-9e55-3c2f6a1d7e01
  version: "1.0"
  driver: OPAE
  driver_ver: "2.1"
  driver_path: /opt/opae
  topology:
    pf_num: 2
    vf_num: 2
    pf:
      - {name: pf_1, pci_offset: 0, vf: [{name: vf_1, pci_offset: 1}]}
      - {name: pf_2, pci_offset: 2, vf: [{name: vf_2, pci_offset: 3}]}
  region_uuid: 9c8b7a69-5847-4362-a514-0f1e2d3c4b5a
  function_uuid: 7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d
  function_name: aes-128
properties:
  type: crypto
"#;

pub const PLACEMENT: &str = "apiVersion: fpga-sync/v1
kind: Trait
name: CUSTOM_FPGA
---
apiVersion: fpga-sync/v1
kind: Trait
name: CUSTOM_ACCELERATOR_CRYPTO
---
apiVersion: fpga-sync/v1
kind: ResourceClass
name: CUSTOM_FPGA_INTEL_PF
";

pub const FLAVORS: &str = "apiVersion: fpga-sync/v1
kind: Flavor
name: fpga.aes
vcpus: 4
ram: 8192
disk: 40
extra_specs:
  resources:CUSTOM_FPGA_INTEL_PF: 2
  trait:CUSTOM_ACCELERATOR_CRYPTO: required
";

pub const HOSTS: &str = r#"apiVersion: fpga-sync/v1
kind: HostGroup
name: rack-a
hosts: [compute-a01, "compute-b*"]
backend: opae
devices:
  - address: "0000:5e:00.0"
    bitstream: pac-shell
  - address: "0000:5e:00.0"
    region: "0"
    bitstream: aes-128
    resource_class: CUSTOM_FPGA_INTEL_PF
    traits: [CUSTOM_FPGA, CUSTOM_ACCELERATOR_CRYPTO]
  - address: "0000:86:00.0"
    policy: manual
"#;

/// Commits every file below `paths` (`"*"`: all) of `repo`'s work tree on HEAD.
pub fn commit_all(repo: &git2::Repository, paths: &str, message: &str) -> git2::Oid {
    let mut index = repo.index().unwrap();
    index
        .add_all([paths], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.update_all([paths], None).unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("fpga-sync tests", "tests@fpga-sync.invalid").unwrap();
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .unwrap()
}
