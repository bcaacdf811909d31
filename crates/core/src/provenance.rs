//! Provenance: what produced a file, stored as JSON in the Parquet key-value metadata under
//! [`PROVENANCE_KEY`].
//!
//! It holds the tool version, the stage, the full command line, the parameters (JSON), every input file
//! with its size and SHA-256, the seed and the schema version. No timestamp is recorded, so the same
//! inputs, parameters and seed give byte-identical files.
//!
//! Hashing large inputs takes a while (SHA-256 of a million-cell `counts.parquet`, about half a second),
//! so with more than one thread [`Provenance::with_inputs`] hashes on a background thread while the stage
//! works, and the record is completed when it is first written ([`Provenance::to_json`]).

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

/// Key of the provenance JSON in the Parquet key-value metadata.
pub const PROVENANCE_KEY: &str = "tmescope.provenance";

/// One input file of a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    /// Path as given on the command line (or found inside a given folder).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
}

impl InputFile {
    /// Describes `path` (hashing its content, streamed).
    pub fn describe(path: &Path) -> Result<Self> {
        let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let size = f.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        let sha256 = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok(InputFile { path: path.display().to_string(), size, sha256 })
    }

    /// Describes a file or every regular file below a folder (sorted by path).
    pub fn describe_all(path: &Path) -> Result<Vec<Self>> {
        describe_files(&files_of(path)?)
    }
}

/// Describes each of `files`, in order.
fn describe_files(files: &[PathBuf]) -> Result<Vec<InputFile>> {
    files.iter().map(|p| InputFile::describe(p)).collect()
}

/// A file, or every regular file below a folder (sorted by path).
fn files_of(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    collect_files(path, &mut files)?;
    files.sort();
    Ok(files)
}

/// Input files being described on a background thread; the first [`Hashing::get`] waits for them.
#[derive(Debug)]
struct Hashing {
    thread: Mutex<Option<JoinHandle<Result<Vec<InputFile>>>>>,
    done: OnceLock<Result<Vec<InputFile>>>,
}

impl Hashing {
    /// Starts describing `files`.
    fn start(files: Vec<PathBuf>) -> Self {
        let thread = std::thread::spawn(move || describe_files(&files));
        Hashing { thread: Mutex::new(Some(thread)), done: OnceLock::new() }
    }

    /// The described files (the thread's error, if it failed).
    fn get(&self) -> Result<&[InputFile]> {
        let done = self.done.get_or_init(|| {
            let internal = |what: &str| Error::Internal(format!("describing the input files: {what}"));
            let thread = self.thread.lock().map_err(|_| internal("lock poisoned"))?.take();
            match thread.map(|t| t.join()) {
                Some(Ok(described)) => described,
                Some(Err(_)) => Err(internal("the hashing thread panicked")),
                None => Err(internal("result lost")),
            }
        });
        // The same error each time it is asked for (an unreadable input stays an input error, exit code 2).
        done.as_deref().map_err(Error::clone)
    }
}

fn collect_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let p = entry.map_err(|e| Error::io(dir, e))?.path();
        if p.is_dir() {
            collect_files(&p, out)?;
        } else if p.is_file() {
            out.push(p);
        }
    }
    Ok(())
}

/// What produced a file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Provenance {
    /// Name of the tool (`tmescope`).
    pub tool: String,
    /// Version of the tool.
    pub tool_version: String,
    /// The stage (`ingest`, `deconvolve`, ...).
    pub stage: String,
    /// The command line, one argument per entry.
    pub command_line: Vec<String>,
    /// All parameters of the stage, defaults included.
    pub parameters: serde_json::Value,
    /// Input files with sizes and hashes; in a record being built, only those described so far (see
    /// [`Provenance::resolved`]).
    pub inputs: Vec<InputFile>,
    /// The random seed, when the stage draws random numbers.
    pub seed: Option<u64>,
    /// Version of the schema of the file (see `docs/formats.md`).
    pub schema_version: u32,
    /// Free-form notes (e.g. what was dropped and why).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Inputs still being hashed, in the order they were added (all after `inputs`).
    #[serde(skip)]
    hashing: Vec<Arc<Hashing>>,
}

impl PartialEq for Provenance {
    /// Equal records: the same fields, inputs still being hashed compared as the same hashing.
    fn eq(&self, other: &Self) -> bool {
        self.tool == other.tool
            && self.tool_version == other.tool_version
            && self.stage == other.stage
            && self.command_line == other.command_line
            && self.parameters == other.parameters
            && self.inputs == other.inputs
            && self.seed == other.seed
            && self.schema_version == other.schema_version
            && self.notes == other.notes
            && self.hashing.len() == other.hashing.len()
            && self.hashing.iter().zip(&other.hashing).all(|(a, b)| Arc::ptr_eq(a, b))
    }
}

impl Provenance {
    /// A provenance record for `stage` with the process's command line and no inputs yet.
    pub fn new(stage: &str, parameters: serde_json::Value) -> Self {
        Provenance {
            tool: "tmescope".into(),
            tool_version: crate::TOOL_VERSION.into(),
            stage: stage.into(),
            command_line: std::env::args().collect(),
            parameters,
            inputs: vec![],
            seed: None,
            schema_version: crate::schema::SCHEMA_VERSION,
            notes: vec![],
            hashing: vec![],
        }
    }

    /// Adds the files at `path` (a file or a folder) as inputs. They are listed now (an error if `path`
    /// cannot be read) and hashed on a background thread when the global thread pool has more than one
    /// thread, in place otherwise. `expected` says what the path should hold, for the error when it does
    /// not exist (e.g. "the --graph folder written by `tmescope graph`").
    pub fn with_inputs(mut self, path: &Path, expected: &str) -> Result<Self> {
        if !path.exists() {
            return Err(Error::file(path, format!("missing: expected {expected}")));
        }
        let files = files_of(path)?;
        if rayon::current_num_threads() > 1 {
            self.hashing.push(Arc::new(Hashing::start(files)));
        } else {
            self.inputs.extend(describe_files(&files)?);
        }
        Ok(self)
    }

    /// The complete record: every input described (waiting for the hashing still running). An error if
    /// an input could not be read.
    pub fn resolved(&self) -> Result<Provenance> {
        let mut p = self.clone();
        for h in std::mem::take(&mut p.hashing) {
            p.inputs.extend_from_slice(h.get()?);
        }
        Ok(p)
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The JSON text stored in the metadata, of the [`Provenance::resolved`] record.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(&self.resolved()?).map_err(|e| Error::Internal(format!("provenance: {e}")))
    }

    /// Parses the JSON stored in the metadata.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::Internal(format!("unreadable provenance: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(f)
    }

    #[test]
    fn inputs_hashed_in_the_background_give_the_same_record() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("b.txt"), "abc").unwrap();
        std::fs::write(dir.path().join("sub").join("a.txt"), "").unwrap();
        let single = dir.path().join("b.txt");
        let build = || {
            Provenance::new("test", serde_json::json!({"k": 1}))
                .with_inputs(dir.path(), "a folder")
                .and_then(|p| p.with_inputs(&single, "a file"))
                .unwrap()
        };
        let inline = in_pool(1, build);
        let background = in_pool(2, build);
        assert_eq!(inline.inputs.len(), 3);
        assert!(background.inputs.is_empty(), "hashed on a background thread");
        assert_eq!(background.to_json().unwrap(), inline.to_json().unwrap());
        let done = background.resolved().unwrap();
        assert_eq!(done, inline);
        assert_eq!(done.inputs[0].sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(done.inputs[1].path.ends_with("a.txt") && done.inputs[1].size == 0);
        assert_eq!(Provenance::from_json(&background.to_json().unwrap()).unwrap(), inline);
    }

    #[test]
    fn a_missing_input_is_an_error_now_or_when_written() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.parquet");
        for threads in [1, 2] {
            let e = in_pool(threads, || {
                Provenance::new("t", serde_json::json!({})).with_inputs(&missing, "the --graph folder")
            })
            .unwrap_err();
            let text = e.to_string();
            assert!(text.contains("missing.parquet") && text.contains("expected the --graph folder"), "{text}");
            assert!(e.is_user_error());
        }
        // Listed, then gone before it is hashed: the record cannot be written.
        let f = dir.path().join("gone.txt");
        std::fs::write(&f, "x").unwrap();
        let p = in_pool(2, || {
            let p = Provenance::new("t", serde_json::json!({}));
            let files = files_of(&f).unwrap();
            std::fs::remove_file(&f).unwrap();
            Provenance { hashing: vec![Arc::new(Hashing::start(files))], ..p }
        });
        let err = p.to_json().unwrap_err();
        assert!(err.to_string().contains("gone.txt") && err.is_user_error(), "{err}");
        assert!(p.to_json().is_err_and(|e| e.to_string() == err.to_string()), "the error stays");
    }
}
