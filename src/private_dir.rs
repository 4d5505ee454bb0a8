//! Folders that only the agent may write: its state folder and its caches hold what gets
//! programmed into hardware, so a folder another user can write (or that belongs to
//! another user, or that is a symlink somewhere else) is refused rather than used. Folders
//! fpga-sync creates are made `0700`. I/O: metadata of the folders, `mkdir`, `chmod`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Why a folder is not private.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotPrivate {
    /// It is a symlink: the agent never follows one out of its own folders.
    #[error("`{path}` is a symlink; fpga-sync's state and cache folders must be real folders")]
    Symlink {
        /// The folder.
        path: String,
    },
    /// It is not a folder.
    #[error("`{path}` is not a folder")]
    NotAFolder {
        /// The path.
        path: String,
    },
    /// Group or others may write it.
    #[error("`{path}` can be written by other users (mode {mode:04o}); run `chmod go-w {path}`")]
    Writable {
        /// The folder.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// Another user owns it.
    #[error(
        "`{path}` belongs to uid {owner}, not to this agent (uid {me}); run `chown {me} {path}`"
    )]
    Owner {
        /// The folder.
        path: String,
        /// Its owner.
        owner: u32,
        /// The agent's effective uid.
        me: u32,
    },
    /// It could not be created or read.
    #[error("`{path}`: {reason}")]
    Io {
        /// The folder.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Checks that `dir` exists, is a real folder, is owned by this process's user and is not
/// writable by group or others.
pub fn check(dir: &Path) -> Result<(), NotPrivate> {
    let path = dir.display().to_string();
    let meta = std::fs::symlink_metadata(dir).map_err(|e| NotPrivate::Io {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    if meta.file_type().is_symlink() {
        return Err(NotPrivate::Symlink { path });
    }
    if !meta.is_dir() {
        return Err(NotPrivate::NotAFolder { path });
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(NotPrivate::Owner {
            path,
            owner: meta.uid(),
            me,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(NotPrivate::Writable { path, mode });
    }
    Ok(())
}

/// Creates `dir` (and its missing parents) with mode `0700` where fpga-sync makes it, then
/// [`check`]s it.
pub fn ensure(dir: &Path) -> Result<(), NotPrivate> {
    if std::fs::symlink_metadata(dir).is_err() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(|e| NotPrivate::Io {
            path: dir.display().to_string(),
            reason: e.to_string(),
        })?;
        // The umask may have taken bits away; never added any.
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    check(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_made_here_are_private_and_others_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let made = root.path().join("state/cache/bitstreams");
        ensure(&made).unwrap();
        let mode = std::fs::metadata(&made).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);

        let open = root.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            check(&open),
            Err(NotPrivate::Writable { mode: 0o777, .. })
        ));
        assert!(check(&open).unwrap_err().to_string().contains("chmod go-w"));

        let link = root.path().join("link");
        std::os::unix::fs::symlink(&made, &link).unwrap();
        assert!(matches!(ensure(&link), Err(NotPrivate::Symlink { .. })));

        let file = root.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(matches!(check(&file), Err(NotPrivate::NotAFolder { .. })));
    }

    #[test]
    fn a_folder_of_another_user_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let theirs = root.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o700)).unwrap();
        // SAFETY: geteuid has no preconditions.
        let (folder, owner) = if unsafe { libc::geteuid() } == 0 {
            // Root can give a folder away.
            std::os::unix::fs::chown(&theirs, Some(4242), Some(4242)).unwrap();
            (theirs, 4242)
        } else {
            // Anyone else meets root's folders.
            (std::path::PathBuf::from("/"), 0)
        };
        assert!(matches!(
            check(&folder),
            Err(NotPrivate::Owner { owner: o, .. }) if o == owner
        ));
    }
}
