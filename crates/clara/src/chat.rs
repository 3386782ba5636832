//! `clara chat`: a conversation in the terminal.

use crate::terminal::TerminalSink;
use anyhow::Result;
use clara_core::{Author, ChannelKind, ConversationRef, EventId, Inbound};
use clara_runtime::{Accepted, Engine};
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Options of `clara chat`.
#[derive(clap::Args, Debug)]
pub struct ChatArgs {
    /// Your name, as Clara addresses you (default: $USER).
    #[arg(long)]
    name: Option<String>,
    /// Which terminal conversation to continue; each has its own history.
    #[arg(long, default_value = "terminal")]
    conversation: String,
}

/// The platform name of the terminal.
const PLATFORM: &str = "cli";

/// Runs the chat until end of input (or Ctrl-C on a terminal).
pub async fn run(engine: &Engine, args: ChatArgs, data_dir: &Path) -> Result<ExitCode> {
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let sink = Arc::new(TerminalSink::new(interactive, data_dir.join("downloads")));
    engine.attach(PLATFORM, sink.clone());
    let login = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "you".to_owned());
    let name = args.name.unwrap_or_else(|| login.clone());
    let conversation = ConversationRef {
        platform: PLATFORM.to_owned(),
        channel: args.conversation,
        kind: ChannelKind::Direct,
    };
    let author = Author {
        platform_user_id: login,
        display_name: name,
    };
    if interactive {
        println!(
            "Talking with Clara ({}). Type a message; Ctrl-D or Ctrl-C to leave.",
            engine.provider().model()
        );
    }

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line,
            _ = tokio::signal::ctrl_c(), if interactive => break,
        };
        let text = match line {
            Ok(Some(text)) => text,
            Ok(None) => break,
            Err(error) => {
                eprintln!("clara: cannot read input: {error}");
                break;
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        let inbound = Inbound {
            event_id: EventId(uuid_like()),
            conversation: conversation.clone(),
            author: author.clone(),
            text,
            sent_at_ms: clara_runtime::clock::now_ms(),
            tier: None,
            images: Vec::new(),
            files: Vec::new(),
            replying_to: Vec::new(),
        };
        match engine.submit(inbound).await {
            Ok(Accepted::Stopped) if interactive => println!("\x1b[2m(stopped)\x1b[0m"),
            Ok(_) => {}
            Err(error) => eprintln!("clara: {error}"),
        }
    }
    // End of input: answer what is pending without waiting for the quiet period.
    engine.flush(&conversation).await;
    engine.wait_idle(&conversation).await;
    Ok(if sink.last_failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn uuid_like() -> String {
    clara_core::MessageId::new().to_string()
}
