//! Whether a backend can run on this host at all, checked before it looks for devices:
//! its roots exist and can be read, its tools exist and are executable. A backend that
//! cannot run is an error that names the path and the flag that sets it, never "no
//! devices": an empty discovery would make the agent remove the providers of cards that
//! are there, or hide a broken install as "nothing to do". I/O: metadata and directory
//! reads of the paths it is given.

use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::host::driver::DriverError;

/// The flag (and environment variable) that sets a path, for the error's help.
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    /// The command-line flag, e.g. `--sysfs-root`.
    pub flag: &'static str,
    /// The environment variable, e.g. `FPGA_SYNC_SYSFS_ROOT`.
    pub env: &'static str,
}

impl Setting {
    fn hint(self) -> String {
        format!("set `{}` (or {})", self.flag, self.env)
    }
}

/// `--sysfs-root`.
pub const SYSFS_ROOT: Setting = Setting {
    flag: "--sysfs-root",
    env: "FPGA_SYNC_SYSFS_ROOT",
};
/// `--firmware-dir`.
pub const FIRMWARE_DIR: Setting = Setting {
    flag: "--firmware-dir",
    env: "FPGA_SYNC_FIRMWARE_DIR",
};
/// `--sim-root`.
pub const SIM_ROOT: Setting = Setting {
    flag: "--sim-root",
    env: "FPGA_SYNC_SIM_ROOT",
};
/// `--fpgaconf`.
pub const FPGACONF: Setting = Setting {
    flag: "--fpgaconf",
    env: "FPGA_SYNC_FPGACONF",
};
/// `--xrt-smi`.
pub const XRT_SMI: Setting = Setting {
    flag: "--xrt-smi",
    env: "FPGA_SYNC_XRT_SMI",
};
/// `--xbutil`.
pub const XBUTIL: Setting = Setting {
    flag: "--xbutil",
    env: "FPGA_SYNC_XBUTIL",
};

fn unavailable(backend: &str, path: &Path, problem: String, fix: String) -> DriverError {
    DriverError::Unavailable {
        backend: backend.to_owned(),
        path: path.to_owned(),
        problem,
        fix,
    }
}

/// `path` must be a directory this process can list.
pub fn directory(
    backend: &str,
    path: &Path,
    what: &str,
    setting: Setting,
) -> Result<(), DriverError> {
    match std::fs::read_dir(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(unavailable(
            backend,
            path,
            format!("{what} does not exist"),
            setting.hint(),
        )),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => Err(unavailable(
            backend,
            path,
            format!("{what} cannot be read: permission denied"),
            "run the agent as root (it reads sysfs and programs devices)".to_owned(),
        )),
        Err(e) => Err(unavailable(
            backend,
            path,
            format!("{what} cannot be read: {e}"),
            setting.hint(),
        )),
    }
}

/// One of `dirs` (below the sysfs root) must exist: the class folders a loaded driver
/// makes. Permission problems are errors too.
pub fn driver_class(backend: &str, root: &Path, dirs: &[(&str, &str)]) -> Result<(), DriverError> {
    directory(backend, root, "the sysfs root", SYSFS_ROOT)?;
    for (dir, _) in dirs {
        match std::fs::read_dir(root.join(dir)) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                return Err(unavailable(
                    backend,
                    &root.join(dir),
                    format!("cannot be read: {e}"),
                    "run the agent as root (it reads sysfs and programs devices)".to_owned(),
                ));
            }
        }
    }
    let names: Vec<String> = dirs
        .iter()
        .map(|(dir, driver)| format!("`{}` ({driver})", root.join(dir).display()))
        .collect();
    Err(unavailable(
        backend,
        root,
        format!(
            "no FPGA driver's class folder exists below this sysfs root: neither {}",
            names.join(" nor ")
        ),
        format!(
            "load the driver, or {} if sysfs is mounted elsewhere",
            SYSFS_ROOT.hint()
        ),
    ))
}

/// Why `path` is not an executable file, if it is not.
fn not_executable(path: &Path) -> Option<String> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => Some("does not exist".to_owned()),
        Err(e) => Some(format!("cannot be read: {e}")),
        Ok(m) if !m.is_file() => Some("is not a file".to_owned()),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => Some("is not executable".to_owned()),
        Ok(_) => None,
    }
}

/// `path` must be an executable file: the vendor tool `tool`.
pub fn tool(backend: &str, path: &Path, tool: &str, setting: Setting) -> Result<(), DriverError> {
    match not_executable(path) {
        None => Ok(()),
        Some(problem) => Err(unavailable(
            backend,
            path,
            format!("{problem} (the `{tool}` tool)"),
            format!("install it, or {}", setting.hint()),
        )),
    }
}

/// One of `tools` must be an executable file; the error names all of them.
pub fn any_tool(backend: &str, tools: &[(&Path, &str, Setting)]) -> Result<(), DriverError> {
    let mut problems = Vec::new();
    for (path, name, setting) in tools {
        match not_executable(path) {
            None => return Ok(()),
            Some(p) => problems.push((
                path,
                format!("`{name}` at `{}` {p}", path.display()),
                setting,
            )),
        }
    }
    let (first, ..) = problems.first().expect("at least one tool");
    let fixes: Vec<String> = problems.iter().map(|(_, _, s)| s.hint()).collect();
    let what: Vec<String> = problems.iter().map(|(_, p, _)| p.clone()).collect();
    Err(unavailable(
        backend,
        first,
        format!("no tool to program with: {}", what.join(", and ")),
        format!("install XRT, or {}", fixes.join(" / ")),
    ))
}

/// A command's program, as `exec` would run it: a path must be an executable file; a
/// bare name must be found on `PATH`.
pub fn command(backend: &str, program: &str, setting_name: &str) -> Result<(), DriverError> {
    let fix = format!("install it, or change `{setting_name}` in the host group's `exec:` section");
    if program.contains('/') {
        return match not_executable(Path::new(program)) {
            None => Ok(()),
            Some(problem) => Err(unavailable(backend, Path::new(program), problem, fix)),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|dir| not_executable(&dir.join(program)).is_none()) {
        return Ok(());
    }
    Err(unavailable(
        backend,
        Path::new(program),
        "is not on PATH".to_owned(),
        fix,
    ))
}
