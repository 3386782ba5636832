//! What the Discord adapter hands to Clara: which messages are for her (DMs,
//! mentions, replies, allow-lists, bots), the text she reads, reply chains,
//! images, stop phrases, typing, and one sentence back when a message is refused.

use crate::support::*;
use clara_core::port::IngressError;
use clara_core::{ChannelKind, FileBlob, Image, Quoted};
use clara_testkit::fake_discord::{FakeDiscord, FakeUser, UserMessage};

#[tokio::test]
async fn discord_in_a_server_only_mentions_and_replies_to_clara_reach_her() {
    let fake = FakeDiscord::start().await;
    let (running, assistant) = recording(&fake, config_for(&fake)).await;
    let mention = FakeDiscord::mention();

    fake.post(UserMessage::guild(
        GUILD,
        GENERAL,
        &ann(),
        "just chatting with Bob",
    ));
    let asked = fake.post(UserMessage {
        nick: Some("Annie".into()),
        ..UserMessage::guild(GUILD, GENERAL, &ann(), &format!("{mention} what is 2+2?"))
    });
    let earlier = fake.store(UserMessage::guild(GUILD, GENERAL, &clara(), "It is 4."));
    fake.post(UserMessage::guild(GUILD, GENERAL, &bob(), "and times 3?").replying_to(earlier));
    fake.post(UserMessage::guild(
        GUILD,
        GENERAL,
        &bob(),
        "no one asked you",
    ));
    fake.post(UserMessage::guild(
        GUILD,
        GENERAL,
        &bob(),
        &format!("thanks {mention}!"),
    ));

    let got = assistant.wait_submitted(3).await;
    assert_eq!(
        got.iter().map(|i| i.text.as_str()).collect::<Vec<_>>(),
        ["what is 2+2?", "and times 3?", "thanks @Clara!"]
    );
    let first = &got[0];
    assert_eq!(first.event_id.0, format!("discord:{asked}"));
    assert_eq!(first.conversation.kind, ChannelKind::Group);
    assert_eq!(first.conversation.channel, GENERAL.to_string());
    assert_eq!(first.author.display_name, "Annie", "the server nickname");
    // A reply to Clara brings her message along as context.
    assert_eq!(
        got[1].replying_to,
        vec![Quoted {
            author: "Clara".into(),
            text: "It is 4.".into(),
            from_clara: true
        }]
    );
    running.shut_down().await.unwrap();
}

#[tokio::test]
async fn discord_allow_lists_drop_other_servers_and_channels_but_not_dms() {
    let fake = FakeDiscord::start().await;
    let mut config = config_for(&fake);
    config.allowed_servers = vec![GUILD];
    config.allowed_channels = vec![GENERAL];
    let (running, assistant) = recording(&fake, config).await;
    let hi = format!("{} hi", FakeDiscord::mention());

    fake.post(UserMessage::guild(
        9_999,
        9_000,
        &ann(),
        &format!("{hi} from another server"),
    ));
    fake.post(UserMessage::guild(
        GUILD,
        OFFTOPIC,
        &ann(),
        &format!("{hi} from off-topic"),
    ));
    fake.typing(Some(GUILD), OFFTOPIC, &ann());
    fake.post(UserMessage::guild(
        GUILD,
        GENERAL,
        &ann(),
        &format!("{hi} from general"),
    ));
    fake.post(UserMessage::dm(DM, &ann(), "hi in private"));

    let got = assistant.wait_submitted(2).await;
    let mut texts: Vec<&str> = got.iter().map(|i| i.text.as_str()).collect();
    texts.sort_unstable();
    assert_eq!(texts, ["hi from general", "hi in private"]);
    // Nothing from the other server or channel was fetched or answered either.
    assert!(assistant.calls().len() == 2, "{:#?}", assistant.calls());
    assert!(fake.bot_texts(OFFTOPIC).is_empty() && fake.bot_texts(9_000).is_empty());
    running.shut_down().await.unwrap();
}

#[tokio::test]
async fn discord_messages_from_clara_and_other_bots_are_ignored() {
    let fake = FakeDiscord::start().await;
    let (running, assistant) = recording(&fake, config_for(&fake)).await;
    // Clara's own message comes back from the gateway as MESSAGE_CREATE.
    let thought = clara_core::ThoughtId::new();
    let conversation = clara_core::ConversationRef {
        platform: "discord".into(),
        channel: DM.to_string(),
        kind: ChannelKind::Direct,
    };
    running
        .sink
        .deliver(
            &conversation,
            clara_core::Outbound::Send {
                thought,
                text: "Hello, I am Clara.".into(),
            },
        )
        .await
        .unwrap();
    let other_bot = FakeUser {
        bot: true,
        ..FakeUser::new(77, "Robo")
    };
    fake.post(UserMessage::dm(DM, &other_bot, "beep"));
    fake.post(UserMessage {
        webhook: true,
        ..UserMessage::guild(
            GUILD,
            GENERAL,
            &bob(),
            &format!("{} hook", FakeDiscord::mention()),
        )
    });
    fake.post(UserMessage::dm(DM, &ann(), "a person"));
    let got = assistant.wait_submitted(1).await;
    assert_eq!(got[0].text, "a person");
    assert_eq!(assistant.calls().len(), 1, "{:#?}", assistant.calls());
    running.shut_down().await.unwrap();
}

#[tokio::test]
async fn discord_reply_chain_is_followed_up_to_max_messages() {
    let fake = FakeDiscord::start().await;
    let mut config = config_for(&fake);
    config.max_messages = 5;
    let (running, assistant) = recording(&fake, config).await;

    // Eight messages, each replying to the one before, alternating Ann and Clara.
    let mut ids = Vec::new();
    for n in 1..=8 {
        let author = if n % 2 == 1 { ann() } else { clara() };
        let mut m = UserMessage::dm(DM, &author, &format!("link {n}"));
        if let Some(previous) = ids.last() {
            m = m.replying_to(*previous);
        }
        ids.push(fake.store(m));
    }
    fake.post(UserMessage::dm(DM, &ann(), "so what now?").replying_to(ids[7]));

    let got = assistant.wait_submitted(1).await;
    let chain = &got[0].replying_to;
    assert_eq!(
        chain.iter().map(|q| q.text.as_str()).collect::<Vec<_>>(),
        ["link 4", "link 5", "link 6", "link 7", "link 8"],
        "the newest five links, oldest first"
    );
    assert!(chain[0].from_clara && chain[0].author == "Clara");
    assert!(!chain[1].from_clara && chain[1].author == "Ann");
    // Discord embeds the replied-to message one level deep: link 8 came with the
    // event, link 7 (with 6 inside) and link 5 (with 4) were fetched, nothing older.
    let fetched: Vec<String> = fake
        .calls_to("GET", "")
        .into_iter()
        .filter(|c| c.path.contains("/messages/"))
        .map(|c| c.path)
        .collect();
    assert_eq!(
        fetched,
        [
            format!("channels/{DM}/messages/{}", ids[6]),
            format!("channels/{DM}/messages/{}", ids[4]),
        ]
    );
    running.shut_down().await.unwrap();
}

#[tokio::test]
async fn discord_reply_to_a_deleted_message_still_goes_through() {
    let fake = FakeDiscord::start().await;
    let (running, assistant) = recording(&fake, config_for(&fake)).await;
    let first = fake.store(UserMessage::dm(DM, &ann(), "first"));
    let gone = 1_234_567_890_123;
    let second = fake.store(UserMessage::dm(DM, &ann(), "second").replying_to(first));
    // A reply to a message that no longer exists: Discord sends
    // `referenced_message: null` and a GET answers 404 Unknown Message.
    let mut orphan = UserMessage::dm(DM, &ann(), "about that deleted one");
    orphan.reply_to = Some(gone);
    fake.post(orphan);
    fake.post(UserMessage::dm(DM, &ann(), "and this").replying_to(second));
    let got = assistant.wait_submitted(2).await;
    assert!(got[0].replying_to.is_empty());
    assert_eq!(got[0].text, "about that deleted one");
    assert_eq!(
        got[1]
            .replying_to
            .iter()
            .map(|q| q.text.as_str())
            .collect::<Vec<_>>(),
        ["first", "second"]
    );
    running.shut_down().await.unwrap();
}

#[tokio::test]
async fn discord_image_attachments_go_to_the_model_other_files_are_kept() {
    let fake = FakeDiscord::start().await;
    let (running, assistant) = recording(&fake, config_for(&fake)).await;
    let png = b"\x89PNG\r\n\x1a\nfake-png-bytes".to_vec();
    fake.post(
        UserMessage::dm(DM, &ann(), "what is in this picture?")
            .with_attachment("cat.png", Some("image/png"), &png)
            .with_attachment("notes.txt", Some("text/plain"), b"not an image"),
    );
    fake.post(UserMessage::dm(DM, &ann(), "").with_attachment("dog.JPG", None, b"jpeg"));
    let got = assistant.wait_submitted(2).await;
    assert_eq!(
        got[0].images,
        vec![Image::Bytes {
            media_type: "image/png".into(),
            data: png
        }]
    );
    assert_eq!(got[0].text, "what is in this picture?");
    assert_eq!(
        got[0].files,
        vec![FileBlob {
            name: "notes.txt".into(),
            media_type: "text/plain".into(),
            data: b"not an image".to_vec()
        }]
    );
    assert_eq!(
        got[1].images,
        vec![Image::Bytes {
            media_type: "image/jpeg".into(),
            data: b"jpeg".to_vec()
        }]
    );
    assert_eq!(
        got[1].text, "[image]",
        "an uncaptioned image still asks for an answer"
    );
    running.shut_down().await.unwrap();
}

#[tokio::test]
async fn discord_stop_phrases_stop_without_a_message() {
    let fake = FakeDiscord::start().await;
    let mut config = config_for(&fake);
    config.stop_phrases = vec!["hush now".into(), "that's enough".into()];
    let (running, assistant) = recording(&fake, config).await;
    fake.post(UserMessage::dm(DM, &ann(), "Hush now!"));
    fake.post(UserMessage::guild(
        GUILD,
        GENERAL,
        &bob(),
        &format!("{} that's enough", FakeDiscord::mention()),
    ));
    // Unaddressed in a server, a stop phrase is just chatter.
    fake.post(UserMessage::guild(GUILD, GENERAL, &ann(), "hush now"));
    fake.post(UserMessage::dm(DM, &ann(), "hush now, and tell me a joke"));
    let calls = assistant
        .wait_until("two stops and a message", |c| c.len() >= 3)
        .await;
    let stops: Vec<(String, String)> = calls
        .iter()
        .filter_map(|c| match c {
            Call::Stop(conv, author) => Some((conv.channel.clone(), author.display_name.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(stops.len(), 2, "{calls:#?}");
    assert!(stops.contains(&(DM.to_string(), "Ann".into())));
    assert!(stops.contains(&(GENERAL.to_string(), "Bob".into())));
    assert_eq!(assistant.texts(), ["hush now, and tell me a joke"]);
    running.shut_down().await.unwrap();
}

#[tokio::test]
async fn discord_tier_prefix_passes_through_after_the_mention() {
    let fake = FakeDiscord::start().await;
    let (running, assistant) = recording(&fake, config_for(&fake)).await;
    fake.post(UserMessage::guild(
        GUILD,
        GENERAL,
        &ann(),
        &format!("{} !high prove it", FakeDiscord::mention()),
    ));
    assert_eq!(assistant.wait_submitted(1).await[0].text, "!high prove it");
    running.shut_down().await.unwrap();
}

#[tokio::test]
async fn discord_typing_reaches_clara_for_people_she_talks_with() {
    let fake = FakeDiscord::start().await;
    let (running, assistant) = recording(&fake, config_for(&fake)).await;
    fake.typing(None, DM, &ann());
    fake.post(UserMessage::dm(DM, &ann(), "first part"));
    assistant.wait_submitted(1).await;
    fake.typing(None, DM, &ann());
    let calls = assistant
        .wait_until("a typing call", |c| {
            c.iter().any(|c| matches!(c, Call::Typing(..)))
        })
        .await;
    let submitted = assistant.submitted();
    let typing: Vec<_> = calls
        .iter()
        .filter_map(|c| match c {
            Call::Typing(conv, author) => Some((conv.clone(), author.clone())),
            _ => None,
        })
        .collect();
    // Only the typing after her first message counts, and it names her exactly
    // as her messages do.
    assert_eq!(
        typing,
        [(
            submitted[0].conversation.clone(),
            submitted[0].author.clone()
        )]
    );
    running.shut_down().await.unwrap();
}

#[tokio::test]
async fn discord_refused_message_gets_one_sentence_back() {
    let fake = FakeDiscord::start().await;
    let (running, assistant) = recording(&fake, config_for(&fake)).await;
    assistant.refuse_with(IngressError::TooLong {
        chars: 20_000,
        limit: 16_000,
    });
    let asked = fake.post(UserMessage::guild(
        GUILD,
        GENERAL,
        &ann(),
        &format!("{} a very long story", FakeDiscord::mention()),
    ));
    fake.wait_until("the refusal", |f| !f.bot_texts(GENERAL).is_empty())
        .await;
    let sent = &fake.bot_messages(GENERAL)[0];
    assert!(sent["content"].as_str().unwrap().contains("too long"));
    assert_eq!(sent["message_reference"]["message_id"], asked.to_string());
    running.shut_down().await.unwrap();
}

#[tokio::test]
async fn discord_images_past_what_the_model_looks_at_are_kept_as_files() {
    let fake = FakeDiscord::start().await;
    let (running, assistant) = recording(&fake, config_for(&fake)).await;
    // Larger than the 10 MiB Clara downloads.
    let huge = vec![0_u8; 10 * 1024 * 1024 + 1];
    fake.post(UserMessage::dm(DM, &ann(), "a huge one").with_attachment(
        "big.png",
        Some("image/png"),
        &huge,
    ));
    // More than the four images one message passes on.
    let mut many = UserMessage::dm(DM, &ann(), "an album");
    for n in 1..=6 {
        many = many.with_attachment(&format!("{n}.png"), Some("image/png"), &[n]);
    }
    fake.post(many);
    let got = assistant.wait_submitted(2).await;
    assert_eq!(got[0].text, "a huge one");
    assert!(got[0].images.is_empty());
    assert_eq!(got[0].files[0].name, "big.png");
    assert_eq!(got[0].files[0].data.len(), huge.len());
    assert_eq!(got[1].images.len(), 4);
    let kept: Vec<&str> = got[1].files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(kept, ["5.png", "6.png"]);
    assert_eq!(
        got[1].images[3],
        Image::Bytes {
            media_type: "image/png".into(),
            data: vec![4]
        }
    );
    running.shut_down().await.unwrap();
}
