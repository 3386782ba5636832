//! `clara adapter NAME`: one platform adapter in its own process, talking to a
//! Clara gateway (`clara serve` or `clara gateway`) over the WebSocket gateway
//! protocol instead of running the engine itself. It needs the platform's
//! settings and the gateway's address and secret; no model, no store.

use crate::platforms;
use crate::settings::Resolved;
use anyhow::{Result, bail};
use clap::Args;
use clara_core::port::{Adapter, Assistant};
use clara_protocol::GatewaySecret;
use clara_protocol::client::{ClientConfig, ClientError, RemoteAssistant, connect};
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// `clara adapter`'s arguments.
#[derive(Args, Debug)]
pub struct AdapterArgs {
    /// The platform to connect (telegram, discord, …).
    platform: String,
    /// The gateway's WebSocket URL (default: ws://CLARA_GATEWAY_HOST:CLARA_GATEWAY_PORT/gateway).
    #[arg(long, env = "CLARA_GATEWAY_URL", value_name = "URL")]
    gateway: Option<String>,
}

/// Runs the adapter until SIGINT/SIGTERM or until the platform refuses it.
pub async fn run(
    resolved: &Resolved,
    adapters: Vec<Box<dyn Adapter>>,
    args: AdapterArgs,
) -> Result<ExitCode> {
    let adapter = pick(adapters, &args.platform)?;
    let name = adapter.platform();
    let sink = adapter.sink();
    let url = args.gateway.unwrap_or_else(|| default_url(resolved));
    let mut config = ClientConfig::new(url.clone(), name);
    config.adapter = Some(format!(
        "clara-adapter-{name}/{}",
        env!("CARGO_PKG_VERSION")
    ));
    if let Some(secret) = &resolved.gateway.secret {
        config = config.with_secret(GatewaySecret::new(secret.clone()));
    }
    let remote = match connect(config.clone(), Arc::clone(&sink)).await {
        Ok(remote) => remote,
        // A wrong secret or a refused hello will not get better by waiting.
        Err(ClientError::Unauthorized(_)) if config.secret.is_some() => bail!(
            "the gateway at {url} refused CLARA_GATEWAY_SECRET: set it to the secret the gateway (`clara serve`) was started with"
        ),
        Err(ClientError::Unauthorized(_)) => bail!(
            "the gateway at {url} requires a secret: set CLARA_GATEWAY_SECRET to the one the gateway (`clara serve`) was started with"
        ),
        Err(error @ ClientError::Handshake(_)) => bail!("{error}"),
        Err(error) => {
            tracing::warn!(%error, "the gateway is not reachable yet; retrying in the background");
            RemoteAssistant::spawn(config, sink)
        }
    };
    if !adapter.webhooks().is_empty() {
        tracing::warn!(
            platform = name,
            "this platform calls Clara over webhooks, which only the gateway's port serves; run it inside `clara serve` instead"
        );
    }
    tracing::info!(platform = name, gateway = %url, "adapter running; stop with Ctrl-C");
    let stop = CancellationToken::new();
    let assistant: Arc<dyn Assistant> = Arc::new(remote.clone());
    let running = crate::adapters::spawn(adapter, assistant, stop.clone());
    let finished = running.finished();
    tokio::pin!(finished);
    let outcome = tokio::select! {
        outcome = &mut finished => outcome,
        () = crate::shutdown_signal() => {
            stop.cancel();
            finished.await
        }
    };
    remote.close();
    match outcome {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error) => bail!("{error}"),
    }
}

/// The configured adapter of `platform`, or one sentence saying why there is none.
fn pick(adapters: Vec<Box<dyn Adapter>>, platform: &str) -> Result<Box<dyn Adapter>> {
    let wanted = platform.trim().to_ascii_lowercase();
    let Some(entry) = platforms::named(&wanted) else {
        let known: Vec<&str> = platforms::built_in().map(|(name, _)| name).collect();
        bail!(
            "there is no platform {platform:?}; this clara knows: {}",
            known.join(", ")
        );
    };
    let Some(built) = &entry.built else {
        bail!("{}", platforms::not_built(entry.name));
    };
    match adapters.into_iter().find(|a| a.platform() == entry.name) {
        Some(adapter) => Ok(adapter),
        None => match built.env.first() {
            // By convention a platform's first variable is its token.
            Some((env, key)) => bail!(
                "{env} ({}.{key}) must be set to run the {} adapter",
                entry.name,
                entry.name
            ),
            None => bail!(
                "the [{}] section does not enable the {} adapter",
                entry.name,
                entry.name
            ),
        },
    }
}

/// The gateway this machine's configuration names; an unspecified listen
/// address (0.0.0.0) is reached on loopback.
fn default_url(resolved: &Resolved) -> String {
    let mut addr = resolved.gateway.addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("ws://{addr}/gateway")
}
