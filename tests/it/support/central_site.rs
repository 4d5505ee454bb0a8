//! A central site for the chaos and crash-loop tests: a folder of YAML whose names carry a
//! unique token — `n` bitstreams of `size` bytes of seeded random content, a trait, a
//! resource class and a flavor asking for them — whose contents can be changed round by
//! round (so each run has uploads and replacements to do); the binary run against it; and
//! the invariants of the images it owns in Glance, checked against every content the
//! site ever had.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use fpga_sync::cloud::glance::Glance;
use fpga_sync::markers::{IMAGE_OWNER, IMAGE_SHA256, IMAGE_STATE, STATE_COMPLETE};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256, Sha512};

use crate::support::cloud::{local_cloud, unique};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The site.
pub struct CentralSite {
    pub dir: tempfile::TempDir,
    pub token: String,
    pub lower: String,
    /// The cloud of the generated clouds.yaml it is checked on (`local-keystone`...).
    pub mode: &'static str,
    n: usize,
    size: usize,
    /// Each bitstream's current version.
    versions: Vec<u32>,
    /// sha256 → sha512 of every content written, for the invariants.
    known: BTreeMap<String, String>,
}

impl CentralSite {
    /// A site of `n` bitstreams of `size` bytes, checked on `mode`.
    pub fn new(prefix: &str, mode: &'static str, n: usize, size: usize) -> CentralSite {
        let token = unique(prefix);
        let lower = token.to_ascii_lowercase().replace('_', "-");
        let mut site = CentralSite {
            dir: tempfile::tempdir().unwrap(),
            token,
            lower,
            mode,
            n,
            size,
            versions: vec![0; n],
            known: BTreeMap::new(),
        };
        std::fs::create_dir_all(site.path().join("files")).unwrap();
        for i in 0..n {
            site.write_content(i);
        }
        site.write_yaml();
        site
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The bitstream names.
    pub fn names(&self) -> Vec<String> {
        (0..self.n)
            .map(|i| format!("bs{i}-{}", self.lower))
            .collect()
    }

    fn bs_uuid(&self, i: usize) -> String {
        let n = u64::from_str_radix(&self.token[self.token.len() - 12..], 16).unwrap();
        format!("{:08x}-0000-4000-8000-{n:012x}", i + 1)
    }

    fn write_content(&mut self, i: usize) {
        let mut seed = Sha256::new();
        seed.update(format!("{}:{i}:{}", self.token, self.versions[i]));
        let seed: [u8; 32] = seed.finalize().into();
        let mut bytes = vec![0u8; self.size];
        StdRng::from_seed(seed).fill_bytes(&mut bytes);
        self.known
            .insert(hex(&Sha256::digest(&bytes)), hex(&Sha512::digest(&bytes)));
        std::fs::write(self.path().join(format!("files/bs{i}.bin")), bytes).unwrap();
    }

    fn write_yaml(&self) {
        let t = &self.token;
        let mut docs = String::new();
        for (i, name) in self.names().iter().enumerate() {
            docs.push_str(&format!(
                "apiVersion: fpga-sync/v1\nkind: Bitstream\nname: {name}\nfile: files/bs{i}.bin\ntags: [chaos]\nmetadata:\n  bs-name: bs{i}\n  bs-uuid: {u}\n  vendor: Intel\n  board: PAC-A10\n  version: \"{v}\"\n  driver_ver: \"2.1\"\n  driver_path: /opt/opae\n  function_uuid: {u}\n---\n",
                u = self.bs_uuid(i),
                v = self.versions[i],
            ));
        }
        docs.push_str(&format!(
            "apiVersion: fpga-sync/v1\nkind: Trait\nname: CUSTOM_{t}_T\n---\napiVersion: fpga-sync/v1\nkind: ResourceClass\nname: CUSTOM_{t}_RC\n---\napiVersion: fpga-sync/v1\nkind: Flavor\nname: flavor-{l}\nvcpus: 2\nram: 2048\ndisk: 10\nextra_specs:\n  resources:CUSTOM_{t}_RC: 1\n  trait:CUSTOM_{t}_T: required\n",
            l = self.lower
        ));
        std::fs::write(self.path().join("site.yaml"), docs).unwrap();
    }

    /// New content (and version) for bitstreams `which`.
    pub fn bump(&mut self, which: &[usize]) {
        for &i in which {
            self.versions[i] += 1;
            self.write_content(i);
        }
        self.write_yaml();
    }

    /// The binary, on this site, against `self.mode` unless `env` says otherwise.
    pub fn command(&self, args: &[&str], env: &[(&str, String)]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_fpga-sync"));
        command
            .args(args)
            .current_dir(self.path())
            .envs(local_cloud().os_env())
            .env("OS_CLOUD", self.mode)
            .env("FPGA_SYNC_SITE", &self.token)
            .env("FPGA_SYNC_CACHE_DIR", self.path().join(".cache"))
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        command
    }

    /// Runs the binary to the end: exit code and output.
    pub fn run(&self, args: &[&str], env: &[(&str, String)]) -> (i32, String) {
        let out: Output = self.command(args, env).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// Starts the binary in the background, its output to `log`.
    pub fn spawn(&self, args: &[&str], env: &[(&str, String)], log: &Path) -> Child {
        let file = std::fs::File::create(log).unwrap();
        self.command(args, env)
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// A clean `apply` (straight to the cloud) and the empty plan after it.
    pub fn converge(&self) -> String {
        let (code, out) = self.run(&["apply", "--repo", ".", "--auto-approve", "--prune"], &[]);
        assert_eq!(code, 0, "the clean run must converge:\n{out}");
        let (code, plan) = self.run(
            &["plan", "--repo", ".", "--prune", "--detailed-exitcode"],
            &[],
        );
        assert_eq!(code, 0, "the plan after a clean run must be empty:\n{plan}");
        out
    }

    /// The images this site owns.
    pub async fn images(&self) -> Vec<fpga_sync::cloud::glance::Image> {
        let session = local_cloud().session(self.mode).await;
        Glance::new(&session)
            .images(&["chaos"])
            .await
            .unwrap()
            .into_iter()
            .filter(|i| prop(i, IMAGE_OWNER).as_deref() == Some(self.token.as_str()))
            .collect()
    }

    /// What must hold at every moment, whatever was interrupted: no image marked complete
    /// whose content is not its sha256 (Glance's own sha512 of what it stores is checked
    /// against the content with that sha256), and never two complete images of one
    /// bitstream with the same content. Returns the images.
    pub async fn check_always(&self) -> Vec<fpga_sync::cloud::glance::Image> {
        let images = self.images().await;
        let mut complete: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for i in &images {
            if prop(i, IMAGE_STATE).as_deref() != Some(STATE_COMPLETE) {
                continue;
            }
            let sha256 = prop(i, IMAGE_SHA256).unwrap_or_default();
            let sha512 = self.known.get(&sha256).unwrap_or_else(|| {
                panic!(
                    "complete image {} has a sha256 the site never had: {i:#?}",
                    i.id
                )
            });
            assert_eq!(
                i.status,
                fpga_sync::observed::ImageStatus::Active,
                "complete image {} is not active: {i:#?}",
                i.id
            );
            assert_eq!(
                i.size,
                Some(self.size as u64),
                "complete image {}: {i:#?}",
                i.id
            );
            assert_eq!(i.os_hash_algo.as_deref(), Some("sha512"), "{i:#?}");
            assert_eq!(
                i.os_hash_value.as_deref(),
                Some(sha512.as_str()),
                "complete image {} does not hold the content of its sha256: {i:#?}",
                i.id
            );
            let uuid = prop(i, "bs-uuid").unwrap_or_default();
            complete
                .entry((uuid, sha256))
                .or_default()
                .push(i.id.clone());
        }
        for ((uuid, sha), ids) in &complete {
            assert_eq!(
                ids.len(),
                1,
                "two complete images of bitstream {uuid} with content {sha}: {ids:?}"
            );
        }
        images
    }

    /// What must hold after a clean run: exactly one image per bitstream, complete, with
    /// the current content, and nothing else of the site's.
    pub async fn check_converged(&self) {
        let images = self.check_always().await;
        assert_eq!(images.len(), self.n, "one image per bitstream: {images:#?}");
        for i in 0..self.n {
            let uuid = self.bs_uuid(i);
            let mine: Vec<_> = images
                .iter()
                .filter(|im| prop(im, "bs-uuid").as_deref() == Some(uuid.as_str()))
                .collect();
            assert_eq!(mine.len(), 1, "{mine:#?}");
            let bytes = std::fs::read(self.path().join(format!("files/bs{i}.bin"))).unwrap();
            assert_eq!(
                prop(mine[0], IMAGE_SHA256),
                Some(hex(&Sha256::digest(&bytes))),
                "{mine:#?}"
            );
            assert_eq!(prop(mine[0], IMAGE_STATE).as_deref(), Some(STATE_COMPLETE));
        }
    }

    /// Deletes the site's images and flavor (the tests' cloud is shared and long-lived);
    /// its trait and resource class stay, as small as they are.
    pub async fn clean_up(&self) {
        let session = local_cloud().session(self.mode).await;
        let glance = Glance::new(&session);
        for image in self.images().await {
            glance.delete(&image.id).await.unwrap();
        }
        let nova = fpga_sync::cloud::nova::Nova::new(&session);
        for flavor in nova.flavors().await.unwrap() {
            if flavor.name == format!("flavor-{}", self.lower) {
                nova.delete_flavor(&flavor.id).await.unwrap();
            }
        }
    }
}

/// An image property as text.
pub fn prop(image: &fpga_sync::cloud::glance::Image, key: &str) -> Option<String> {
    image
        .extra
        .get(key)
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}
