//! The code sandbox: Clara runs Python and shell commands for people, each in
//! an isolated system that sees only that person's workspace.
//!
//! - [`run`]: the seam — [`Sandbox`], [`RunSpec`], [`Limits`], [`RunEnd`].
//! - Backends: [`bwrap`] (bubblewrap, Linux, the default where it works, with
//!   [`limits`] from cgroups or rlimits) and, behind the `docker` feature,
//!   [`docker`] (the Docker Engine API).
//! - [`queued::Queued`]: at most one run per core at once.
//! - [`workspace`]: each person's persistent directory; [`output`]: what the
//!   model reads of a run; [`python_env`]: the read-only Python libraries.
//! - [`tools`]: `code__python`, `code__shell`, `files__*`; [`settings`]: the
//!   `[sandbox]` section and the tool integration.

pub mod bwrap;
#[cfg(feature = "docker")]
pub mod docker;
pub mod limits;
pub mod output;
pub mod python_env;
pub mod queued;
pub mod run;
pub mod settings;
pub mod tools;
pub mod workspace;

pub use bwrap::{Bwrap, BwrapConfig};
pub use limits::LimitMethod;
pub use python_env::PythonEnv;
pub use run::{Limits, Output, RunEnd, RunSpec, Sandbox, SandboxError, Stopped, Stream};
pub use settings::{CodeProvider, Mode, SandboxConfig, SandboxIntegration, SandboxSettings};
pub use tools::{CODE_SERVER, CodeConfig, FILES_SERVER, FilesConfig, code_tools, file_tools};
pub use workspace::{WorkspaceError, WorkspacePath, Workspaces};
