//! Telegram messages → what Clara is handed: private chats and groups (mentions,
//! replies), reply context, photos, commands, and one sentence for what cannot
//! be read or is refused. Behind the adapter an assistant records what it gets.

use crate::support::*;
use clara_core::port::IngressError;
use clara_core::{ChannelKind, Image, Quoted, Tier};
use clara_testkit::fake_telegram::{FakeChat, UserMessage};

#[tokio::test]
async fn a_private_message_is_handed_over_with_its_person_and_event_id() {
    let r = Recorded::start().await;
    let ann = ann();
    let id = r.tg.send(UserMessage::text(&dm(&ann), &ann, "hello Clara"));
    let got = r.assistant.wait_for_inbounds(1).await;
    let inbound = &got[0];
    assert_eq!(inbound.text, "hello Clara");
    assert_eq!(inbound.event_id.0, format!("telegram:{}:{id}", ann.id));
    assert_eq!(inbound.conversation.platform, "telegram");
    assert_eq!(inbound.conversation.channel, ann.id.to_string());
    assert_eq!(inbound.conversation.kind, ChannelKind::Direct);
    assert_eq!(inbound.author.platform_user_id, ann.id.to_string());
    assert_eq!(inbound.author.display_name, "Ann Lee");
    assert!(
        inbound.sent_at_ms > 1_600_000_000_000,
        "Telegram's date, in ms"
    );
    assert_eq!(inbound.tier, None);
    r.adapter.stop().await.unwrap();
}

#[tokio::test]
async fn in_a_group_clara_hears_mentions_and_replies_to_her_only() {
    let r = Recorded::start().await;
    let (ann, bob) = (ann(), bob());
    let group = FakeChat::supergroup(-100_777, "Friends");
    r.tg.send(UserMessage::text(&group, &bob, "hello all"));
    r.tg.send(UserMessage::text(
        &group,
        &ann,
        "@clara_test_bot what's the time?",
    ));
    r.tg.send(UserMessage::text(&group, &ann, "@someone_else hi"));
    let anns = r.tg.send(UserMessage::text(&group, &ann, "lunch at one"));
    r.tg.send(UserMessage::text(&group, &bob, "ok, see you").replying_to(anns));
    r.all_handled().await;
    let got = r.assistant.inbounds();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].text, "what's the time?", "the mention is taken out");
    assert_eq!(got[0].conversation.kind, ChannelKind::Group);
    assert_eq!(got[0].conversation.channel, "-100777");

    let clara = r.clara_says(&group, "It's noon.").await;
    r.tg.send(UserMessage::text(&group, &bob, "thanks!").replying_to(clara));
    let got = r.assistant.wait_for_inbounds(2).await;
    assert_eq!(got[1].text, "thanks!");
    assert_eq!(got[1].author.display_name, "Bob");
    assert_eq!(
        got[1].replying_to,
        vec![Quoted {
            author: "Clara".into(),
            text: "It's noon.".into(),
            from_clara: true
        }]
    );
    r.all_handled().await;
    assert_eq!(r.assistant.inbounds().len(), 2);
    r.adapter.stop().await.unwrap();
}

#[tokio::test]
async fn a_reply_carries_the_message_or_the_part_quoted() {
    let r = Recorded::start().await;
    let ann = ann();
    let chat = dm(&ann);
    let plan =
        r.tg.send(UserMessage::text(&chat, &ann, "my plan: first A, then B"));
    r.tg.send(
        UserMessage::text(&chat, &ann, "why A first?")
            .replying_to(plan)
            .quoting("first A"),
    );
    let clara = {
        r.assistant.wait_for_inbounds(2).await;
        r.clara_says(&chat, "Because A unblocks B.").await
    };
    r.tg.send(UserMessage::text(&chat, &ann, "makes sense").replying_to(clara));
    let got = r.assistant.wait_for_inbounds(3).await;
    assert!(got[0].replying_to.is_empty());
    assert_eq!(
        got[1].replying_to,
        vec![Quoted {
            author: "Ann Lee".into(),
            text: "first A".into(),
            from_clara: false
        }]
    );
    assert_eq!(
        got[2].replying_to,
        vec![Quoted {
            author: "Clara".into(),
            text: "Because A unblocks B.".into(),
            from_clara: true
        }]
    );
    r.adapter.stop().await.unwrap();
}

#[tokio::test]
async fn a_photo_is_downloaded_and_handed_over_as_bytes() {
    let r = Recorded::start().await;
    let ann = ann();
    let chat = dm(&ann);
    let jpeg: Vec<u8> = [0xFF, 0xD8, 0xFF, 0xE0]
        .into_iter()
        .chain((0..200u8).map(|i| i.wrapping_mul(7)))
        .collect();
    r.tg.send(UserMessage::photo(
        &chat,
        &ann,
        jpeg.clone(),
        Some("what is this?"),
    ));
    r.tg.send(UserMessage::photo(&chat, &ann, jpeg.clone(), None));
    let got = r.assistant.wait_for_inbounds(2).await;
    assert_eq!(got[0].text, "what is this?");
    assert_eq!(
        got[0].images,
        vec![Image::Bytes {
            media_type: "image/jpeg".into(),
            data: jpeg.clone()
        }],
        "the largest size, not the thumbnail"
    );
    assert_eq!(got[1].text, "[a photo]");
    assert_eq!(got[1].images.len(), 1);
    assert_eq!(r.tg.calls_to("getFile").len(), 2);
    r.adapter.stop().await.unwrap();
}

#[tokio::test]
async fn commands_start_new_forget_tier_stop() {
    let r = Recorded::start().await;
    let ann = ann();
    let chat = dm(&ann);
    let said = |n: usize| {
        let texts = bot_texts(&r.tg, &chat);
        texts.get(n).cloned().unwrap_or_default()
    };
    let wait_said = |n: usize| {
        r.tg.wait_for("Clara's answer", move |tg| {
            tg.bot_messages(ann.id).len() > n
        })
    };

    let start = r.tg.send(UserMessage::text(&chat, &ann, "/start"));
    wait_said(0).await;
    assert!(said(0).starts_with("Hi, I'm Clara") && said(0).contains("/new"));
    assert_eq!(
        r.tg.bot_messages(ann.id)[0].reply_to,
        Some(start),
        "a command is answered as a reply to it"
    );

    r.tg.send(UserMessage::text(&chat, &ann, "/new"));
    wait_said(1).await;
    assert!(said(1).starts_with("Fresh start"), "{}", said(1));
    let sessions = r.assistant.new_sessions.lock().unwrap().clone();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].0, conversation_of(&chat));
    assert_eq!(sessions[0].1.platform_user_id, ann.id.to_string());

    r.tg.send(UserMessage::text(&chat, &ann, "/forget"));
    wait_said(2).await;
    assert!(said(2).starts_with("Tell me what to forget"));
    r.tg.send(UserMessage::text(&chat, &ann, "/forget my old address"));
    let got = r.assistant.wait_for_inbounds(1).await;
    assert_eq!(got[0].text, "Please forget this about me: my old address");

    r.tg.send(UserMessage::text(&chat, &ann, "/tier high"));
    wait_said(3).await;
    assert!(said(3).contains("high tier"), "{}", said(3));
    r.tg.send(UserMessage::text(&chat, &ann, "explain monads"));
    let got = r.assistant.wait_for_inbounds(2).await;
    assert_eq!(got[1].tier, Some(Tier::High), "the chat's tier is applied");
    r.tg.send(UserMessage::text(&chat, &ann, "/tier ultra"));
    wait_said(4).await;
    assert!(said(4).contains("not a tier"));
    r.tg.send(UserMessage::text(&chat, &ann, "/tier default"));
    wait_said(5).await;
    r.tg.send(UserMessage::text(&chat, &ann, "and now?"));
    let got = r.assistant.wait_for_inbounds(3).await;
    assert_eq!(got[2].tier, None);

    r.tg.send(UserMessage::text(&chat, &ann, "/stop"));
    wait_said(6).await;
    assert_eq!(r.assistant.stops.lock().unwrap().len(), 1);

    r.tg.send(UserMessage::text(&chat, &ann, "/weather Paris"));
    wait_said(7).await;
    assert!(said(7).starts_with("I don't know /weather"));
    assert_eq!(
        r.assistant.inbounds().len(),
        3,
        "commands are not messages for Clara"
    );
    r.adapter.stop().await.unwrap();
}

#[tokio::test]
async fn in_a_group_commands_for_other_bots_are_left_alone_and_tiers_are_per_chat() {
    let r = Recorded::start().await;
    let ann = ann();
    let group = FakeChat::group(-4242, "Team");
    r.tg.send(UserMessage::text(&group, &ann, "/tier@other_bot low"));
    r.tg.send(UserMessage::text(&group, &ann, "/weather"));
    r.tg.send(UserMessage::text(&group, &ann, "/tier@clara_test_bot low"));
    r.tg.wait_for("the tier answer", |tg| !tg.bot_messages(-4242).is_empty())
        .await;
    r.tg.send(UserMessage::text(&group, &ann, "@clara_test_bot hi"));
    r.tg.send(UserMessage::text(&dm(&ann), &ann, "hi in private"));
    let got = r.assistant.wait_for_inbounds(2).await;
    assert_eq!(got[0].tier, Some(Tier::Low));
    assert_eq!(got[1].tier, None, "another chat keeps its own tier");
    r.all_handled().await;
    assert_eq!(
        bot_texts(&r.tg, &group).len(),
        1,
        "only the command addressed to Clara was answered"
    );
    r.adapter.stop().await.unwrap();
}

#[tokio::test]
async fn unreadable_and_refused_messages_get_one_sentence_and_nothing_is_lost() {
    let r = Recorded::start().await;
    let ann = ann();
    let chat = dm(&ann);
    r.tg.send(UserMessage::sticker(&chat, &ann));
    r.tg.wait_for("the sentence", |tg| !tg.bot_messages(ann.id).is_empty())
        .await;
    assert_eq!(
        bot_texts(&r.tg, &chat)[0],
        "I can read text, photos and files, but not this kind of message yet."
    );

    let refusal = IngressError::TooLong {
        chars: 20_000,
        limit: 16_000,
    };
    r.assistant
        .refuse
        .lock()
        .unwrap()
        .push_back(refusal.clone());
    r.tg.send(UserMessage::text(&chat, &ann, "a very long text"));
    r.tg.wait_for("the refusal", |tg| tg.bot_messages(ann.id).len() == 2)
        .await;
    assert_eq!(bot_texts(&r.tg, &chat)[1], refusal.to_string());

    r.tg.send(UserMessage::text(&chat, &ann, "a short one"));
    let got = r.assistant.wait_for_inbounds(1).await;
    assert_eq!(got[0].text, "a short one", "the adapter keeps serving");
    r.adapter.stop().await.unwrap();
}
