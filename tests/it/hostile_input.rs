//! Hostile input: alias bombs, deep nesting, huge files, non-UTF-8 bytes, binary junk,
//! empty repositories and repositories with no fpga-sync documents. Each gets a clear,
//! located error; none crashes, hangs or takes unbounded memory.

use crate::support::{Site, findings, help_of, valid_site};

#[test]
fn alias_bomb_is_refused_at_the_alias() {
    let site = valid_site();
    let mut bomb = String::from(
        "apiVersion: fpga-sync/v1\nkind: Trait\nname: CUSTOM_BOMB\nlol0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        bomb.push_str(&format!("lol{i}: &a{i} [{refs}]\n"));
    }
    site.write("bomb.yaml", bomb);
    let outcome = site.load();
    let f = findings(&outcome);
    assert_eq!(
        f,
        ["bomb.yaml:8:47: error: aliases in this file expand to more than 100000 nodes"]
    );
    assert!(help_of(&outcome, "aliases").contains("billion laughs"));
}

#[test]
fn deep_nesting_is_refused() {
    let site = valid_site();
    site.write(
        "deep.yaml",
        format!(
            "apiVersion: fpga-sync/v1\nkind: Trait\nname: {}\n",
            "[".repeat(1_000_000)
        ),
    );
    let outcome = site.load();
    let f = findings(&outcome);
    assert_eq!(f.len(), 1);
    assert!(f[0].starts_with("deep.yaml:3:"), "{}", f[0]);
    assert!(f[0].contains("error: nesting is deeper than"), "{}", f[0]);
}

#[test]
fn a_100_mb_file_is_refused_unread() {
    let site = valid_site();
    // Sparse: the loader must decide from the size alone, without reading it.
    let file = std::fs::File::create(site.path().join("huge.yaml")).unwrap();
    file.set_len(100 * 1024 * 1024).unwrap();
    let outcome = site.load();
    assert_eq!(
        findings(&outcome),
        [
            "-:0:0: error: `huge.yaml` is 100 MiB, more than the 16 MiB a desired-state file may hold"
        ]
    );
    assert!(help_of(&outcome, "huge.yaml").starts_with("split it into several files"));
}

#[test]
fn non_utf8_bytes_are_located() {
    let site = valid_site();
    site.write(
        "latin1.yaml",
        b"apiVersion: fpga-sync/v1\nkind: Trait\nname: CUSTOM_CAF\xc9\n".as_slice(),
    );
    let outcome = site.load();
    assert_eq!(
        findings(&outcome),
        [
            "latin1.yaml:3:17: error: `latin1.yaml` is not valid UTF-8: byte 0xc9 cannot start or continue a character"
        ]
    );
}

#[test]
fn binary_junk_with_a_yaml_name_is_called_binary() {
    let site = valid_site();
    let junk: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    site.write("junk.yaml", junk);
    let outcome = site.load();
    let f = findings(&outcome);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert!(f[0].starts_with("junk.yaml:1:"), "{}", f[0]);
    assert!(
        f[0].ends_with("error: `junk.yaml` is a binary file, not YAML"),
        "{}",
        f[0]
    );
    // The rendered snippet must not carry raw control bytes to the terminal.
    let rendered = outcome.diagnostics[0].render(false);
    assert!(
        !rendered.bytes().any(|b| b < 0x20 && b != b'\n'),
        "{rendered:?}"
    );
}

#[test]
fn an_empty_folder_says_there_is_nothing() {
    let site = Site::new();
    let outcome = site.load();
    assert_eq!(
        findings(&outcome),
        ["-:0:0: error: no fpga-sync documents found: the folder holds no YAML files"]
    );
}

#[test]
fn a_folder_of_other_yaml_says_so() {
    let site = Site::new();
    site.write("ci/.gitlab-ci.yml", "stages: [test]\n")
        .write(
            "k8s/deploy.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n",
        )
        .write("notes.yml", "- a\n- b\n");
    let outcome = site.load();
    assert_eq!(
        findings(&outcome),
        ["-:0:0: error: no fpga-sync documents found: 2 YAML file(s) hold only other documents"]
    );
    let skipped: Vec<&str> = outcome.foreign.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        skipped,
        ["k8s/deploy.yaml", "notes.yml"],
        "hidden files are not read"
    );
}

#[test]
fn a_document_of_ours_without_api_version_is_an_error_not_foreign() {
    let site = valid_site();
    site.write(
        "t.yaml",
        "kind: Trait\nname: CUSTOM_X\n---\napiVersion: fpga-sync/v2\nkind: Trait\nname: CUSTOM_Y\n",
    );
    let outcome = site.load();
    assert_eq!(
        findings(&outcome),
        [
            "t.yaml:1:1: error: missing field `apiVersion`",
            "t.yaml:4:13: error: unsupported apiVersion `fpga-sync/v2`"
        ]
    );
}

#[test]
fn empty_documents_and_comments_only_files_are_fine() {
    let site = valid_site();
    site.write("empty.yaml", "")
        .write("comments.yaml", "# nothing yet\n---\n---\n");
    assert_eq!(findings(&site.load()), Vec::<String>::new());
}
