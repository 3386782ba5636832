//! The Discord adapter with a real engine behind it (SQLite, the fake OpenAI
//! model) against the fake Discord: bursts, interruptions, long answers split at
//! 2000 characters, reply chains and images reaching the model, stop phrases,
//! typing, and 429s — as a person on Discord would see them.

use crate::support::*;
use base64::Engine as _;
use clara_core::{ChannelKind, ConversationRef};
use clara_testkit::fake_discord::{FakeDiscord, UserMessage};
use clara_testkit::fake_openai::FakeReply;
use serde_json::Value;
use std::time::Duration;

fn dm() -> ConversationRef {
    ConversationRef {
        platform: "discord".into(),
        channel: DM.to_string(),
        kind: ChannelKind::Direct,
    }
}

async fn settle(h: &EngineHarness, conversation: &ConversationRef) {
    tokio::time::timeout(WAIT, h.engine.wait_idle(conversation))
        .await
        .expect("the conversation settles");
}

#[tokio::test]
async fn discord_burst_gets_one_answer() {
    let fake = FakeDiscord::start().await;
    let h = EngineHarness::start(&fake, config_for(&fake)).await;
    fake.post(UserMessage::dm(DM, &ann(), "so I was thinking"));
    fake.post(UserMessage::dm(DM, &ann(), "about the trip"));
    fake.post(UserMessage::dm(DM, &ann(), "what should I pack?"));

    fake.wait_until("an answer", |f| !f.bot_texts(DM).is_empty())
        .await;
    settle(&h, &dm()).await;
    assert_eq!(h.llm.request_count(), 1, "one thought for the burst");
    let asked = h.llm.requests()[0].last_user_text().unwrap();
    for part in ["so I was thinking", "about the trip", "what should I pack?"] {
        assert!(asked.contains(part), "{part:?} missing from {asked:?}");
    }
    let texts = fake.bot_texts(DM);
    assert_eq!(texts.len(), 1, "one answer: {texts:?}");
    assert!(texts[0].starts_with("You said:"), "{texts:?}");
    // Typing showed before the answer.
    let calls = fake.calls();
    let typing = calls
        .iter()
        .position(|c| c.path.ends_with("/typing"))
        .unwrap();
    let sent = calls
        .iter()
        .position(|c| c.method == "POST" && c.path.ends_with("/messages"))
        .unwrap();
    assert!(typing < sent);
    h.running.shut_down().await.unwrap();
}

#[tokio::test]
async fn discord_interruption_stops_the_edit_stream_and_one_answer_follows() {
    let fake = FakeDiscord::start().await;
    let h = EngineHarness::start(&fake, config_for(&fake)).await;
    let story: Vec<String> = (1..=40).map(|n| format!("part{n} ")).collect();
    h.llm.push(FakeReply::Stream {
        chunks: story.clone(),
        delay: Duration::from_millis(120),
    });
    fake.post(UserMessage::dm(DM, &ann(), "tell me a long story"));
    fake.wait_until("the story being edited in", |f| {
        !f.calls_to("PATCH", "").is_empty()
    })
    .await;
    fake.post(UserMessage::dm(DM, &ann(), "actually, just say hi"));

    fake.wait_until("the second answer", |f| f.bot_texts(DM).len() == 2)
        .await;
    settle(&h, &dm()).await;
    assert_eq!(h.llm.dropped_streams(), 1, "the story's stream was cut");
    assert_eq!(h.llm.request_count(), 2);
    let second = h.llm.requests()[1].last_user_text().unwrap();
    assert!(second.contains("tell me a long story") && second.contains("actually, just say hi"));

    let messages = fake.bot_messages(DM);
    let (story_id, answer_id) = (
        messages[0]["id"].as_str().unwrap(),
        messages[1]["id"].as_str().unwrap(),
    );
    let full_story = story.concat();
    let shown = messages[0]["content"].as_str().unwrap();
    assert!(
        full_story.trim_end().starts_with(shown.trim_end())
            && shown.len() < full_story.trim_end().len()
    );
    assert!(
        messages[1]["content"]
            .as_str()
            .unwrap()
            .starts_with("You said:")
    );
    // Once the answer started, the story was never edited again.
    let calls = fake.calls();
    // The answer's message is the second one created.
    let answer_sent = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c.method == "POST" && c.path.ends_with("/messages") && c.status == 200)
        .nth(1)
        .map(|(i, _)| i)
        .unwrap();
    assert!(
        !calls[answer_sent..]
            .iter()
            .any(|c| c.method == "PATCH" && c.path.ends_with(story_id)),
        "the cancelled stream kept editing"
    );
    assert!(
        calls
            .iter()
            .all(|c| !(c.method == "PATCH" && c.path.ends_with(answer_id)) || c.status == 200)
    );
    h.running.shut_down().await.unwrap();
}

#[tokio::test]
async fn discord_long_answer_is_split_at_2000_without_breaking_code_blocks() {
    let fake = FakeDiscord::start().await;
    let h = EngineHarness::start(&fake, config_for(&fake)).await;
    let intro = "Here is the whole program, explained first. ".repeat(30);
    let code: Vec<String> = (1..=70)
        .map(|n| format!("    let value_{n:03} = compute({n}); // step {n}"))
        .collect();
    let outro = "That is all; run it with cargo run. ".repeat(15);
    let answer = format!(
        "{intro}\n\n```rust\nfn main() {{\n{}\n}}\n```\n\n{outro}",
        code.join("\n")
    );
    assert!(answer.chars().count() > 4500);
    h.llm.push(FakeReply::Text(answer.clone()));
    fake.post(UserMessage::dm(DM, &ann(), "write me a program"));

    fake.wait_until("the whole answer", |f| {
        f.bot_texts(DM)
            .last()
            .is_some_and(|t| t.contains("run it with cargo run."))
            && f.bot_texts(DM).join("").matches("cargo run").count() == 15
    })
    .await;
    settle(&h, &dm()).await;
    let texts = fake.bot_texts(DM);
    assert!(texts.len() >= 3, "{} messages", texts.len());
    for t in &texts {
        assert!(
            t.chars().count() <= 2000,
            "a message of {} characters",
            t.chars().count()
        );
        assert!(
            fences_balanced(t),
            "a message with an open code block:\n{t}"
        );
    }
    let joined = texts.join("\n");
    for line in &code {
        assert!(
            joined.contains(line.as_str()),
            "{line:?} lost from {texts:#?}"
        );
    }
    // The code block that crossed a message boundary was reopened as rust.
    let reopened = texts
        .iter()
        .skip(1)
        .filter(|t| t.trim_start().starts_with("```rust"))
        .count();
    assert!(reopened >= 1, "{texts:#?}");
    assert!(
        fake.calls().iter().all(|c| (200..300).contains(&c.status)),
        "Discord refused a call"
    );
    h.running.shut_down().await.unwrap();
}

#[tokio::test]
async fn discord_reply_chain_reaches_the_model() {
    let fake = FakeDiscord::start().await;
    let h = EngineHarness::start(&fake, config_for(&fake)).await;
    let question = fake.store(UserMessage::dm(DM, &ann(), "Which planet is the largest?"));
    let answer = fake.store(UserMessage::dm(DM, &clara(), "Jupiter.").replying_to(question));
    fake.post(UserMessage::dm(DM, &ann(), "and the smallest?").replying_to(answer));
    fake.wait_until("an answer", |f| !f.bot_texts(DM).is_empty())
        .await;
    let asked = h.llm.requests()[0].last_user_text().unwrap();
    assert!(
        asked.contains("> Ann: Which planet is the largest?"),
        "{asked}"
    );
    assert!(asked.contains("> you (Clara): Jupiter."), "{asked}");
    assert!(asked.trim_end().ends_with("and the smallest?"), "{asked}");
    settle(&h, &dm()).await;
    h.running.shut_down().await.unwrap();
}

#[tokio::test]
async fn discord_image_attachment_reaches_the_model() {
    let fake = FakeDiscord::start().await;
    let h = EngineHarness::start(&fake, config_for(&fake)).await;
    let png = b"\x89PNG\r\n\x1a\n-a-tiny-picture-".to_vec();
    fake.post(
        UserMessage::dm(DM, &ann(), "what is this?").with_attachment(
            "pic.png",
            Some("image/png"),
            &png,
        ),
    );
    fake.wait_until("an answer", |f| !f.bot_texts(DM).is_empty())
        .await;
    let body = &h.llm.requests()[0].body;
    let last_user = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .unwrap();
    let urls: Vec<&str> = last_user["content"]
        .as_array()
        .expect("content parts")
        .iter()
        .filter_map(|p| p["image_url"]["url"].as_str())
        .collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&png);
    assert_eq!(urls, [format!("data:image/png;base64,{encoded}")]);
    settle(&h, &dm()).await;
    h.running.shut_down().await.unwrap();
}

#[tokio::test]
async fn discord_stop_phrase_cancels_the_reply_without_a_new_one() {
    let fake = FakeDiscord::start().await;
    let mut config = config_for(&fake);
    config.stop_phrases = vec!["hush now".into()];
    let h = EngineHarness::start(&fake, config).await;
    let story: Vec<String> = (1..=40).map(|n| format!("word{n} ")).collect();
    h.llm.push(FakeReply::Stream {
        chunks: story.clone(),
        delay: Duration::from_millis(120),
    });
    fake.post(UserMessage::dm(DM, &ann(), "tell me everything"));
    fake.wait_until("the reply showing", |f| !f.bot_texts(DM).is_empty())
        .await;
    fake.post(UserMessage::dm(DM, &ann(), "Hush now."));

    h.llm.wait_for_requests(1, WAIT).await;
    tokio::time::timeout(WAIT, async {
        while h.llm.dropped_streams() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the model stream is dropped");
    settle(&h, &dm()).await;
    assert_eq!(h.llm.request_count(), 1, "no new answer after a stop");
    let texts = fake.bot_texts(DM);
    assert_eq!(texts.len(), 1);
    let full = story.concat();
    assert!(
        full.starts_with(texts[0].trim_end()) && texts[0].trim_end().len() < full.trim_end().len()
    );
    h.running.shut_down().await.unwrap();
}

#[tokio::test]
async fn discord_server_answer_replies_to_the_question_and_pings_nobody() {
    let fake = FakeDiscord::start().await;
    let h = EngineHarness::start(&fake, config_for(&fake)).await;
    let asked = fake.post(UserMessage::guild(
        GUILD,
        GENERAL,
        &ann(),
        &format!("{} ping @everyone for me", FakeDiscord::mention()),
    ));
    fake.wait_until("an answer", |f| !f.bot_texts(GENERAL).is_empty())
        .await;
    let conversation = ConversationRef {
        platform: "discord".into(),
        channel: GENERAL.to_string(),
        kind: ChannelKind::Group,
    };
    settle(&h, &conversation).await;
    let first = fake
        .calls_to("POST", &format!("channels/{GENERAL}/messages"))
        .remove(0);
    assert_eq!(
        first.body["message_reference"]["message_id"],
        asked.to_string()
    );
    assert_eq!(
        first.body["allowed_mentions"]["parse"],
        Value::Array(Vec::new())
    );
    assert_eq!(
        fake.bot_messages(GENERAL)[0]["referenced_message"]["id"],
        asked.to_string()
    );
    h.running.shut_down().await.unwrap();
}

#[tokio::test]
async fn discord_rate_limited_answer_still_arrives_once() {
    let fake = FakeDiscord::start().await;
    let h = EngineHarness::start(&fake, config_for(&fake)).await;
    fake.rate_limit_next("POST", "/messages", 0.5, false, 1);
    fake.post(UserMessage::dm(DM, &ann(), "hello?"));
    fake.wait_until("an answer", |f| !f.bot_texts(DM).is_empty())
        .await;
    settle(&h, &dm()).await;
    let posts = fake.calls_to("POST", "/messages");
    assert_eq!(
        posts.iter().map(|c| c.status).collect::<Vec<_>>(),
        [429, 200]
    );
    assert!(posts[1].at - posts[0].at >= Duration::from_millis(500));
    assert_eq!(fake.bot_texts(DM).len(), 1);
    h.running.shut_down().await.unwrap();
}

#[tokio::test]
async fn discord_server_answers_never_quote_someone_else() {
    let fake = FakeDiscord::start().await;
    let h = EngineHarness::start(&fake, config_for(&fake)).await;
    let mention = FakeDiscord::mention();
    h.llm.push(FakeReply::Stream {
        chunks: vec![
            "Paris ".into(),
            "is the capital ".into(),
            "of France.".into(),
        ],
        delay: Duration::from_millis(600),
    });
    let ann_asked = fake.post(UserMessage::guild(
        GUILD,
        GENERAL,
        &ann(),
        &format!("{mention} what is the capital of France?"),
    ));
    // Bob asks while Ann's answer is being thought of: it waits its turn.
    h.llm.wait_for_requests(1, WAIT).await;
    let bob_asked = fake.post(UserMessage::guild(
        GUILD,
        GENERAL,
        &bob(),
        &format!("{mention} and of Spain?"),
    ));
    fake.wait_until("both answers", |f| f.bot_texts(GENERAL).len() == 2)
        .await;
    let conversation = ConversationRef {
        platform: "discord".into(),
        channel: GENERAL.to_string(),
        kind: ChannelKind::Group,
    };
    settle(&h, &conversation).await;
    for answer in fake.bot_messages(GENERAL) {
        let text = answer["content"].as_str().unwrap();
        let Some(quoted) = answer["message_reference"]["message_id"].as_str() else {
            continue;
        };
        let expected = if text.contains("Paris") {
            ann_asked
        } else {
            bob_asked
        };
        assert_eq!(
            quoted,
            expected.to_string(),
            "{text:?} quotes another person's message"
        );
    }
    h.running.shut_down().await.unwrap();
}
