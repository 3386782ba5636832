//! `clara sandbox setup`: makes the read-only Python environment (numpy,
//! pandas, matplotlib, …) the sandbox's `code__python` runs with, from PyPI.
//! `clara sandbox check`: runs the sandbox's self-test as `serve` would and
//! says in one sentence which backend runs code, or why none does.

use crate::settings::Resolved;
use anyhow::{Result, bail};
use clara_core::component::Component;
use clara_sandbox::python_env::{self, Prepared};
use clara_sandbox::{CodeProvider, PythonEnv, SandboxIntegration, SandboxSettings};

/// `clara sandbox`.
#[derive(clap::Args, Debug)]
pub struct SandboxCommand {
    #[command(subcommand)]
    action: SandboxAction,
}

#[derive(clap::Subcommand, Debug)]
enum SandboxAction {
    /// Makes the Python environment (a minute or two; downloads from PyPI).
    Setup,
    /// Runs the sandbox's self-test and says which backend runs code.
    Check,
}

/// Runs `clara sandbox …`.
pub async fn run(cmd: SandboxCommand, resolved: &Resolved) -> Result<()> {
    let settings: SandboxSettings = resolved
        .sections
        .section(SandboxIntegration::NAME)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let config = settings.config().map_err(|e| anyhow::anyhow!("{e}"))?;
    match cmd.action {
        SandboxAction::Setup => {
            let path = config
                .python_env
                .clone()
                .unwrap_or_else(|| python_env::default_path(&resolved.data_dir));
            println!(
                "Making the sandbox's Python environment at {} ({}) …",
                path.display(),
                PythonEnv::libraries().join(", ")
            );
            match PythonEnv::prepare(&path).await {
                Ok(Prepared::AlreadyReady) => println!("It is already there."),
                Ok(Prepared::Installed) => println!("Done."),
                Err(error) => bail!("{error}"),
            }
        }
        SandboxAction::Check => match CodeProvider::new(config).sandbox().await {
            Ok(sandbox) => println!(
                "The code sandbox works here: code runs in {}.",
                sandbox.name()
            ),
            Err(why) => bail!("The code sandbox is off: {why}."),
        },
    }
    Ok(())
}
