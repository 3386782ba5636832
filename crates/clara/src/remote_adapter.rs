//! `clara adapter telegram|discord`: one platform adapter in its own process,
//! talking to a Clara gateway (`clara serve` or `clara gateway`) over the
//! WebSocket gateway protocol instead of running the engine itself. It needs the
//! platform's settings and the gateway's address and secret; no model, no store.

use crate::settings::Resolved;
use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use clara_core::port::{Assistant, OutboundSink};
use clara_gateway::client::{ClientConfig, ClientError, RemoteAssistant, connect};
use clara_gateway::protocol::GatewaySecret;
use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// `clara adapter`'s arguments.
#[derive(Args, Debug)]
pub struct AdapterArgs {
    /// The platform to connect.
    platform: Platform,
    /// The gateway's WebSocket URL (default: ws://CLARA_GATEWAY_HOST:CLARA_GATEWAY_PORT/gateway).
    #[arg(long, env = "CLARA_GATEWAY_URL", value_name = "URL")]
    gateway: Option<String>,
}

/// The platforms that can run as their own process.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Platform {
    /// Telegram (TG_BOT_TOKEN).
    Telegram,
    /// Discord (DISCORD_BOT_TOKEN).
    Discord,
}

/// An adapter's loop, once it has an assistant to talk to.
type RunAdapter = Box<
    dyn FnOnce(
            Arc<dyn Assistant>,
            CancellationToken,
        ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>>
        + Send,
>;

/// Runs the adapter until SIGINT/SIGTERM or until the platform refuses it.
pub async fn run(resolved: &Resolved, args: AdapterArgs) -> Result<ExitCode> {
    let (name, sink, run_adapter) = build(resolved, args.platform)?;
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
    tracing::info!(platform = name, gateway = %url, "adapter running; stop with Ctrl-C");
    let stop = CancellationToken::new();
    let assistant: Arc<dyn Assistant> = Arc::new(remote.clone());
    let mut adapter = tokio::spawn(run_adapter(assistant, stop.clone()));
    let outcome = tokio::select! {
        finished = &mut adapter => Some(finished),
        () = crate::shutdown_signal() => None,
    };
    stop.cancel();
    let outcome = match outcome {
        Some(finished) => finished,
        None => adapter.await,
    };
    remote.close();
    match outcome {
        Ok(Ok(())) => Ok(ExitCode::SUCCESS),
        Ok(Err(error)) => bail!("the {name} adapter stopped: {error}"),
        Err(error) => bail!("the {name} adapter failed: {error}"),
    }
}

fn build(
    resolved: &Resolved,
    platform: Platform,
) -> Result<(&'static str, Arc<dyn OutboundSink>, RunAdapter)> {
    Ok(match platform {
        Platform::Telegram => {
            use clara_adapters::telegram::{PLATFORM, Telegram};
            let Some(config) = &resolved.telegram else {
                bail!("TG_BOT_TOKEN (telegram.token) must be set to run the Telegram adapter");
            };
            let telegram = Telegram::new(config.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
            let sink = telegram.sink();
            let run: RunAdapter = Box::new(move |assistant, stop| {
                Box::pin(async move {
                    telegram
                        .run(assistant, stop)
                        .await
                        .map_err(|e| e.to_string())
                })
            });
            (PLATFORM, sink, run)
        }
        Platform::Discord => {
            use clara_adapters::discord::{Discord, PLATFORM};
            let Some(config) = &resolved.discord else {
                bail!("DISCORD_BOT_TOKEN (discord.token) must be set to run the Discord adapter");
            };
            let discord = Discord::new(config.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
            let sink = discord.sink();
            let run: RunAdapter = Box::new(move |assistant, stop| {
                Box::pin(async move {
                    discord
                        .run(assistant, stop)
                        .await
                        .map_err(|e| e.to_string())
                })
            });
            (PLATFORM, sink, run)
        }
    })
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
