//! Provenance: what produced a file, stored as JSON in the Parquet key-value metadata under
//! [`PROVENANCE_KEY`].
//!
//! It holds the tool version, the stage, the full command line, the parameters (JSON), every input file
//! with its size and SHA-256, the seed and the schema version. No timestamp is recorded, so the same
//! inputs, parameters and seed give byte-identical files.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

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
        if path.is_file() {
            return Ok(vec![Self::describe(path)?]);
        }
        let mut files = Vec::new();
        collect_files(path, &mut files)?;
        files.sort();
        files.iter().map(|p| Self::describe(p)).collect()
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Input files with sizes and hashes.
    pub inputs: Vec<InputFile>,
    /// The random seed, when the stage draws random numbers.
    pub seed: Option<u64>,
    /// Version of the schema of the file (see `docs/formats.md`).
    pub schema_version: u32,
    /// Free-form notes (e.g. what was dropped and why).
    #[serde(default)]
    pub notes: Vec<String>,
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
        }
    }

    /// Adds the files at `path` (a file or a folder) as inputs.
    pub fn with_inputs(mut self, path: &Path) -> Result<Self> {
        self.inputs.extend(InputFile::describe_all(path)?);
        Ok(self)
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The JSON text stored in the metadata.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("provenance serialises")
    }

    /// Parses the JSON stored in the metadata.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::Internal(format!("unreadable provenance: {e}")))
    }
}
