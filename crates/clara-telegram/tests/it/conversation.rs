//! Conversations through the Telegram adapter with a real engine behind it:
//! an answer streamed by editing one message, a burst answered once, an
//! interruption, the 4096-character limit, photos and replies reaching the
//! model, `/new` and `/tier`.

use crate::support::*;
use clara_testkit::fake_openai::FakeReply;
use clara_testkit::fake_telegram::UserMessage;
use std::time::Duration;

#[tokio::test]
async fn a_private_message_is_answered_in_one_message_grown_by_edits() {
    let rig = Rig::start(edits()).await;
    let ann = ann();
    let chat = dm(&ann);
    let chunks: Vec<String> = ["Hello ", "Ann, ", "nice ", "to ", "meet ", "you."]
        .map(String::from)
        .to_vec();
    rig.llm.push(FakeReply::Stream {
        chunks,
        delay: Duration::from_millis(150),
    });
    rig.tg.send(UserMessage::text(&chat, &ann, "hi there!"));
    rig.tg
        .wait_for("the whole answer", |tg| {
            bot_texts(tg, &chat) == vec!["Hello Ann, nice to meet you.".to_owned()]
        })
        .await;
    rig.settle(&chat).await;

    let messages = rig.tg.bot_messages(ann.id);
    assert_eq!(messages.len(), 1, "one message");
    assert!(messages[0].edits >= 1, "grown by edits: {messages:?}");
    let calls = rig.tg.calls();
    let typing = calls
        .iter()
        .position(|c| c.method == "sendChatAction" && c.params["action"] == "typing")
        .expect("typing while Clara thinks");
    let first_send = calls
        .iter()
        .position(|c| c.method == "sendMessage")
        .unwrap();
    assert!(typing < first_send);
    assert!(
        calls.iter().all(|c| c.status.is_none_or(|s| s == 200)),
        "no call was refused: {calls:#?}"
    );
    let requests = rig.llm.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].last_user_text().unwrap(), "hi there!");
    let system = requests[0].body["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("Ann Lee"), "{system}");

    let polls = rig.tg.calls_to("getUpdates");
    assert!(polls.iter().all(|p| p.params["timeout"] == 2), "long polls");
    rig.tg
        .wait_for("the update confirmed", |tg| tg.unconfirmed_updates() == 0)
        .await;
}

#[tokio::test]
async fn a_burst_of_messages_gets_one_answer() {
    let rig = Rig::start(edits()).await;
    let ann = ann();
    let chat = dm(&ann);
    for text in ["so", "I was thinking", "about lunch?"] {
        rig.tg.send(UserMessage::text(&chat, &ann, text));
    }
    rig.tg
        .wait_for("an answer", |tg| {
            bot_texts(tg, &chat).iter().any(|t| t.contains("lunch"))
        })
        .await;
    rig.settle(&chat).await;
    assert_eq!(rig.llm.requests().len(), 1, "one thought");
    let texts = bot_texts(&rig.tg, &chat);
    assert_eq!(
        texts,
        vec!["You said: so\nI was thinking\nabout lunch?".to_owned()]
    );
}

#[tokio::test]
async fn a_new_message_stops_the_edit_stream_and_one_answer_covers_both() {
    let rig = Rig::start(edits()).await;
    let ann = ann();
    let chat = dm(&ann);
    let story: Vec<String> = (0..60).map(|i| format!("word{i} ")).collect();
    rig.llm.push(FakeReply::Stream {
        chunks: story.clone(),
        delay: Duration::from_millis(80),
    });
    rig.tg
        .send(UserMessage::text(&chat, &ann, "tell me a long story"));
    rig.tg
        .wait_for("the story being shown and edited", |tg| {
            tg.bot_messages(ann.id)
                .first()
                .is_some_and(|m| m.edits >= 1)
        })
        .await;
    rig.tg
        .send(UserMessage::text(&chat, &ann, "actually, make it short"));
    rig.tg
        .wait_for("the answer to both", |tg| {
            bot_texts(tg, &chat)
                .iter()
                .any(|t| t.starts_with("You said"))
        })
        .await;
    rig.settle(&chat).await;

    let messages = rig.tg.bot_messages(ann.id);
    assert_eq!(
        messages.len(),
        2,
        "the cut story and one answer: {messages:?}"
    );
    let full_story = story.concat().trim_end().to_owned();
    assert!(
        full_story.starts_with(&messages[0].text) && messages[0].text != full_story,
        "the story stopped where it was: {:?}",
        messages[0].text
    );
    assert_eq!(
        messages[1].text,
        "You said: tell me a long story\nactually, make it short"
    );
    assert_eq!(rig.llm.dropped_streams(), 1, "the model stream was closed");
    // Nothing more is sent for the cancelled reply.
    let edits_then = messages[0].edits;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(rig.tg.bot_messages(ann.id)[0].edits, edits_then);
    assert_eq!(rig.tg.bot_messages(ann.id).len(), 2);
}

#[tokio::test]
async fn a_long_answer_continues_in_new_messages_within_4096_characters() {
    let rig = Rig::start(edits()).await;
    let ann = ann();
    let chat = dm(&ann);
    let words: Vec<String> = (0..1500).map(|i| format!("w{i:04}")).collect();
    let answer = words.join(" ");
    assert!(answer.chars().count() > 2 * 4096);
    rig.llm.push(FakeReply::text(answer.clone()));
    rig.tg.send(UserMessage::text(&chat, &ann, "say a lot"));
    rig.tg
        .wait_for("the last word", |tg| {
            bot_texts(tg, &chat)
                .last()
                .is_some_and(|t| t.ends_with("w1499"))
        })
        .await;
    rig.settle(&chat).await;
    let texts = bot_texts(&rig.tg, &chat);
    assert!(texts.len() >= 3, "{} messages", texts.len());
    assert!(texts.iter().all(|t| t.chars().count() <= 4096));
    let shown: Vec<&str> = texts.iter().flat_map(|t| t.split_whitespace()).collect();
    assert_eq!(shown, words.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        rig.tg
            .calls()
            .iter()
            .all(|c| c.status.is_none_or(|s| s == 200)),
        "Telegram refused nothing as too long"
    );
}

#[tokio::test]
async fn a_photo_with_a_caption_reaches_the_model_as_an_image() {
    let rig = Rig::start(edits()).await;
    let ann = ann();
    let chat = dm(&ann);
    let jpeg: Vec<u8> = [0xFF, 0xD8, 0xFF, 0xE0]
        .into_iter()
        .chain(b"clara test photo".iter().copied())
        .collect();
    rig.tg.send(UserMessage::photo(
        &chat,
        &ann,
        jpeg.clone(),
        Some("what is in this picture?"),
    ));
    rig.tg
        .wait_for("an answer", |tg| !tg.bot_messages(ann.id).is_empty())
        .await;
    rig.settle(&chat).await;
    let request = &rig.llm.requests()[0];
    let user = request.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|m| m["role"] == "user")
        .unwrap()
        .clone();
    let parts = user["content"].as_array().expect("text and image parts");
    let text: Vec<&str> = parts.iter().filter_map(|p| p["text"].as_str()).collect();
    // The engine may add a line about keeping the photo in the workspace.
    assert_eq!(text.len(), 1, "{text:?}");
    assert!(text[0].starts_with("what is in this picture?"), "{text:?}");
    let urls: Vec<&str> = parts
        .iter()
        .filter_map(|p| p["image_url"]["url"].as_str())
        .collect();
    assert_eq!(
        urls,
        vec![format!("data:image/jpeg;base64,{}", base64(&jpeg))]
    );
    let body = request.body.to_string();
    assert!(
        !body.contains(rig.tg.token()) && !body.contains(&rig.tg.api_url()),
        "the model never sees the token or a file URL"
    );
}

#[tokio::test]
async fn a_reply_to_clara_reaches_the_model_with_her_message_as_context() {
    let rig = Rig::start(edits()).await;
    let ann = ann();
    let chat = dm(&ann);
    rig.llm.push(FakeReply::text("Paris."));
    rig.tg.send(UserMessage::text(
        &chat,
        &ann,
        "what's the capital of France?",
    ));
    rig.tg
        .wait_for("Paris", |tg| {
            bot_texts(tg, &chat) == vec!["Paris.".to_owned()]
        })
        .await;
    rig.settle(&chat).await;
    let paris = rig.tg.bot_messages(ann.id)[0].message_id;
    rig.tg
        .send(UserMessage::text(&chat, &ann, "and of Italy?").replying_to(paris));
    rig.tg
        .wait_for("the second answer", |tg| tg.bot_messages(ann.id).len() == 2)
        .await;
    rig.settle(&chat).await;
    let last = rig.llm.requests()[1].last_user_text().unwrap();
    assert_eq!(
        last,
        "(replying to this message)\n> you (Clara): Paris.\n\nand of Italy?"
    );
}

#[tokio::test]
async fn new_starts_a_fresh_session_and_tier_picks_the_model_per_chat() {
    let rig = Rig::start(edits()).await;
    let (ann, bob) = (ann(), bob());
    let chat = dm(&ann);
    rig.tg
        .send(UserMessage::text(&chat, &ann, "my cat is called Tom."));
    rig.tg
        .wait_for("an answer", |tg| tg.bot_messages(ann.id).len() == 1)
        .await;
    rig.settle(&chat).await;
    rig.tg.send(UserMessage::text(&chat, &ann, "/new"));
    rig.tg.send(UserMessage::text(&chat, &ann, "/tier high"));
    rig.tg
        .wait_for("both confirmations", |tg| {
            tg.bot_messages(ann.id).len() == 3
        })
        .await;
    assert!(bot_texts(&rig.tg, &chat)[1].starts_with("Fresh start"));
    rig.tg
        .send(UserMessage::text(&chat, &ann, "what is my cat called?"));
    rig.tg
        .wait_for("the answer", |tg| tg.bot_messages(ann.id).len() == 4)
        .await;
    rig.settle(&chat).await;

    let request = rig.llm.requests()[1].clone();
    assert_eq!(
        request.user_texts(),
        vec!["what is my cat called?".to_owned()],
        "the earlier session is out of the window"
    );
    assert_eq!(request.model(), Some("fake-model-high"));

    rig.tg.send(UserMessage::text(&dm(&bob), &bob, "hello"));
    rig.tg
        .wait_for("Bob's answer", |tg| tg.bot_messages(bob.id).len() == 1)
        .await;
    assert_eq!(
        rig.llm.requests()[2].model(),
        Some("fake-model"),
        "another chat keeps the default tier"
    );
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_is_right() {
    assert_eq!(base64(b"Man"), "TWFu");
    assert_eq!(base64(b"Ma"), "TWE=");
    assert_eq!(base64(b"M"), "TQ==");
}
