//! A small disk of a test's own: a tmpfs mounted on a folder, which the
//! test can fill up (every further write fails with `ENOSPC`, "No space
//! left on device", as on a real full disk) and free again.
//!
//! Mounting needs `CAP_SYS_ADMIN`: tests run as root in the project's
//! containers (and CI), where `mount -t tmpfs` works. `chmod` would not do:
//! root ignores permissions.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted on a folder; unmounted when dropped.
#[derive(Debug)]
pub struct SmallDisk {
    mount_point: PathBuf,
    filler: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (`mount`'s syntax: `64m`) on `mount_point`
    /// (created if missing); panics naming what failed.
    pub fn mount(mount_point: &Path, size: &str) -> Self {
        std::fs::create_dir_all(mount_point).unwrap();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(mount_point)
            .output()
            .expect("running mount");
        assert!(
            output.status.success(),
            "mounting a {size} tmpfs on {} (needs root with CAP_SYS_ADMIN): {}",
            mount_point.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        Self {
            mount_point: mount_point.to_path_buf(),
            filler: mount_point.join(".filler"),
        }
    }

    /// Fills every free byte, so the next write anywhere on the disk fails
    /// with "No space left on device".
    pub fn fill(&self) {
        let mut file = std::fs::File::create(&self.filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        let mut chunk = block.len();
        // Down to single bytes: a page-sized hole would still take a small file.
        while chunk > 0 {
            match file.write(&block[..chunk]) {
                Ok(0) => chunk /= 2,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => chunk /= 2,
                Err(e) => panic!("filling {}: {e}", self.filler.display()),
            }
        }
        let _ = file.sync_all();
    }

    /// Frees what [`fill`](Self::fill) took.
    pub fn free(&self) {
        std::fs::remove_file(&self.filler).unwrap();
    }

    /// Free bytes (`df`'s view).
    pub fn available(&self) -> u64 {
        let output = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.mount_point)
            .output()
            .expect("running df");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("df's answer")
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: a process still holding a file there must not keep it mounted.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mount_point)
            .output();
    }
}
