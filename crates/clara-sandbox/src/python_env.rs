//! The read-only Python environment runs use: a virtual environment of the
//! host's system Python (`/usr/bin/python3`, which the sandbox sees because
//! it sees `/usr`; a pyenv or other Python outside `/usr` would not work
//! inside) with pinned numpy, pandas, matplotlib and openpyxl, kept at
//! `<data dir>/python` (setting `python_env`) and bound read-only at
//! `/opt/clara-py` by the bubblewrap backend. Runs have no network, so the
//! libraries must be there beforehand.
//!
//! [`PythonEnv::prepare`] (`clara sandbox setup`) makes it: `python3 -m venv`
//! and `pip install` into a temporary directory beside it, a marker file,
//! then a rename, so a half-made environment is never used.
//! [`PythonEnv::ready`] checks the marker.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// The Python that makes the environment: the system's, under `/usr`.
pub const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// Where the environment is seen inside the sandbox.
pub const MOUNT: &str = crate::bwrap::PYTHON_ENV_DIR;

/// The libraries installed, pinned (each has CPython 3.11+ manylinux wheels,
/// so nothing is compiled), and named in the code tools' descriptions.
pub const PACKAGES: &[(&str, &str)] = &[
    ("numpy", "2.4.6"),
    ("pandas", "3.1.2"),
    ("matplotlib", "3.11.2"),
    ("openpyxl", "3.1.5"),
];

/// What [`PACKAGES`] need, pinned too, so every machine gets the same
/// environment (as `pip freeze` showed them installed together).
pub const DEPENDENCIES: &[(&str, &str)] = &[
    ("contourpy", "1.3.3"),
    ("cycler", "0.12.1"),
    ("et_xmlfile", "2.0.0"),
    ("fonttools", "4.69.1"),
    ("kiwisolver", "1.5.1"),
    ("packaging", "26.4"),
    ("pillow", "13.0.0"),
    ("pyparsing", "3.3.3"),
    ("python-dateutil", "4.0.0"),
    ("tzdata", "2026.6"),
];

/// The file written last, holding the requirements it was made with.
const MARKER: &str = ".clara-ready";

/// The longest `venv` or `pip` may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Why the environment could not be made: one sentence.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PythonEnvError {
    /// There is no system Python.
    #[error(
        "There is no system Python at {SYSTEM_PYTHON} (install python3 and python3-venv from the system's packages)."
    )]
    NoPython,
    /// A step failed.
    #[error("{0}")]
    Failed(String),
}

/// What [`PythonEnv::prepare`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prepared {
    /// The environment was already there, complete.
    AlreadyReady,
    /// It was made now.
    Installed,
}

/// The read-only Python environment at one path on the host.
pub struct PythonEnv;

impl PythonEnv {
    /// The requirement lines (`numpy==2.4.6`), dependencies included.
    pub fn requirements() -> Vec<String> {
        PACKAGES
            .iter()
            .chain(DEPENDENCIES)
            .map(|(name, version)| format!("{name}=={version}"))
            .collect()
    }

    /// The libraries' names, for the tools' descriptions.
    pub fn libraries() -> Vec<String> {
        PACKAGES
            .iter()
            .map(|(name, _)| (*name).to_owned())
            .collect()
    }

    /// Whether a complete environment of the current pins is at `path`, made
    /// by the Python the system still has.
    pub fn ready(path: &Path) -> bool {
        let Ok(marker) = std::fs::read_to_string(path.join(MARKER)) else {
            return false;
        };
        if marker != marker_text() {
            return false;
        }
        // A system upgrade to another Python leaves the environment's links dangling.
        std::fs::metadata(path.join("bin").join("python3")).is_ok()
    }

    /// Makes the environment at `path` unless it is [ready](Self::ready):
    /// in a temporary directory beside it, then renamed into place (an
    /// older, incomplete one is replaced). Downloads from PyPI (pip gets
    /// this process's environment, so proxies, `PIP_*` settings and CA
    /// bundles apply); a minute or two.
    pub async fn prepare(path: &Path) -> Result<Prepared, PythonEnvError> {
        if Self::ready(path) {
            return Ok(Prepared::AlreadyReady);
        }
        if !Path::new(SYSTEM_PYTHON).exists() {
            return Err(PythonEnvError::NoPython);
        }
        let (parent, name) = match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) => (parent, name.to_string_lossy().into_owned()),
            _ => {
                return Err(PythonEnvError::Failed(format!(
                    "{} cannot hold the Python environment.",
                    path.display()
                )));
            }
        };
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        std::fs::create_dir_all(parent).map_err(|e| io_failed(parent, &e))?;
        let unique = format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        );
        let temp = parent.join(format!(".{name}.making-{unique}"));
        let made = make(&temp).await;
        let placed = match made {
            Ok(()) => place(&temp, path, &parent.join(format!(".{name}.old-{unique}"))),
            Err(error) => Err(error),
        };
        if placed.is_err() {
            let _ = std::fs::remove_dir_all(&temp);
        }
        placed.map(|()| Prepared::Installed)
    }
}

/// What the marker holds: the requirements, one a line.
fn marker_text() -> String {
    let mut text = PythonEnv::requirements().join("\n");
    text.push('\n');
    text
}

/// Makes a complete environment at `dir`.
async fn make(dir: &Path) -> Result<(), PythonEnvError> {
    let _ = std::fs::remove_dir_all(dir);
    let mut venv = tokio::process::Command::new(SYSTEM_PYTHON);
    venv.arg("-m").arg("venv").arg(dir);
    run_step(venv, "python3 -m venv could not make the environment").await?;

    let mut pip = tokio::process::Command::new(dir.join("bin").join("python3"));
    pip.args([
        "-m",
        "pip",
        "install",
        "--no-input",
        "--disable-pip-version-check",
        "--no-warn-script-location",
        // Wheels only: nothing is compiled on this machine.
        "--only-binary=:all:",
        // Compiled bytecode ships with it: the environment is read-only
        // inside, and without .pyc files every import would parse again.
        "--compile",
    ])
    .args(PythonEnv::requirements())
    // The caller's environment may ask for no bytecode; this one needs it.
    .env_remove("PYTHONDONTWRITEBYTECODE");
    run_step(pip, "pip could not install the Python libraries").await?;

    std::fs::write(dir.join(MARKER), marker_text()).map_err(|e| io_failed(dir, &e))
}

/// Moves the finished environment `temp` to `path`, an older one first aside
/// to `old` and then away.
fn place(temp: &Path, path: &Path, old: &Path) -> Result<(), PythonEnvError> {
    let had_old = match std::fs::symlink_metadata(path) {
        Ok(_) => {
            std::fs::rename(path, old).map_err(|e| io_failed(path, &e))?;
            true
        }
        Err(_) => false,
    };
    std::fs::rename(temp, path).map_err(|e| io_failed(path, &e))?;
    if had_old {
        let _ = std::fs::remove_dir_all(old);
    }
    Ok(())
}

/// Runs one step, its output captured; a failure is `what` with the last
/// line the step printed (pip's `ERROR: …`).
async fn run_step(mut command: tokio::process::Command, what: &str) -> Result<(), PythonEnvError> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = match tokio::time::timeout(STEP_TIMEOUT, command.output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(error)) => return Err(PythonEnvError::Failed(format!("{what}: {error}."))),
        Err(_) => {
            return Err(PythonEnvError::Failed(format!(
                "{what}: it took longer than {} minutes.",
                STEP_TIMEOUT.as_secs() / 60
            )));
        }
    };
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = last_line(&stderr)
        .or_else(|| last_line(&stdout))
        .unwrap_or("it printed nothing");
    Err(PythonEnvError::Failed(
        format!("{what} ({}): {}", output.status, last.trim_end_matches('.')) + ".",
    ))
}

/// The last line with something on it.
fn last_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).rfind(|line| !line.is_empty())
}

fn io_failed(path: &Path, error: &std::io::Error) -> PythonEnvError {
    PythonEnvError::Failed(format!(
        "The Python environment could not be made at {}: {error}.",
        path.display()
    ))
}

/// The default place of the environment: `<data dir>/python`.
pub fn default_path(data_dir: &Path) -> PathBuf {
    data_dir.join("python")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_needs_the_marker_of_these_pins_and_a_python() {
        let temp = tempfile::tempdir().unwrap();
        let env = temp.path().join("python");
        assert!(!PythonEnv::ready(&env));
        std::fs::create_dir_all(env.join("bin")).unwrap();
        std::fs::write(env.join(MARKER), "numpy==1.0\n").unwrap();
        std::os::unix::fs::symlink(SYSTEM_PYTHON, env.join("bin/python3")).unwrap();
        assert!(!PythonEnv::ready(&env), "old pins are not ready");
        std::fs::write(env.join(MARKER), marker_text()).unwrap();
        assert!(PythonEnv::ready(&env));
        std::fs::remove_file(env.join("bin/python3")).unwrap();
        std::os::unix::fs::symlink("/usr/bin/python3.0", env.join("bin/python3")).unwrap();
        assert!(!PythonEnv::ready(&env), "a dangling python is not ready");
    }

    #[test]
    fn placing_replaces_an_older_environment() {
        let temp = tempfile::tempdir().unwrap();
        let (made, path, old) = (
            temp.path().join("made"),
            temp.path().join("python"),
            temp.path().join("old"),
        );
        std::fs::create_dir_all(&made).unwrap();
        std::fs::write(made.join("new"), "").unwrap();
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join("stale"), "").unwrap();
        place(&made, &path, &old).unwrap();
        assert!(path.join("new").exists());
        assert!(!path.join("stale").exists());
        assert!(!old.exists() && !made.exists());
    }

    #[test]
    fn a_failed_step_says_its_last_line() {
        assert_eq!(
            last_line("Collecting x\nERROR: No matching distribution found for x\n\n"),
            Some("ERROR: No matching distribution found for x")
        );
        assert_eq!(last_line("  \n"), None);
    }

    #[tokio::test]
    async fn a_failing_step_is_one_sentence() {
        let mut command = tokio::process::Command::new("sh");
        command.args(["-c", "echo working; echo 'ERROR: no network.' >&2; exit 3"]);
        let error = run_step(command, "pip could not install the Python libraries")
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "pip could not install the Python libraries (exit status: 3): ERROR: no network."
        );
    }
}
