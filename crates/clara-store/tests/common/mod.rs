//! Shared fixtures for the store's integration tests.
#![allow(dead_code)]

use clara_core::{
    ChannelKind, ConversationId, ConversationRef, MessageId, Role, SessionId, ThoughtId, UserId,
};
use clara_store::{MessageStatus, NewMessage, Store};
use std::path::PathBuf;
use tempfile::TempDir;

/// A store on a real file in a fresh temporary directory.
pub async fn file_store() -> (TempDir, PathBuf, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("clara.db");
    let store = Store::open(&path).await.unwrap();
    (dir, path, store)
}

/// A conversation with an open session and one user.
pub struct Place {
    pub conversation: ConversationId,
    pub session: SessionId,
    pub user: UserId,
}

pub async fn place(store: &Store, channel: &str) -> Place {
    let conv = ConversationRef {
        platform: "cli".into(),
        channel: channel.into(),
        kind: ChannelKind::Direct,
    };
    let conversation = store.resolve_conversation(&conv).await.unwrap();
    let session = store.start_session(conversation, 0).await.unwrap().id;
    let user = store
        .resolve_user("cli", &format!("{channel}-user"), "Ann")
        .await
        .unwrap();
    Place {
        conversation,
        session,
        user,
    }
}

pub fn msg(p: &Place, content: &str, at_ms: i64) -> NewMessage {
    NewMessage {
        id: MessageId::new(),
        conversation: p.conversation,
        session: p.session,
        thought: ThoughtId::new(),
        user: Some(p.user),
        role: Role::User,
        content: content.into(),
        event_id: None,
        status: MessageStatus::Complete,
        created_at_ms: at_ms,
        usage: None,
    }
}

pub fn contents(messages: &[clara_store::StoredMessage]) -> Vec<String> {
    messages.iter().map(|m| m.content.clone()).collect()
}
