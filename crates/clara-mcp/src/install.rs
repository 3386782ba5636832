//! Installing an MCP server from what a person writes (`npm:@scope/pkg@1.2.3`,
//! `pypi:pkg==1.0`, `local:/path/to/server --flag`, `https://…`,
//! `smithery:owner/name`) into a [`ServerConfig`] ready to be written to
//! `MCP_SERVERS_DIR`, and probing a server once to see its tools.
//!
//! Packages go under `<dir>/packages/<name>`, always at a pinned version: a
//! missing version is resolved to the registry's latest and recorded, so the
//! server that runs tomorrow is the one that was approved today. npm runs with
//! `--ignore-scripts` (no install hooks), and every installer runs with a
//! cleared environment: only `PATH`, `HOME` and the proxy, certificate and
//! registry variables npm and pip need, never Clara's own keys.

use crate::config::{McpSettings, ServerConfig};
use crate::smithery::{SmitheryClient, SmitheryError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::time::Duration;

/// How long one installer command (npm, pip, venv) may take.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

/// Where a server comes from, as a person writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `npm:@scope/pkg@1.2.3` (the version may be left out: the latest is pinned).
    Npm {
        /// The package name, with its scope.
        package: String,
        /// The exact version, when given.
        version: Option<String>,
    },
    /// `pypi:pkg==1.0` (the version may be left out: the latest is pinned).
    Pypi {
        /// The distribution name.
        package: String,
        /// The exact version, when given.
        version: Option<String>,
    },
    /// `local:/path/to/server --flag`, or an absolute path: a program already
    /// on this machine.
    Local {
        /// The program.
        command: String,
        /// Its arguments (split on whitespace).
        args: Vec<String>,
    },
    /// `https://host/mcp`: a streamable-HTTP server.
    Url(String),
    /// `smithery:owner/name`: a server hosted by Smithery, found in its registry.
    Smithery(String),
}

/// Why a server could not be installed or probed: one sentence.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The source is not one Clara understands.
    #[error("{0}")]
    BadSource(String),
    /// The server name is not allowed.
    #[error("{0}")]
    BadName(String),
    /// A program the source needs is not installed.
    #[error("{program} is not installed, and {what} needs it")]
    Missing {
        /// The program (`npm`, `python3`).
        program: String,
        /// What needed it (`npm: sources`).
        what: &'static str,
    },
    /// An installer command failed.
    #[error("{what} failed: {detail}")]
    Failed {
        /// What was run (`npm install @x/y@1.0`).
        what: String,
        /// Its exit status and last line of output.
        detail: String,
    },
    /// The package was installed but has no program to start.
    #[error("{0}")]
    NoProgram(String),
    /// A file or directory could not be read or written.
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        /// What was being done (`create`, `read`).
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The server file could not be written.
    #[error(transparent)]
    File(#[from] crate::files::FileError),
    /// Smithery's registry did not give a server.
    #[error(transparent)]
    Smithery(#[from] SmitheryError),
    /// Starting the server and listing its tools failed.
    #[error("probing {server}: {detail}")]
    Probe {
        /// The server's name.
        server: String,
        /// Why.
        detail: String,
    },
}

impl FromStr for Source {
    type Err = InstallError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Source::parse(text)
    }
}

impl Source {
    /// Reads a source as a person writes it (see [`Source`]'s variants).
    pub fn parse(text: &str) -> Result<Self, InstallError> {
        let text = text.trim();
        if let Some(spec) = text.strip_prefix("npm:") {
            return parse_npm(spec.trim());
        }
        if let Some(spec) = text.strip_prefix("pypi:") {
            return parse_pypi(spec.trim());
        }
        if let Some(name) = text.strip_prefix("smithery:") {
            let name = name.trim();
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '@'))
                && !name.split('/').any(|part| part.is_empty() || part == "..");
            if !ok {
                return Err(bad(format!(
                    "{text:?} is not a Smithery server name (smithery:owner/name)"
                )));
            }
            return Ok(Source::Smithery(name.to_owned()));
        }
        if text.starts_with("https://") || text.starts_with("http://") {
            if text.contains(char::is_whitespace) {
                return Err(bad(format!("{text:?} is not a URL: it contains spaces")));
            }
            return Ok(Source::Url(text.to_owned()));
        }
        let local = text.strip_prefix("local:").map(str::trim);
        if let Some(line) = local.or_else(|| text.starts_with('/').then_some(text)) {
            let mut words = line.split_whitespace().map(str::to_owned);
            let Some(command) = words.next() else {
                return Err(bad("local: needs a command (local:/path/to/server --flag)"));
            };
            return Ok(Source::Local {
                command,
                args: words.collect(),
            });
        }
        Err(bad(format!(
            "{text:?} is not a source Clara knows: write npm:PACKAGE[@VERSION], pypi:PACKAGE[==VERSION], local:COMMAND [ARGS…], an https:// URL or smithery:NAME"
        )))
    }

    /// How the source is recorded in a server file (`npm:@scope/pkg@1.2.3`,
    /// `pypi:pkg==1.0`, `local`, `url`, `smithery:name`).
    pub fn recorded(&self) -> String {
        match self {
            Source::Npm { package, version } => match version {
                Some(v) => format!("npm:{package}@{v}"),
                None => format!("npm:{package}"),
            },
            Source::Pypi { package, version } => match version {
                Some(v) => format!("pypi:{package}=={v}"),
                None => format!("pypi:{package}"),
            },
            Source::Local { .. } => "local".to_owned(),
            Source::Url(_) => "url".to_owned(),
            Source::Smithery(name) => format!("smithery:{name}"),
        }
    }

    /// Whether installing it downloads and runs code from a registry (npm,
    /// PyPI), as opposed to pointing at something already there.
    pub fn downloads_code(&self) -> bool {
        matches!(self, Source::Npm { .. } | Source::Pypi { .. })
    }
}

fn bad(sentence: impl Into<String>) -> InstallError {
    InstallError::BadSource(sentence.into())
}

/// Package names and versions end up as installer arguments: allow only what
/// registries allow, and nothing that starts like an option.
fn plain(text: &str, extra: &[char]) -> bool {
    !text.is_empty()
        && !text.starts_with(['-', '.'])
        && text.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') || extra.contains(&c)
        })
}

fn parse_npm(spec: &str) -> Result<Source, InstallError> {
    // `@scope/pkg@1.2.3`: the version's `@` is the last one after the scope's.
    let (package, version) = match spec
        .char_indices()
        .skip(1)
        .filter(|(_, c)| *c == '@')
        .last()
    {
        Some((at, _)) => (&spec[..at], Some(&spec[at + 1..])),
        None => (spec, None),
    };
    let name_ok = match package.strip_prefix('@') {
        Some(scoped) => {
            matches!(scoped.split_once('/'), Some((scope, name)) if plain(scope, &[]) && plain(name, &[]))
        }
        None => plain(package, &[]),
    };
    if !name_ok {
        return Err(bad(format!(
            "{spec:?} is not an npm package (npm:@scope/name@1.2.3)"
        )));
    }
    if let Some(v) = version
        && !plain(v, &['+'])
    {
        return Err(bad(format!(
            "npm:{package}: {v:?} is not an exact version (write npm:{package}@1.2.3)"
        )));
    }
    Ok(Source::Npm {
        package: package.to_owned(),
        version: version.map(str::to_owned),
    })
}

fn parse_pypi(spec: &str) -> Result<Source, InstallError> {
    let (package, version) = match spec.split_once("==") {
        Some((p, v)) => (p.trim(), Some(v.trim())),
        None => (spec, None),
    };
    if !plain(package, &[]) {
        return Err(bad(format!(
            "{spec:?} is not a PyPI package with an exact version (pypi:name==1.0)"
        )));
    }
    if let Some(v) = version
        && !plain(v, &['+', '!'])
    {
        return Err(bad(format!(
            "pypi:{package}: {v:?} is not an exact version (write pypi:{package}==1.0)"
        )));
    }
    Ok(Source::Pypi {
        package: package.to_owned(),
        version: version.map(str::to_owned),
    })
}

/// What one start of a server showed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeReport {
    /// The name the server gave itself.
    pub server_name: String,
    /// Its version.
    pub version: String,
    /// Its tools' names, as the server names them.
    pub tools: Vec<String>,
}

/// How long a probe may take in all (start, handshake, listing).
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts `config`'s server once (with `home` as its `HOME` unless its env
/// sets one), lists its tools and stops it.
pub async fn probe(config: &ServerConfig, home: &Path) -> Result<ProbeReport, InstallError> {
    let failed = |detail: String| InstallError::Probe {
        server: config.name.clone(),
        detail,
    };
    let work = async {
        let mut connection =
            crate::client::connect(config, home, crate::client::Handler::default())
                .await
                .map_err(|e| failed(e.to_string()))?;
        let listed = connection.service.peer().list_all_tools().await;
        let info = connection.service.peer().peer_info();
        let closed = connection.service.close().await;
        if let Some(child) = connection.child.as_mut() {
            child.stop().await;
        }
        if let Err(error) = closed {
            tracing::debug!(%error, server = %config.name, "closing a probed MCP session");
        }
        let tools = listed.map_err(|e| failed(format!("tools/list failed: {e}")))?;
        let (server_name, version) = info
            .and_then(|i| i.server_info.clone())
            .map(|s| (s.name, s.version))
            .unwrap_or_default();
        Ok(ProbeReport {
            server_name,
            version,
            tools: tools.into_iter().map(|t| t.name.to_string()).collect(),
        })
    };
    tokio::time::timeout(PROBE_TIMEOUT, work)
        .await
        .map_err(|_| failed(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())))?
}

/// Checks `name` with the same rule as a server file's name, before it is
/// used in a path.
pub fn check_name(name: &str) -> Result<(), InstallError> {
    let probe = ServerConfig {
        name: name.to_owned(),
        command: Some("-".to_owned()),
        args: Vec::new(),
        env: BTreeMap::new(),
        cwd: None,
        url: None,
        bearer_token: None,
        enabled: true,
        source: None,
    };
    probe
        .validate()
        .map_err(|e| InstallError::BadName(e.0.trim_start_matches("[mcp] ").to_owned()))
}

/// `source` with its version pinned: an npm or PyPI source without one gets
/// the registry's latest (`npm view`, `pip index versions`); others are
/// returned as they are.
pub async fn pin(source: &Source) -> Result<Source, InstallError> {
    Ok(match source {
        Source::Npm {
            package,
            version: None,
        } => Source::Npm {
            package: package.clone(),
            version: Some(npm_latest(package).await?),
        },
        Source::Pypi {
            package,
            version: None,
        } => Source::Pypi {
            package: package.clone(),
            version: Some(pypi_latest(package).await?),
        },
        other => other.clone(),
    })
}

/// Appends `extra` to the arguments of an installed stdio server (a
/// filesystem server's allowed folder, say); an HTTP server takes none.
pub fn add_args(config: &mut ServerConfig, extra: Vec<String>) -> Result<(), InstallError> {
    if extra.is_empty() {
        return Ok(());
    }
    if config.url.is_some() {
        return Err(bad(format!(
            "{} is reached over HTTP, so it takes no program arguments",
            config.name
        )));
    }
    config.args.extend(extra);
    Ok(())
}

/// Where a server's package is installed: `<dir>/packages/<name>`.
pub fn package_dir(dir: &Path, name: &str) -> PathBuf {
    dir.join("packages").join(name)
}

/// Installs `source` as the server `name` (packages under
/// `<dir>/packages/<name>`, replacing an earlier install of that name) and
/// returns its configuration, enabled, with the pinned source recorded. Does
/// not write the server file: the caller does, once the person agreed.
pub async fn install(
    source: &Source,
    name: &str,
    dir: &Path,
    settings: &McpSettings,
) -> Result<ServerConfig, InstallError> {
    check_name(name)?;
    let mut config = ServerConfig {
        name: name.to_owned(),
        command: None,
        args: Vec::new(),
        env: BTreeMap::new(),
        cwd: None,
        url: None,
        bearer_token: None,
        enabled: true,
        source: Some(source.recorded()),
    };
    match source {
        Source::Local { command, args } => {
            if command.contains('/') && !Path::new(command).is_file() {
                return Err(bad(format!("{command} does not exist or is not a file")));
            }
            config.command = Some(command.clone());
            config.args = args.clone();
        }
        Source::Url(url) => config.url = Some(url.clone()),
        Source::Smithery(qualified) => {
            let found = SmitheryClient::new(settings)?.resolve(qualified).await?;
            config.url = found.url;
            config.source = found.source;
        }
        Source::Npm { package, version } => {
            let version = match version {
                Some(v) => v.clone(),
                None => npm_latest(package).await?,
            };
            let (command, script) = cleaned(
                install_npm(package, &version, &package_dir(dir, name)).await,
                dir,
                name,
            )?;
            config.command = Some(command);
            config.args = vec![script.display().to_string()];
            config.source = Some(format!("npm:{package}@{version}"));
        }
        Source::Pypi { package, version } => {
            let version = match version {
                Some(v) => v.clone(),
                None => pypi_latest(package).await?,
            };
            let program = cleaned(
                install_pypi(package, &version, &package_dir(dir, name)).await,
                dir,
                name,
            )?;
            config.command = Some(program.display().to_string());
            config.source = Some(format!("pypi:{package}=={version}"));
        }
    }
    config
        .validate()
        .map_err(|e| bad(e.0.trim_start_matches("[mcp] ").to_owned()))?;
    Ok(config)
}

/// `result`, after removing the half-installed package of a failed install
/// (a retry starts clean and nothing is left behind).
fn cleaned<T>(result: Result<T, InstallError>, dir: &Path, name: &str) -> Result<T, InstallError> {
    if result.is_err() {
        let _ = std::fs::remove_dir_all(package_dir(dir, name));
    }
    result
}

/// The variables an installer keeps from Clara's environment: where programs
/// are, the home (npm's and pip's own config files), and what reaching a
/// registry needs (proxies, certificate bundles, registry and index settings).
/// Clara's keys and tokens are not among them.
fn installer_env() -> Vec<(String, String)> {
    const KEEP: &[&str] = &[
        "PATH",
        "HOME",
        "LANG",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "all_proxy",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "NODE_EXTRA_CA_CERTS",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "PYENV_ROOT",
        "PYENV_VERSION",
    ];
    std::env::vars()
        .filter(|(key, _)| {
            KEEP.contains(&key.as_str())
                || key.starts_with("npm_config_")
                || key.starts_with("NPM_CONFIG_")
                || key.starts_with("PIP_")
        })
        .collect()
}

/// Runs one installer command with the installer environment; returns its
/// standard output.
async fn run(program: &str, args: &[&str], what: &str) -> Result<String, InstallError> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(installer_env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => InstallError::Missing {
            program: program.to_owned(),
            what: if program == "npm" {
                "an npm: source"
            } else {
                "a pypi: source"
            },
        },
        _ => InstallError::Failed {
            what: what.to_owned(),
            detail: e.to_string(),
        },
    })?;
    let out = tokio::time::timeout(INSTALL_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| InstallError::Failed {
            what: what.to_owned(),
            detail: format!("it took more than {} s", INSTALL_TIMEOUT.as_secs()),
        })?
        .map_err(|e| InstallError::Failed {
            what: what.to_owned(),
            detail: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(InstallError::Failed {
            what: what.to_owned(),
            detail: format!("{} ({})", last_line(&out.stderr, &out.stdout), out.status),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The last non-empty line an installer wrote (usually the reason it failed),
/// cut to a sentence's length.
fn last_line(stderr: &[u8], stdout: &[u8]) -> String {
    let pick = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes)
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .map(str::to_owned)
    };
    let line = pick(stderr)
        .or_else(|| pick(stdout))
        .unwrap_or_else(|| "no output".to_owned());
    match line.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

fn path_str(path: &Path) -> Result<&str, InstallError> {
    path.to_str()
        .ok_or_else(|| bad(format!("{} is not a UTF-8 path", path.display())))
}

/// Removes an earlier install of the same name and creates the directory.
fn fresh_dir(dir: &Path) -> Result<(), InstallError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|source| InstallError::Io {
            what: "remove the earlier install in",
            path: dir.to_owned(),
            source,
        })?;
    }
    std::fs::create_dir_all(dir).map_err(|source| InstallError::Io {
        what: "create",
        path: dir.to_owned(),
        source,
    })
}

async fn npm_latest(package: &str) -> Result<String, InstallError> {
    let out = run(
        "npm",
        &["view", package, "version"],
        &format!("npm view {package} version"),
    )
    .await?;
    let version = out.trim().to_owned();
    if !plain(&version, &['+']) {
        return Err(InstallError::Failed {
            what: format!("npm view {package} version"),
            detail: format!("it answered {version:?}, not a version"),
        });
    }
    Ok(version)
}

/// `npm install` into `prefix`; returns the absolute `node` and the
/// package's program.
async fn install_npm(
    package: &str,
    version: &str,
    prefix: &Path,
) -> Result<(String, PathBuf), InstallError> {
    fresh_dir(prefix)?;
    let spec = format!("{package}@{version}");
    run(
        "npm",
        &[
            "install",
            "--prefix",
            path_str(prefix)?,
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--no-save",
            &spec,
        ],
        &format!("npm install {spec}"),
    )
    .await?;
    let root = prefix.join("node_modules").join(package);
    let manifest = root.join("package.json");
    let text = std::fs::read_to_string(&manifest).map_err(|source| InstallError::Io {
        what: "read",
        path: manifest.clone(),
        source,
    })?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| InstallError::NoProgram(format!("{spec}'s package.json is not JSON: {e}")))?;
    let bin = npm_bin(package, &json["bin"]).ok_or_else(|| {
        InstallError::NoProgram(format!(
            "{spec} has no program (no \"bin\" in its package.json)"
        ))
    })?;
    let script = root.join(bin);
    // The bin must stay inside the package (a `../` bin is not one to run).
    let script = script.canonicalize().map_err(|source| InstallError::Io {
        what: "find the program",
        path: script.clone(),
        source,
    })?;
    let canonical_root = root.canonicalize().map_err(|source| InstallError::Io {
        what: "find",
        path: root.clone(),
        source,
    })?;
    if !script.starts_with(&canonical_root) {
        return Err(InstallError::NoProgram(format!(
            "{spec}'s program lies outside the package"
        )));
    }
    let node = which("node").ok_or_else(|| InstallError::Missing {
        program: "node".to_owned(),
        what: "an npm: source",
    })?;
    Ok((node.display().to_string(), script))
}

/// The program of a package.json `bin`: the string, the one entry, the entry
/// named like the package, or the first.
fn npm_bin(package: &str, bin: &serde_json::Value) -> Option<String> {
    match bin {
        serde_json::Value::String(path) => Some(path.clone()),
        serde_json::Value::Object(map) => {
            let short = package.rsplit('/').next().unwrap_or(package);
            map.get(short)
                .or_else(|| map.get(package))
                .or_else(|| map.values().next())
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        }
        _ => None,
    }
}

/// A program on `PATH`, as an absolute path: the server gets a minimal
/// `PATH`, so the interpreter is recorded where it was found.
fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

async fn pypi_latest(package: &str) -> Result<String, InstallError> {
    let what = format!("pip index versions {package}");
    let out = run(
        "python3",
        &["-m", "pip", "index", "versions", package],
        &what,
    )
    .await?;
    // `mcp-server-time (2026.10.19)` on the first line.
    let version = out
        .lines()
        .next()
        .and_then(|line| line.split_once('(')?.1.split_once(')'))
        .map(|(v, _)| v.trim().to_owned())
        .filter(|v| plain(v, &['+', '!']));
    version.ok_or_else(|| InstallError::Failed {
        what,
        detail: "it gave no version".to_owned(),
    })
}

/// The helper run by the venv's Python: the console scripts of a distribution.
const CONSOLE_SCRIPTS: &str = "import importlib.metadata as m, json, sys\n\
d = m.distribution(sys.argv[1])\n\
print(json.dumps([e.name for e in d.entry_points if e.group == 'console_scripts']))\n";

/// A venv in `venv` with `package==version`; returns its console script.
async fn install_pypi(package: &str, version: &str, venv: &Path) -> Result<PathBuf, InstallError> {
    fresh_dir(venv)?;
    let venv_str = path_str(venv)?;
    run(
        "python3",
        &["-m", "venv", venv_str],
        &format!("python3 -m venv {venv_str}"),
    )
    .await?;
    let python = venv.join("bin").join("python");
    let python = path_str(&python)?.to_owned();
    let spec = format!("{package}=={version}");
    run(
        &python,
        &[
            "-m",
            "pip",
            "install",
            "--no-input",
            "--disable-pip-version-check",
            &spec,
        ],
        &format!("pip install {spec}"),
    )
    .await?;
    let out = run(
        &python,
        &["-c", CONSOLE_SCRIPTS, package],
        &format!("reading {spec}'s entry points"),
    )
    .await?;
    let scripts: Vec<String> = serde_json::from_str(out.trim()).map_err(|e| {
        InstallError::NoProgram(format!("cannot read {spec}'s console scripts: {e}"))
    })?;
    let normal = |s: &str| s.to_ascii_lowercase().replace('_', "-");
    let script = scripts
        .iter()
        .find(|s| normal(s) == normal(package))
        .or_else(|| scripts.first())
        .ok_or_else(|| {
            InstallError::NoProgram(format!("{spec} installs no program (no console script)"))
        })?;
    let program = venv.join("bin").join(script);
    if !program.is_file() {
        return Err(InstallError::NoProgram(format!(
            "{spec}'s console script {script} is not in {}",
            venv.join("bin").display()
        )));
    }
    Ok(program)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npm(package: &str, version: Option<&str>) -> Source {
        Source::Npm {
            package: package.to_owned(),
            version: version.map(str::to_owned),
        }
    }

    #[test]
    fn reads_npm_sources_with_and_without_scope_and_version() {
        assert_eq!(
            Source::parse("npm:@scope/pkg@1.2.3").unwrap(),
            npm("@scope/pkg", Some("1.2.3"))
        );
        assert_eq!(
            Source::parse("npm:@scope/pkg").unwrap(),
            npm("@scope/pkg", None)
        );
        assert_eq!(
            Source::parse("npm:pkg@0.1.0-beta.2").unwrap(),
            npm("pkg", Some("0.1.0-beta.2"))
        );
        assert_eq!(Source::parse(" npm:pkg ").unwrap(), npm("pkg", None));
        assert_eq!(
            Source::parse("npm:@scope/pkg@1.2.3").unwrap().recorded(),
            "npm:@scope/pkg@1.2.3"
        );
    }

    #[test]
    fn refuses_npm_ranges_options_and_bad_names() {
        for text in [
            "npm:pkg@^1.0",
            "npm:--global",
            "npm:@scope",
            "npm:@/x",
            "npm:a b",
            "npm:",
            "npm:pkg@",
        ] {
            assert!(
                matches!(Source::parse(text), Err(InstallError::BadSource(_))),
                "{text} was accepted"
            );
        }
    }

    #[test]
    fn reads_pypi_sources_and_refuses_ranges() {
        assert_eq!(
            Source::parse("pypi:mcp-server-time==2026.10.19").unwrap(),
            Source::Pypi {
                package: "mcp-server-time".to_owned(),
                version: Some("2026.10.19".to_owned())
            }
        );
        assert_eq!(
            Source::parse("pypi:mcp_server").unwrap(),
            Source::Pypi {
                package: "mcp_server".to_owned(),
                version: None
            }
        );
        assert_eq!(
            Source::parse("pypi:x==1.0").unwrap().recorded(),
            "pypi:x==1.0"
        );
        for text in ["pypi:x>=1.0", "pypi:x==", "pypi:-r", "pypi:x[cli]==1"] {
            assert!(Source::parse(text).is_err(), "{text} was accepted");
        }
    }

    #[test]
    fn reads_local_url_and_smithery_sources() {
        assert_eq!(
            Source::parse("local:/opt/srv --flag  -v").unwrap(),
            Source::Local {
                command: "/opt/srv".to_owned(),
                args: vec!["--flag".to_owned(), "-v".to_owned()]
            }
        );
        assert_eq!(
            Source::parse("/opt/srv").unwrap(),
            Source::Local {
                command: "/opt/srv".to_owned(),
                args: vec![]
            }
        );
        assert_eq!(
            Source::parse("https://mcp.example/mcp").unwrap(),
            Source::Url("https://mcp.example/mcp".to_owned())
        );
        assert_eq!(
            Source::parse("smithery:@acme/weather").unwrap(),
            Source::Smithery("@acme/weather".to_owned())
        );
        assert_eq!(Source::parse("local:/x").unwrap().recorded(), "local");
        for text in [
            "local:",
            "smithery:",
            "smithery:a/../b",
            "ftp://x",
            "server-everything",
            "https://a b",
        ] {
            assert!(Source::parse(text).is_err(), "{text} was accepted");
        }
    }

    #[test]
    fn picks_the_package_bin() {
        let one = serde_json::json!("dist/index.js");
        assert_eq!(npm_bin("@s/p", &one).as_deref(), Some("dist/index.js"));
        let map = serde_json::json!({"p-helper": "h.js", "p": "main.js"});
        assert_eq!(npm_bin("@s/p", &map).as_deref(), Some("main.js"));
        let other = serde_json::json!({"mcp-server-x": "x.js"});
        assert_eq!(npm_bin("@s/p", &other).as_deref(), Some("x.js"));
        assert_eq!(npm_bin("p", &serde_json::Value::Null), None);
    }

    #[test]
    fn names_are_checked_before_they_become_paths() {
        assert!(check_name("time").is_ok());
        for name in [
            "../x",
            "a/b",
            "",
            "a__b",
            "a-very-long-name-of-more-than-24",
        ] {
            assert!(
                matches!(check_name(name), Err(InstallError::BadName(_))),
                "{name}"
            );
        }
    }

    #[tokio::test]
    async fn installs_local_and_url_sources_without_downloading() {
        let dir = std::env::temp_dir();
        let settings = McpSettings::default();
        let local = install(
            &Source::parse("local:/bin/sh -c true").unwrap(),
            "sh",
            &dir,
            &settings,
        )
        .await
        .unwrap();
        assert_eq!(local.command.as_deref(), Some("/bin/sh"));
        assert_eq!(local.args, ["-c", "true"]);
        assert_eq!(local.source.as_deref(), Some("local"));
        let missing = install(
            &Source::parse("local:/no/such/server").unwrap(),
            "x",
            &dir,
            &settings,
        )
        .await;
        assert!(matches!(missing, Err(InstallError::BadSource(_))));
        let url = install(
            &Source::Url("https://mcp.example/mcp".to_owned()),
            "remote",
            &dir,
            &settings,
        )
        .await
        .unwrap();
        assert_eq!(url.url.as_deref(), Some("https://mcp.example/mcp"));
        assert_eq!(url.command, None);
        let smithery = install(&Source::Smithery("a/b".to_owned()), "s", &dir, &settings).await;
        assert_eq!(
            smithery.unwrap_err().to_string(),
            "Smithery's registry needs an API key: set SMITHERY_API_KEY"
        );
    }
}
