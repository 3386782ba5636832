//! `[sandbox]` in `clara.toml`, and the tool integration built on it.
//!
//! [`SandboxIntegration`] gives two providers: `code` (`code__python`,
//! `code__shell`) and `files` (`files__read_file`, `files__write_file`,
//! `files__list_files`, `files__send_file`). Building them starts nothing.
//! When the registry first asks the `code` provider for its tools it picks
//! the backend — `auto`: bubblewrap if its self-test passes, else Docker
//! (when built with the `docker` feature) if its self-test passes — and runs
//! the self-test; when none passes it answers with one sentence for the
//! owner ("The code sandbox is off: …. Code tools are not offered.") and no
//! code tool exists. Code never runs on the host instead.
//!
//! The file tools act on the host side of the workspace (kept inside it by
//! [`Workspaces`]), so they are offered whatever the sandbox does, also with
//! `mode = "off"` (which turns only the code tools off, silently).

use crate::bwrap::{Bwrap, BwrapConfig};
use crate::python_env::{MOUNT, PythonEnv};
use crate::run::{Limits, Sandbox};
use crate::tools::{CODE_SERVER, CodeConfig, FILES_SERVER, FilesConfig, code_tools, file_tools};
use crate::workspace::Workspaces;
use async_trait::async_trait;
use clara_core::component::{Component, ConfigError, EnvKey};
use clara_tools::{StaticTools, Tool, ToolError, ToolIntegration, ToolProvider};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Which backend runs code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Mode {
    /// Bubblewrap if it works here, else Docker if it does.
    #[default]
    Auto,
    /// Bubblewrap only.
    Bwrap,
    /// Docker only (needs the `docker` feature).
    Docker,
    /// No code tools.
    Off,
}

impl TryFrom<String> for Mode {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Self::Auto),
            "bwrap" | "bubblewrap" => Ok(Self::Bwrap),
            "docker" => Ok(Self::Docker),
            "off" | "none" => Ok(Self::Off),
            _ => Err("expected auto, bwrap, docker or off".to_owned()),
        }
    }
}

/// `[sandbox]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxSettings {
    /// `auto` (default), `bwrap`, `docker` or `off`. Environment: `SANDBOX_MODE`.
    pub mode: Mode,
    /// The Docker backend's image. Environment: `DOCKER_SANDBOX_IMAGE`.
    /// Default `python:3.12-slim` (standard library only).
    pub docker_image: Option<String>,
    /// Seconds a run may take, with every backend. Environment:
    /// `DOCKER_SANDBOX_TIMEOUT`. Default 900.
    pub timeout_secs: Option<u64>,
    /// Memory of a run, in MiB. Default 512.
    pub memory_mb: Option<u64>,
    /// Processes and threads of a run at once. Default 64.
    pub processes: Option<u32>,
    /// CPU seconds of a run. Default: `timeout_secs`.
    pub cpu_secs: Option<u64>,
    /// Whether runs may reach the network. Default false; when on, the code
    /// tools ask the owner before each run.
    pub network: bool,
    /// Where the workspaces are: `<workspaces_dir>/<user id>`. Default
    /// `<data dir>/workspaces` (set by the binary).
    pub workspaces_dir: Option<PathBuf>,
    /// The read-only Python environment (`clara sandbox setup` makes it).
    /// Default `<data dir>/python` (set by the binary).
    pub python_env: Option<PathBuf>,
    /// About how many characters of a run's output the model reads. Default 8000.
    pub max_output_chars: Option<usize>,
    /// The largest file the file tools read, write or send, in MiB. Default 20.
    pub max_file_mb: Option<u64>,
    /// The Docker engine (`unix:///var/run/docker.sock`, `tcp://host:2375`).
    /// Environment: `DOCKER_HOST`.
    pub docker_host: Option<String>,
}

/// [`SandboxSettings`] checked, with defaults applied.
#[derive(Clone, Debug, PartialEq)]
pub struct SandboxConfig {
    /// Which backend runs code.
    pub mode: Mode,
    /// The limits of every run.
    pub limits: Limits,
    /// Whether runs may reach the network.
    pub network: bool,
    /// The workspaces' root.
    pub workspaces_dir: PathBuf,
    /// The read-only Python environment, when configured.
    pub python_env: Option<PathBuf>,
    /// About how many characters of output the model reads.
    pub max_output_chars: usize,
    /// The largest file the file tools handle, in bytes.
    pub max_file_bytes: u64,
    /// The Docker image, when not the default.
    pub docker_image: Option<String>,
    /// The Docker engine, when not the default.
    pub docker_host: Option<String>,
}

impl SandboxSettings {
    /// Checks the values; an error names the key.
    pub fn config(&self) -> Result<SandboxConfig, ConfigError> {
        let positive = |value: Option<u64>, default: u64, key: &str| match value {
            Some(0) => Err(ConfigError::new(format!(
                "[sandbox] {key} must be at least 1"
            ))),
            Some(n) => Ok(n),
            None => Ok(default),
        };
        let timeout = positive(
            self.timeout_secs,
            900,
            "timeout_secs (DOCKER_SANDBOX_TIMEOUT)",
        )?;
        let cpu = positive(self.cpu_secs, timeout, "cpu_secs")?;
        let memory_mb = positive(self.memory_mb, 512, "memory_mb")?;
        if memory_mb < 16 {
            return Err(ConfigError::new("[sandbox] memory_mb must be at least 16"));
        }
        let processes = positive(self.processes.map(u64::from), 64, "processes")?;
        let max_file_mb = positive(self.max_file_mb, 20, "max_file_mb")?;
        let max_output_chars = self.max_output_chars.unwrap_or(8_000);
        if max_output_chars < 200 {
            return Err(ConfigError::new(
                "[sandbox] max_output_chars must be at least 200",
            ));
        }
        let workspaces_dir = self.workspaces_dir.clone().ok_or_else(|| {
            ConfigError::new(
                "[sandbox] workspaces_dir is not set (Clara sets it to <data dir>/workspaces)",
            )
        })?;
        let text = |value: &Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        Ok(SandboxConfig {
            mode: self.mode,
            limits: Limits {
                wall: Duration::from_secs(timeout),
                cpu: Duration::from_secs(cpu),
                memory_bytes: memory_mb.saturating_mul(1024 * 1024),
                processes: u32::try_from(processes).unwrap_or(u32::MAX),
                ..Limits::default()
            },
            network: self.network,
            workspaces_dir,
            python_env: self.python_env.clone(),
            max_output_chars,
            max_file_bytes: max_file_mb.saturating_mul(1024 * 1024),
            docker_image: text(&self.docker_image),
            docker_host: text(&self.docker_host),
        })
    }
}

/// The sandbox integration: section `[sandbox]`.
pub struct SandboxIntegration;

impl Component for SandboxIntegration {
    const NAME: &'static str = "sandbox";
    const ENV: &'static [EnvKey] = &[
        ("SANDBOX_MODE", "mode"),
        ("DOCKER_SANDBOX_IMAGE", "docker_image"),
        ("DOCKER_SANDBOX_TIMEOUT", "timeout_secs"),
        ("DOCKER_HOST", "docker_host"),
    ];
    type Settings = SandboxSettings;
}

impl SandboxIntegration {
    /// The workspaces `settings` describe: what the binary stores uploads in
    /// ([`Workspaces::put_upload`]).
    pub fn workspaces(settings: &SandboxSettings) -> Result<Workspaces, ConfigError> {
        let config = settings.config()?;
        Ok(Workspaces::new(
            config.workspaces_dir,
            config.max_file_bytes,
        ))
    }
}

impl ToolIntegration for SandboxIntegration {
    /// `code` (unless `mode = "off"`) and `files`. Starts nothing: the
    /// backend is chosen and tested when the registry first lists `code`.
    fn providers(settings: SandboxSettings) -> Result<Vec<Arc<dyn ToolProvider>>, ConfigError> {
        let config = settings.config()?;
        let workspaces = Workspaces::new(config.workspaces_dir.clone(), config.max_file_bytes);
        let files = file_tools(
            workspaces,
            FilesConfig {
                network: config.network && config.mode != Mode::Off,
                max_read_chars: config.max_output_chars,
                ..FilesConfig::default()
            },
        );
        let mut providers: Vec<Arc<dyn ToolProvider>> = Vec::new();
        if config.mode != Mode::Off {
            providers.push(Arc::new(CodeProvider::new(config)));
        }
        providers.push(Arc::new(StaticTools::new(FILES_SERVER, files)));
        Ok(providers)
    }
}

/// The `code` server: picks and tests the backend when first asked for its
/// tools, and keeps the one that passed.
pub struct CodeProvider {
    config: SandboxConfig,
    workspaces: Workspaces,
    given: Option<Vec<Arc<dyn Sandbox>>>,
    chosen: tokio::sync::Mutex<Option<Arc<dyn Sandbox>>>,
}

impl CodeProvider {
    /// The provider for `config`, with the backends its mode names.
    pub fn new(config: SandboxConfig) -> Self {
        let workspaces = Workspaces::new(config.workspaces_dir.clone(), config.max_file_bytes);
        Self {
            config,
            workspaces,
            given: None,
            chosen: tokio::sync::Mutex::new(None),
        }
    }

    /// The provider for `config`, trying `sandboxes` in order instead of the
    /// backends its mode names (tests, or a binary with its own backend).
    pub fn with_sandboxes(config: SandboxConfig, sandboxes: Vec<Arc<dyn Sandbox>>) -> Self {
        Self {
            given: Some(sandboxes),
            ..Self::new(config)
        }
    }

    /// The backend in use: the first that passes its self-test (tried once
    /// more on every call until one has), or one sentence saying why there
    /// is none.
    pub async fn sandbox(&self) -> Result<Arc<dyn Sandbox>, String> {
        let mut chosen = self.chosen.lock().await;
        if let Some(sandbox) = chosen.as_ref() {
            return Ok(Arc::clone(sandbox));
        }
        let candidates = match &self.given {
            Some(given) => given.iter().cloned().map(Ok).collect(),
            None => self.candidates(),
        };
        let mut failures = Vec::new();
        for candidate in candidates {
            let sandbox = match candidate {
                Ok(sandbox) => sandbox,
                Err(failure) => {
                    failures.push(failure);
                    continue;
                }
            };
            match sandbox.self_test().await {
                Ok(()) => {
                    tracing::info!(
                        backend = sandbox.name(),
                        "the code sandbox passed its self-test"
                    );
                    *chosen = Some(Arc::clone(&sandbox));
                    return Ok(sandbox);
                }
                Err(error) => failures.push(format!(
                    "{}: {}",
                    display_name(sandbox.name()),
                    clause(&error.to_string())
                )),
            }
        }
        Err(if failures.is_empty() {
            "no backend is configured".to_owned()
        } else {
            failures.join("; ")
        })
    }

    /// The backends the mode names, made now (making them creates cgroups or
    /// a Docker client, so not before the tools are wanted).
    fn candidates(&self) -> Vec<Result<Arc<dyn Sandbox>, String>> {
        // Bubblewrap's only network is the host's own namespace, loopback
        // included: a run could reach Clara's loopback API and every local
        // service. With the network on, only Docker (its own bridge) runs code.
        let bwrap = || {
            if self.config.network {
                Err("bubblewrap: with network = true a run would share the host's network, Clara's own loopback API included; runs with network need the Docker backend".to_owned())
            } else {
                Ok(self.bwrap())
            }
        };
        match self.config.mode {
            Mode::Off => Vec::new(),
            Mode::Bwrap => vec![bwrap()],
            Mode::Docker => vec![self.docker()],
            #[cfg(feature = "docker")]
            Mode::Auto => vec![bwrap(), self.docker()],
            #[cfg(not(feature = "docker"))]
            Mode::Auto => vec![bwrap()],
        }
    }

    fn bwrap(&self) -> Arc<dyn Sandbox> {
        let mut config = BwrapConfig::default();
        if let Some(env) = self.ready_python_env() {
            config.read_only_binds.push((env, PathBuf::from(MOUNT)));
        }
        Arc::new(Bwrap::new(config))
    }

    #[cfg(feature = "docker")]
    fn docker(&self) -> Result<Arc<dyn Sandbox>, String> {
        let mut config = crate::docker::DockerConfig::default();
        if let Some(host) = &self.config.docker_host {
            config.host.clone_from(host);
        }
        if let Some(image) = &self.config.docker_image {
            config.image.clone_from(image);
        }
        crate::docker::Docker::connect(config)
            .map(|docker| Arc::new(docker) as Arc<dyn Sandbox>)
            .map_err(|error| format!("Docker: {}", clause(&error.to_string())))
    }

    #[cfg(not(feature = "docker"))]
    fn docker(&self) -> Result<Arc<dyn Sandbox>, String> {
        Err("Docker: this Clara was built without Docker support (the `docker` feature)".to_owned())
    }

    /// The Python environment, when configured and complete.
    fn ready_python_env(&self) -> Option<PathBuf> {
        let path = self.config.python_env.as_ref()?;
        if PythonEnv::ready(path) {
            Some(path.clone())
        } else {
            tracing::warn!(
                path = %path.display(),
                "the sandbox's Python environment is not prepared (run `clara sandbox setup`): Python has only its standard library"
            );
            None
        }
    }

    /// The Python libraries runs on `sandbox` have, as far as Clara knows.
    fn python_libraries(&self, sandbox: &dyn Sandbox) -> Option<Vec<String>> {
        match sandbox.name() {
            "bwrap" => Some(if self.ready_python_env().is_some() {
                PythonEnv::libraries()
            } else {
                Vec::new()
            }),
            // The default image has the standard library only; another
            // image has whatever its maker put in.
            "docker" if self.config.docker_image.is_none() => Some(Vec::new()),
            _ => None,
        }
    }
}

#[async_trait]
impl ToolProvider for CodeProvider {
    fn server(&self) -> &str {
        CODE_SERVER
    }

    async fn tools(&self) -> Result<Vec<Arc<dyn Tool>>, ToolError> {
        let sandbox = self.sandbox().await.map_err(|why| {
            ToolError::Failed(format!(
                "The code sandbox is off: {why}. Code tools are not offered."
            ))
        })?;
        let config = CodeConfig {
            limits: self.config.limits,
            network: self.config.network,
            max_output_chars: self.config.max_output_chars,
            python_libraries: self.python_libraries(sandbox.as_ref()),
            ..CodeConfig::default()
        };
        let sandbox: Arc<dyn Sandbox> = Arc::new(crate::queued::Queued::per_core(sandbox));
        Ok(code_tools(sandbox, self.workspaces.clone(), config))
    }
}

/// A backend's name for people.
fn display_name(name: &str) -> &str {
    match name {
        "bwrap" => "bubblewrap",
        "docker" => "Docker",
        other => other,
    }
}

/// A sentence as a clause: without its final period.
fn clause(sentence: &str) -> &str {
    sentence.trim().trim_end_matches('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: serde_json::Value) -> Result<SandboxSettings, serde_json::Error> {
        serde_json::from_value(json)
    }

    #[test]
    fn defaults_follow_the_issue() {
        let config = settings(serde_json::json!({"workspaces_dir": "/w"}))
            .unwrap()
            .config()
            .unwrap();
        assert_eq!(config.mode, Mode::Auto);
        assert_eq!(config.limits.wall, Duration::from_secs(900));
        assert_eq!(config.limits.cpu, Duration::from_secs(900));
        assert_eq!(config.limits.memory_bytes, 512 * 1024 * 1024);
        assert_eq!(config.limits.processes, 64);
        assert!(!config.network);
        assert_eq!(config.max_output_chars, 8000);
        assert_eq!(config.max_file_bytes, 20 * 1024 * 1024);
    }

    #[test]
    fn the_timeout_sets_cpu_time_unless_given() {
        let config = settings(serde_json::json!({"workspaces_dir": "/w", "timeout_secs": 60}))
            .unwrap()
            .config()
            .unwrap();
        assert_eq!(config.limits.cpu, Duration::from_secs(60));
        let config = settings(
            serde_json::json!({"workspaces_dir": "/w", "timeout_secs": 60, "cpu_secs": 10}),
        )
        .unwrap()
        .config()
        .unwrap();
        assert_eq!(config.limits.cpu, Duration::from_secs(10));
    }

    #[test]
    fn modes_read_in_any_case_and_typos_are_refused() {
        for (text, mode) in [
            ("auto", Mode::Auto),
            ("BWRAP", Mode::Bwrap),
            ("Docker", Mode::Docker),
            ("off", Mode::Off),
        ] {
            let s = settings(serde_json::json!({ "mode": text })).unwrap();
            assert_eq!(s.mode, mode);
        }
        assert!(settings(serde_json::json!({"mode": "podman"})).is_err());
        assert!(settings(serde_json::json!({"timeout": 5})).is_err());
    }

    #[test]
    fn bad_values_name_their_key() {
        let error = settings(serde_json::json!({"workspaces_dir": "/w", "timeout_secs": 0}))
            .unwrap()
            .config()
            .unwrap_err();
        assert!(
            error.to_string().contains("DOCKER_SANDBOX_TIMEOUT"),
            "{error}"
        );
        let error = SandboxSettings::default().config().unwrap_err();
        assert!(error.to_string().contains("workspaces_dir"), "{error}");
    }

    #[test]
    fn off_offers_only_the_file_tools() {
        let s = settings(serde_json::json!({"workspaces_dir": "/w", "mode": "off"})).unwrap();
        let providers = SandboxIntegration::providers(s).unwrap();
        let servers: Vec<_> = providers.iter().map(|p| p.server().to_owned()).collect();
        assert_eq!(servers, ["files"]);
        let s = settings(serde_json::json!({"workspaces_dir": "/w"})).unwrap();
        let providers = SandboxIntegration::providers(s).unwrap();
        let servers: Vec<_> = providers.iter().map(|p| p.server().to_owned()).collect();
        assert_eq!(servers, ["code", "files"]);
    }
}
