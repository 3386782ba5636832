//! Server files: `<servers_dir>/<name>.toml`, one [`ServerConfig`] each.
//!
//! `clara mcp add|remove|enable|disable` and the management tools change them
//! through these functions; a running Clara notices within seconds (see
//! [`crate::McpManager`]). Every write goes to a temporary file in the same
//! directory and is renamed over the old one, so a reader never sees half a
//! file. Files hold env values and tokens, so they are written readable by
//! their owner only.

use crate::config::ServerConfig;
use clara_core::component::ConfigError;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Why a server file could not be read or written. Never holds a secret: a
/// parse error gives the line and what was wrong, not the text.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a server configuration.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, without the file's text.
        message: String,
    },
    /// The configuration is not valid.
    #[error("{path}: {error}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        error: ConfigError,
    },
    /// There is no file for that server.
    #[error("there is no server named {0:?} in the servers directory")]
    NotFound(String),
}

/// The file of server `name` in `dir`.
pub fn server_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.toml"))
}

/// Writes `config` as `<dir>/<name>.toml` (creating `dir`), replacing any
/// earlier file of that server atomically. Returns the file.
pub fn write_server_file(dir: &Path, config: &ServerConfig) -> Result<PathBuf, FileError> {
    let path = server_file(dir, &config.name);
    config.validate().map_err(|error| FileError::Invalid {
        path: path.clone(),
        error,
    })?;
    let text = toml::to_string(&ServerFile::from(config)).map_err(|e| FileError::Parse {
        path: path.clone(),
        message: e.to_string(),
    })?;
    std::fs::create_dir_all(dir).map_err(|source| FileError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let temp = dir.join(format!(".{}.toml.{}.tmp", config.name, std::process::id()));
    let io = |source| FileError::Io {
        path: temp.clone(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temp).map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&temp, &path).map_err(|source| {
        let _ = std::fs::remove_file(&temp);
        FileError::Io {
            path: path.clone(),
            source,
        }
    })?;
    Ok(path)
}

/// Removes server `name`'s file. Returns whether there was one.
pub fn remove_server_file(dir: &Path, name: &str) -> Result<bool, FileError> {
    let path = server_file(dir, name);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(FileError::Io { path, source }),
    }
}

/// Enables or disables server `name` in its file (a server of `clara.toml` is
/// changed there, not here).
pub fn set_enabled(dir: &Path, name: &str, enabled: bool) -> Result<(), FileError> {
    let path = server_file(dir, name);
    if !path.exists() {
        return Err(FileError::NotFound(name.to_owned()));
    }
    let mut config = read_server_file(&path)?;
    config.enabled = enabled;
    write_server_file(dir, &config)?;
    Ok(())
}

/// Reads and checks one server file; its name must be the file's stem.
pub fn read_server_file(path: &Path) -> Result<ServerConfig, FileError> {
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Io {
        path: path.to_owned(),
        source,
    })?;
    let config: ServerConfig = toml::from_str(&text).map_err(|e| FileError::Parse {
        path: path.to_owned(),
        message: parse_message(&text, &e),
    })?;
    config.validate().map_err(|error| FileError::Invalid {
        path: path.to_owned(),
        error,
    })?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if stem != config.name {
        return Err(FileError::Invalid {
            path: path.to_owned(),
            error: ConfigError::new(format!(
                "the file of server {:?} must be named {:?}",
                config.name,
                format!("{}.toml", config.name)
            )),
        });
    }
    Ok(config)
}

/// Every server file in `dir` (`*.toml`, by file name), and the errors of
/// those that could not be read. A missing directory has none.
pub fn read_dir(dir: &Path) -> (Vec<ServerConfig>, Vec<FileError>) {
    let mut configs = Vec::new();
    let mut errors = Vec::new();
    for path in toml_files(dir) {
        match read_server_file(&path) {
            Ok(config) => configs.push(config),
            Err(error) => errors.push(error),
        }
    }
    (configs, errors)
}

/// The `*.toml` files of `dir` (not hidden ones: those are temporary), sorted.
pub(crate) fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "toml")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.'))
                && p.is_file()
        })
        .collect();
    files.sort();
    files
}

/// A TOML error as its line and message, without the quoted source text (it
/// may be a secret).
fn parse_message(text: &str, error: &toml::de::Error) -> String {
    match error.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {}", error.message())
        }
        None => error.message().to_owned(),
    }
}

/// The one place a [`ServerConfig`] is serialised: it mirrors the fields, with
/// the secrets exposed for writing to the (owner-only) file.
#[derive(Serialize)]
struct ServerFile<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    args: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    cwd: Option<&'a Path>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bearer_token: Option<&'a str>,
    enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    // Last: a table, which TOML writes after the plain keys.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    env: BTreeMap<&'a str, &'a str>,
}

impl<'a> From<&'a ServerConfig> for ServerFile<'a> {
    fn from(c: &'a ServerConfig) -> Self {
        Self {
            name: &c.name,
            command: c.command.as_deref(),
            args: &c.args,
            cwd: c.cwd.as_deref(),
            url: c.url.as_deref(),
            bearer_token: c.bearer_token.as_ref().map(|s| s.expose()),
            enabled: c.enabled,
            source: c.source.as_deref(),
            env: c
                .env
                .iter()
                .map(|(k, v)| (k.as_str(), v.expose()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clara_core::Secret;

    fn config(name: &str) -> ServerConfig {
        ServerConfig {
            name: name.into(),
            command: Some("node".into()),
            args: vec!["index.js".into(), "stdio".into()],
            env: [("API_KEY".to_owned(), Secret::from("sk-1 \"quoted\""))].into(),
            cwd: None,
            url: None,
            bearer_token: None,
            enabled: true,
            source: Some("npm:@scope/pkg@1.2.3".into()),
        }
    }

    #[test]
    fn a_written_file_reads_back_the_same_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_server_file(dir.path(), &config("everything")).unwrap();
        assert_eq!(path, dir.path().join("everything.toml"));
        assert_eq!(read_server_file(&path).unwrap(), config("everything"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn enable_disable_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        write_server_file(dir.path(), &config("a")).unwrap();
        set_enabled(dir.path(), "a", false).unwrap();
        let (configs, errors) = read_dir(dir.path());
        assert!(errors.is_empty());
        assert!(!configs[0].enabled);
        assert!(matches!(
            set_enabled(dir.path(), "b", true),
            Err(FileError::NotFound(_))
        ));
        assert!(remove_server_file(dir.path(), "a").unwrap());
        assert!(!remove_server_file(dir.path(), "a").unwrap());
        assert!(read_dir(dir.path()).0.is_empty());
    }

    #[test]
    fn bad_files_are_errors_without_their_text() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("x.toml"),
            "name = \"x\"\ncommand = \"c\"\nenv = { K = sk-secret-value }\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("y.toml"),
            "name = \"other\"\ncommand = \"c\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a server").unwrap();
        let (configs, errors) = read_dir(dir.path());
        assert!(configs.is_empty());
        assert_eq!(errors.len(), 2, "{errors:?}");
        let all = errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n");
        assert!(!all.contains("sk-secret"), "{all}");
        assert!(all.contains("line 3"), "{all}");
        assert!(all.contains("must be named"), "{all}");
    }
}
