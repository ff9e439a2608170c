//! Test support: a small disk that fills up. Used by the fault tests of
//! this crate and of the crates above it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of a few MiB mounted on a fresh temporary directory (needs
/// root, as CI has), unmounted on drop. `fill` takes all space but
/// `leave` bytes with a filler file; `free` deletes it.
pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    pub fn mount(bytes: u64) -> std::io::Result<SmallDisk> {
        let dir = tempfile::tempdir()?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .status()?;
        if !status.success() {
            return Err(std::io::Error::other(format!(
                "mounting a {bytes}-byte tmpfs on {} failed ({status}); the disk-full tests need root",
                dir.path().display()
            )));
        }
        Ok(SmallDisk { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn filler(&self) -> PathBuf {
        self.dir.path().join("filler")
    }

    /// Fills the disk, then frees `leave` bytes of it (tmpfs frees pages
    /// as soon as a file shrinks).
    pub fn fill(&self, leave: u64) -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.filler())?;
        let chunk = vec![0xAAu8; 64 << 10];
        for size in [64 << 10, 4 << 10, 1] {
            loop {
                match f.write_all(&chunk[..size]) {
                    Ok(()) => {}
                    Err(e) if crate::is_storage_full(&e) => break,
                    Err(e) => return Err(e),
                }
            }
        }
        let len = f.metadata()?.len();
        f.set_len(len.saturating_sub(leave))
    }

    /// Frees what `fill` took.
    pub fn free(&self) -> std::io::Result<()> {
        match std::fs::remove_file(self.filler()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
