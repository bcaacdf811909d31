//! Atomic output: write under a temporary name, rename when complete.
//!
//! A stage writes its files into an [`OutputDir`], a hidden sibling folder named
//! `.<name>.partial-<pid>`; [`OutputDir::commit`] renames it to the final name. If the process fails or is
//! killed before that, no folder with the final name appears (a stale `.partial` folder may remain and is
//! removed by the next run). Single files use [`atomic_write`] the same way.

use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// A folder being written; becomes visible under its final name only on [`OutputDir::commit`].
#[derive(Debug)]
pub struct OutputDir {
    final_path: PathBuf,
    temp_path: PathBuf,
    committed: bool,
}

impl OutputDir {
    /// Starts writing the folder `path`. An existing folder at `path` is replaced on commit.
    pub fn create(path: &Path) -> Result<Self> {
        let name = path
            .file_name()
            .ok_or_else(|| Error::Usage(format!("output path {} has no folder name", path.display())))?
            .to_string_lossy()
            .to_string();
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        // Remove stale partial folders of earlier, interrupted runs.
        if let Ok(entries) = std::fs::read_dir(&parent) {
            let prefix = format!(".{name}.partial-");
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let temp_path = parent.join(format!(".{name}.partial-{}", std::process::id()));
        std::fs::create_dir_all(&temp_path).map_err(|e| Error::io(&temp_path, e))?;
        Ok(OutputDir { final_path: path.to_path_buf(), temp_path, committed: false })
    }

    /// Where to write a file named `name` inside the folder being built.
    pub fn path(&self, name: &str) -> PathBuf {
        self.temp_path.join(name)
    }

    /// The final path of the folder.
    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// Renames the temporary folder to its final name, replacing any folder there.
    pub fn commit(mut self) -> Result<PathBuf> {
        if self.final_path.exists() {
            if self.final_path.is_dir() {
                std::fs::remove_dir_all(&self.final_path).map_err(|e| Error::io(&self.final_path, e))?;
            } else {
                return Err(Error::Usage(format!("{} exists and is not a folder", self.final_path.display())));
            }
        }
        std::fs::rename(&self.temp_path, &self.final_path).map_err(|e| Error::io(&self.final_path, e))?;
        self.committed = true;
        Ok(self.final_path.clone())
    }
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.temp_path);
        }
    }
}

/// Writes a file atomically: `write` fills a temporary sibling which is renamed to `path` on success.
pub fn atomic_write<F>(path: &Path, write: F) -> Result<()>
where
    F: FnOnce(&Path) -> Result<()>,
{
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.partial-{}", std::process::id()));
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    match write(&temp) {
        Ok(()) => std::fs::rename(&temp, path).map_err(|e| Error::io(path, e)),
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncommitted_dir_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("out");
        {
            let d = OutputDir::create(&target).unwrap();
            std::fs::write(d.path("a.txt"), "x").unwrap();
        }
        assert!(!target.exists());
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn committed_dir_replaces_old() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("out");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("old.txt"), "x").unwrap();
        let d = OutputDir::create(&target).unwrap();
        std::fs::write(d.path("a.txt"), "x").unwrap();
        d.commit().unwrap();
        assert!(target.join("a.txt").exists());
        assert!(!target.join("old.txt").exists());
    }
}
