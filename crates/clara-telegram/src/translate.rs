//! Telegram messages → what the adapter does with them. Pure: no I/O, no clock.
//!
//! One message becomes one [`Incoming`]: a message for Clara (a [`Draft`]
//! `Inbound`, perhaps with a photo or a file still to download), a command, a
//! sentence for content Clara cannot read, or nothing (not addressed to Clara).

use super::files::{self, FileRef};
use super::types::{Chat, Message, MessageEntity, PhotoSize, User};
use clara_core::approval;
use clara_core::{Author, ChannelKind, ConversationRef, EventId, Inbound, Quoted};
use std::ops::Range;

/// The platform name in [`ConversationRef::platform`] and event ids.
pub const PLATFORM: &str = "telegram";

/// The text Clara reads for a photo sent without a caption (the engine needs words).
pub(crate) const PHOTO_ONLY_TEXT: &str = "[a photo]";

/// Who the bot is, from `getMe`.
#[derive(Clone, Debug)]
pub(crate) struct BotIdentity {
    pub id: i64,
    /// Without the `@`.
    pub username: String,
    /// The bot's first name, as people see it.
    pub name: String,
}

impl BotIdentity {
    pub fn from_user(user: &User) -> Self {
        Self {
            id: user.id,
            username: user.username.clone().unwrap_or_default(),
            name: user.display_name(),
        }
    }

    fn is(&self, user: Option<&User>) -> bool {
        user.is_some_and(|u| u.id == self.id)
    }

    fn is_named(&self, name: &str) -> bool {
        !self.username.is_empty() && name.eq_ignore_ascii_case(&self.username)
    }
}

/// Where to answer a message: its chat, forum topic and id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub chat_id: i64,
    pub thread: Option<i64>,
    pub message_id: i64,
}

/// A photo to download before the message goes to Clara.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ImageRef {
    pub file_id: String,
    pub media_type: String,
}

/// A message for Clara, its photo and files not yet downloaded.
#[derive(Clone, Debug)]
pub(crate) struct Draft {
    pub inbound: Inbound,
    pub image: Option<ImageRef>,
    pub files: Vec<FileRef>,
    pub target: Target,
}

/// A command Clara's adapter answers itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    Start,
    Help,
    New,
    Stop,
    Forget,
    Tier,
    Unknown(String),
}

/// A command with its arguments and the message it came in (its `text` holds
/// the arguments).
#[derive(Clone, Debug)]
pub(crate) struct CommandCall {
    pub command: Command,
    pub message: Draft,
}

/// What to do with one message.
#[derive(Clone, Debug)]
pub(crate) enum Incoming {
    /// Nothing: the reason is for the debug log.
    Ignore(&'static str),
    /// Addressed to Clara, but of a kind she cannot read (a sticker, a poll…).
    Unreadable(Target),
    /// A message for Clara.
    Message(Draft),
    /// A `/command`.
    Command(CommandCall),
}

/// The `ConversationRef::channel` of a chat, or of a forum topic in it.
pub(crate) fn channel_for(chat_id: i64, thread: Option<i64>) -> String {
    match thread {
        Some(thread) => format!("{chat_id}:{thread}"),
        None => chat_id.to_string(),
    }
}

/// The chat and topic of a channel made by [`channel_for`].
pub(crate) fn parse_channel(channel: &str) -> Option<(i64, Option<i64>)> {
    match channel.split_once(':') {
        Some((chat, thread)) => Some((chat.parse().ok()?, Some(thread.parse().ok()?))),
        None => Some((channel.parse().ok()?, None)),
    }
}

/// Reads one message. `max_image_bytes` picks the photo size to download.
pub(crate) fn translate(message: &Message, bot: &BotIdentity, max_image_bytes: u64) -> Incoming {
    let kind = match message.chat.kind.as_str() {
        "private" => ChannelKind::Direct,
        "group" | "supergroup" => ChannelKind::Group,
        _ => return Incoming::Ignore("not a private chat or a group"),
    };
    let Some(author) = author_of(message) else {
        return Incoming::Ignore("from a bot, or from no one");
    };
    let thread = message
        .is_topic_message
        .then_some(message.message_thread_id)
        .flatten();
    let target = Target {
        chat_id: message.chat.id,
        thread,
        message_id: message.message_id,
    };
    let conversation = ConversationRef {
        platform: PLATFORM.to_owned(),
        channel: channel_for(message.chat.id, thread),
        kind,
    };
    let (text, entities) = match (&message.text, &message.caption) {
        (Some(text), _) => (text.as_str(), message.entities.as_slice()),
        (None, Some(caption)) => (caption.as_str(), message.caption_entities.as_slice()),
        (None, None) => ("", &[][..]),
    };
    let replying_to: Vec<Quoted> = message
        .reply_to_message
        .as_deref()
        .and_then(|reply| quoted(reply, message.quote.as_ref().map(|q| q.text.as_str()), bot))
        .into_iter()
        .collect();
    let replies_to_clara = message
        .reply_to_message
        .as_deref()
        .is_some_and(|r| bot.is(r.from.as_ref()) && r.forum_topic_created.is_none());
    let draft = |text: String, image: Option<ImageRef>, files: Vec<FileRef>| Draft {
        inbound: Inbound {
            event_id: EventId(format!(
                "{PLATFORM}:{}:{}",
                message.chat.id, message.message_id
            )),
            conversation: conversation.clone(),
            author: author.clone(),
            text,
            sent_at_ms: message.date.saturating_mul(1000),
            tier: None,
            images: Vec::new(),
            files: Vec::new(),
            replying_to: replying_to.clone(),
        },
        image,
        files,
        target: target.clone(),
    };

    if message.text.is_some()
        && let Some(parsed) = parse_command(text)
    {
        let for_us = match &parsed.bot {
            Some(name) => bot.is_named(name),
            // In a group a bare command may be meant for any bot; Clara answers
            // the ones she knows.
            None => kind == ChannelKind::Direct || !matches!(parsed.command, Command::Unknown(_)),
        };
        if !for_us {
            return Incoming::Ignore("a command for another bot");
        }
        // A typed answer to a question (`/approve 3f9a2c1d`) is for the
        // engine, which reads it; the adapter passes it on as a message.
        if let Command::Unknown(name) = &parsed.command
            && let Some(answer) = approval::parse_command(&format!("/{name} {}", parsed.args))
        {
            let typed = format!("/{} {}", answer.verdict.as_str(), answer.id);
            return Incoming::Message(draft(typed, None, Vec::new()));
        }
        return Incoming::Command(CommandCall {
            command: parsed.command,
            message: draft(parsed.args.to_owned(), None, Vec::new()),
        });
    }

    let mentioned = mentions_bot(text, entities, bot);
    if kind == ChannelKind::Group && mentioned.is_empty() && !replies_to_clara {
        return Incoming::Ignore("a group message not addressed to Clara");
    }
    let image = image_of(message, max_image_bytes);
    let files = files::files_of(message);
    let cleaned = remove_ranges(text, &mentioned);
    let words = if cleaned.is_empty() {
        text.trim().to_owned()
    } else {
        cleaned
    };
    if !words.is_empty() {
        return Incoming::Message(draft(words, image, files));
    }
    // Without words, say what was sent: the engine needs text.
    let described = match &image {
        Some(_) => Some(PHOTO_ONLY_TEXT.to_owned()),
        None => files::described(&files),
    };
    match described {
        Some(text) => Incoming::Message(draft(text, image, files)),
        None if message.has_unreadable_content() => Incoming::Unreadable(target),
        None => Incoming::Ignore("no text (a service message)"),
    }
}

/// The person (or chat, for anonymous admins and channels) who wrote it; `None`
/// for bots, which Clara does not answer (two bots could talk forever).
fn author_of(message: &Message) -> Option<Author> {
    if let Some(chat) = &message.sender_chat {
        return Some(chat_author(chat));
    }
    let user = message.from.as_ref()?;
    if user.is_bot {
        return None;
    }
    Some(Author {
        platform_user_id: user.id.to_string(),
        display_name: user.display_name(),
    })
}

fn chat_author(chat: &Chat) -> Author {
    Author {
        platform_user_id: format!("chat{}", chat.id),
        display_name: chat.title.clone().unwrap_or_else(|| chat.id.to_string()),
    }
}

/// The message replied to, as context: the quoted part when the person quoted
/// one, else its text or caption.
fn quoted(reply: &Message, quote: Option<&str>, bot: &BotIdentity) -> Option<Quoted> {
    // In a forum, a message outside any reply "replies" to its topic's first message.
    if reply.forum_topic_created.is_some() {
        return None;
    }
    let from_clara = bot.is(reply.from.as_ref());
    let author = if from_clara {
        bot.name.clone()
    } else if let Some(chat) = &reply.sender_chat {
        chat_author(chat).display_name
    } else {
        reply
            .from
            .as_ref()
            .map_or_else(|| "someone".to_owned(), User::display_name)
    };
    let text = quote
        .or(reply.text.as_deref())
        .or(reply.caption.as_deref())
        .map(str::to_owned)
        .unwrap_or_else(|| {
            if !reply.photo.is_empty() {
                PHOTO_ONLY_TEXT.to_owned()
            } else {
                files::described(&files::files_of(reply))
                    .unwrap_or_else(|| "[a message Clara cannot read]".to_owned())
            }
        });
    Some(Quoted {
        author,
        text,
        from_clara,
    })
}

/// A parsed `/command[@bot] args`.
#[derive(Debug, PartialEq, Eq)]
struct ParsedCommand<'a> {
    command: Command,
    bot: Option<&'a str>,
    args: &'a str,
}

/// Parses a command at the start of a message, as Telegram marks them:
/// `/name` of 1–32 letters, digits or `_`, optionally `@botname`.
fn parse_command(text: &str) -> Option<ParsedCommand<'_>> {
    let rest = text.strip_prefix('/')?;
    let (head, args) = match rest.find(char::is_whitespace) {
        Some(at) => (&rest[..at], rest[at..].trim()),
        None => (rest, ""),
    };
    let (name, bot) = match head.split_once('@') {
        Some((name, bot)) => (name, Some(bot)),
        None => (head, None),
    };
    let valid = |s: &str| {
        !s.is_empty() && s.len() <= 32 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if !valid(name) || bot.is_some_and(|b| !valid(b)) {
        return None;
    }
    let command = match name.to_ascii_lowercase().as_str() {
        "start" => Command::Start,
        "help" => Command::Help,
        "new" => Command::New,
        "stop" => Command::Stop,
        "forget" => Command::Forget,
        "tier" => Command::Tier,
        other => Command::Unknown(other.to_owned()),
    };
    Some(ParsedCommand { command, bot, args })
}

/// The byte ranges of `text` that mention the bot: `@username` mentions, and
/// `text_mention`s of the bot's user. Telegram's entities count UTF-16 units.
fn mentions_bot(text: &str, entities: &[MessageEntity], bot: &BotIdentity) -> Vec<Range<usize>> {
    if entities.is_empty() {
        // Entities are always sent by Telegram; this covers a client that omits them.
        return textual_mentions(text, &bot.username);
    }
    entities
        .iter()
        .filter_map(|e| {
            let range = utf16_range(text, e.offset, e.length)?;
            let hit = match e.kind.as_str() {
                "mention" => text[range.clone()]
                    .strip_prefix('@')
                    .is_some_and(|name| bot.is_named(name)),
                "text_mention" => bot.is(e.user.as_ref()),
                _ => false,
            };
            hit.then_some(range)
        })
        .collect()
}

fn textual_mentions(text: &str, username: &str) -> Vec<Range<usize>> {
    if username.is_empty() {
        return Vec::new();
    }
    let needle = format!("@{}", username.to_ascii_lowercase());
    let lower = text.to_ascii_lowercase();
    lower
        .match_indices(&needle)
        .filter(|(at, m)| {
            let end = at + m.len();
            !lower[end..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .map(|(at, m)| at..at + m.len())
        .collect()
}

/// The byte range of a UTF-16 `offset`/`length` span of `text`.
pub(crate) fn utf16_range(text: &str, offset: usize, length: usize) -> Option<Range<usize>> {
    let end_units = offset.checked_add(length)?;
    let mut units = 0;
    let mut start = None;
    for (byte, ch) in text.char_indices() {
        if units == offset {
            start = Some(byte);
        }
        if units == end_units {
            return start.map(|s| s..byte);
        }
        units += ch.len_utf16();
    }
    if units == offset {
        start = Some(text.len());
    }
    (units == end_units).then_some(start?..text.len())
}

/// `text` without `ranges`, whitespace tidied.
fn remove_ranges(text: &str, ranges: &[Range<usize>]) -> String {
    let mut kept = String::with_capacity(text.len());
    let mut at = 0;
    let mut sorted = ranges.to_vec();
    sorted.sort_by_key(|r| r.start);
    for r in sorted {
        if r.start >= at {
            kept.push_str(&text[at..r.start]);
            at = r.end;
        }
    }
    kept.push_str(&text[at..]);
    tidy(&kept)
}

/// Collapses runs of spaces a removed mention leaves, keeping line breaks.
fn tidy(text: &str) -> String {
    text.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .trim_start_matches([',', ':'])
        .trim()
        .to_owned()
}

/// The photo to download: the largest size within the limit (Telegram lists
/// sizes smallest first). A picture sent as a file is one of the message's
/// files; the poller shows it to the model too.
fn image_of(message: &Message, max_bytes: u64) -> Option<ImageRef> {
    let fits = |p: &&PhotoSize| p.file_size.is_none_or(|s| s <= max_bytes);
    let area = |p: &&PhotoSize| u64::from(p.width) * u64::from(p.height);
    let best = message
        .photo
        .iter()
        .filter(fits)
        .max_by_key(area)
        .or_else(|| message.photo.iter().min_by_key(area))?;
    Some(ImageRef {
        file_id: best.file_id.clone(),
        // Telegram re-encodes every photo as JPEG.
        media_type: "image/jpeg".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn bot() -> BotIdentity {
        BotIdentity {
            id: 99,
            username: "clara_bot".into(),
            name: "Clara".into(),
        }
    }

    fn msg(chat_type: &str, text: &str, entities: serde_json::Value) -> Message {
        serde_json::from_value(json!({
            "message_id": 5,
            "from": {"id": 7, "is_bot": false, "first_name": "Ann"},
            "chat": {"id": if chat_type == "private" { 7 } else { -100 }, "type": chat_type},
            "date": 1_700_000_000,
            "text": text,
            "entities": entities,
        }))
        .unwrap()
    }

    fn message_text(incoming: Incoming) -> String {
        match incoming {
            Incoming::Message(d) => d.inbound.text,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    #[test]
    fn a_private_message_becomes_an_inbound() {
        let Incoming::Message(d) = translate(&msg("private", "hello", json!([])), &bot(), 1 << 20)
        else {
            panic!()
        };
        assert_eq!(d.inbound.event_id.0, "telegram:7:5");
        assert_eq!(d.inbound.conversation.channel, "7");
        assert_eq!(d.inbound.conversation.kind, ChannelKind::Direct);
        assert_eq!(d.inbound.author.display_name, "Ann");
        assert_eq!(d.inbound.sent_at_ms, 1_700_000_000_000);
        assert_eq!(d.target.message_id, 5);
    }

    #[test]
    fn groups_answer_only_mentions_and_replies() {
        let plain = msg("group", "hello all", json!([]));
        assert!(matches!(translate(&plain, &bot(), 1), Incoming::Ignore(_)));
        let other = msg(
            "supergroup",
            "@other_bot hi",
            json!([{"type":"mention","offset":0,"length":10}]),
        );
        assert!(matches!(translate(&other, &bot(), 1), Incoming::Ignore(_)));
        // The emoji is two UTF-16 units: offsets must be read as Telegram counts them.
        let text = "😀 hey @Clara_Bot, what's up?";
        let mention = msg(
            "group",
            text,
            json!([{"type":"mention","offset":7,"length":10}]),
        );
        let Incoming::Message(d) = translate(&mention, &bot(), 1) else {
            panic!()
        };
        assert_eq!(d.inbound.text, "😀 hey , what's up?");
        assert_eq!(d.inbound.conversation.kind, ChannelKind::Group);

        let mut reply = msg("group", "and you?", json!([]));
        reply.reply_to_message = Some(Box::new(
            serde_json::from_value(json!({
                "message_id": 4, "from": {"id": 99, "is_bot": true, "first_name": "Clara", "username": "clara_bot"},
                "chat": {"id": -100, "type": "group"}, "date": 1, "text": "I'm fine."
            }))
            .unwrap(),
        ));
        let Incoming::Message(d) = translate(&reply, &bot(), 1) else {
            panic!()
        };
        assert_eq!(
            d.inbound.replying_to,
            vec![Quoted {
                author: "Clara".into(),
                text: "I'm fine.".into(),
                from_clara: true
            }]
        );
    }

    #[test]
    fn a_leading_mention_is_removed() {
        let m = msg(
            "group",
            "@clara_bot what is 2+2?",
            json!([{"type":"mention","offset":0,"length":10}]),
        );
        assert_eq!(message_text(translate(&m, &bot(), 1)), "what is 2+2?");
        let only = msg(
            "group",
            "@clara_bot",
            json!([{"type":"mention","offset":0,"length":10}]),
        );
        assert_eq!(message_text(translate(&only, &bot(), 1)), "@clara_bot");
    }

    #[test]
    fn commands_are_parsed_and_addressed() {
        let p = parse_command("/tier@clara_bot high").unwrap();
        assert_eq!(p.command, Command::Tier);
        assert_eq!(p.bot, Some("clara_bot"));
        assert_eq!(p.args, "high");
        assert_eq!(parse_command("/path/to/file is broken"), None);
        assert_eq!(parse_command("hello /new"), None);

        let own = msg("group", "/new@clara_bot", json!([]));
        assert!(matches!(
            translate(&own, &bot(), 1),
            Incoming::Command(CommandCall {
                command: Command::New,
                ..
            })
        ));
        let theirs = msg("group", "/new@other_bot", json!([]));
        assert!(matches!(translate(&theirs, &bot(), 1), Incoming::Ignore(_)));
        let bare_known = msg("group", "/forget my address", json!([]));
        let Incoming::Command(call) = translate(&bare_known, &bot(), 1) else {
            panic!()
        };
        assert_eq!(call.command, Command::Forget);
        assert_eq!(call.message.inbound.text, "my address");
        let bare_unknown = msg("group", "/weather", json!([]));
        assert!(matches!(
            translate(&bare_unknown, &bot(), 1),
            Incoming::Ignore(_)
        ));
        let dm_unknown = msg("private", "/weather", json!([]));
        assert!(matches!(
            translate(&dm_unknown, &bot(), 1),
            Incoming::Command(CommandCall {
                command: Command::Unknown(_),
                ..
            })
        ));
    }

    #[test]
    fn a_typed_answer_to_a_question_goes_to_clara_as_a_message() {
        let typed = msg("private", "/Approve@clara_bot 3F9A2C1D", json!([]));
        assert_eq!(
            message_text(translate(&typed, &bot(), 1)),
            "/approve 3f9a2c1d"
        );
        let deny = msg("private", "/deny 3f9a2c1d", json!([]));
        assert_eq!(message_text(translate(&deny, &bot(), 1)), "/deny 3f9a2c1d");
        // Without an id it is just an unknown command.
        let bare = msg("private", "/approve", json!([]));
        assert!(matches!(
            translate(&bare, &bot(), 1),
            Incoming::Command(CommandCall {
                command: Command::Unknown(_),
                ..
            })
        ));
    }

    #[test]
    fn photos_pick_the_largest_size_within_the_limit() {
        let m: Message = serde_json::from_value(json!({
            "message_id": 1, "from": {"id": 7, "first_name": "Ann"}, "chat": {"id": 7, "type": "private"}, "date": 1,
            "photo": [
                {"file_id": "small", "file_unique_id": "a", "width": 90, "height": 90, "file_size": 1000},
                {"file_id": "mid", "file_unique_id": "b", "width": 800, "height": 800, "file_size": 50_000},
                {"file_id": "huge", "file_unique_id": "c", "width": 2560, "height": 2560, "file_size": 900_000}
            ],
            "caption": "what is this?"
        }))
        .unwrap();
        let Incoming::Message(d) = translate(&m, &bot(), 100_000) else {
            panic!()
        };
        assert_eq!(d.inbound.text, "what is this?");
        assert_eq!(d.image.unwrap().file_id, "mid");
        let mut bare = m.clone();
        bare.caption = None;
        let Incoming::Message(d) = translate(&bare, &bot(), 100_000) else {
            panic!()
        };
        assert_eq!(d.inbound.text, PHOTO_ONLY_TEXT);
    }

    #[test]
    fn files_are_drafted_and_described_and_groups_still_need_a_mention() {
        let doc = json!({"file_id": "d", "file_unique_id": "u", "file_name": "plan.pdf", "mime_type": "application/pdf", "file_size": 9});
        let m: Message = serde_json::from_value(json!({
            "message_id": 3, "from": {"id": 7, "first_name": "Ann"}, "chat": {"id": 7, "type": "private"}, "date": 1,
            "document": doc,
        }))
        .unwrap();
        let Incoming::Message(d) = translate(&m, &bot(), 1) else {
            panic!()
        };
        assert_eq!(d.inbound.text, "[sent the file plan.pdf]");
        assert_eq!(d.files[0].name, "plan.pdf");
        assert_eq!(d.image, None);

        let in_group: Message = serde_json::from_value(json!({
            "message_id": 4, "from": {"id": 7, "first_name": "Ann"}, "chat": {"id": -5, "type": "group"}, "date": 1,
            "document": doc, "caption": "for the team",
        }))
        .unwrap();
        assert!(matches!(
            translate(&in_group, &bot(), 1),
            Incoming::Ignore(_)
        ));

        let mut reply = msg("private", "what is in it?", json!([]));
        reply.reply_to_message = Some(Box::new(m));
        let Incoming::Message(d) = translate(&reply, &bot(), 1) else {
            panic!()
        };
        assert_eq!(d.inbound.replying_to[0].text, "[sent the file plan.pdf]");
        assert!(
            d.files.is_empty(),
            "the replied-to file is not fetched again"
        );
    }

    #[test]
    fn stickers_get_a_sentence_and_service_messages_nothing() {
        let sticker: Message = serde_json::from_value(json!({
            "message_id": 1, "from": {"id": 7, "first_name": "Ann"}, "chat": {"id": 7, "type": "private"}, "date": 1,
            "sticker": {"file_id": "s", "file_unique_id": "s", "type": "regular", "width": 1, "height": 1, "is_animated": false, "is_video": false}
        }))
        .unwrap();
        assert!(matches!(
            translate(&sticker, &bot(), 1),
            Incoming::Unreadable(_)
        ));
        let joined: Message = serde_json::from_value(json!({
            "message_id": 2, "from": {"id": 7, "first_name": "Ann"}, "chat": {"id": -5, "type": "group"}, "date": 1,
            "new_chat_members": [{"id": 8, "is_bot": false, "first_name": "Bo"}]
        }))
        .unwrap();
        assert!(matches!(translate(&joined, &bot(), 1), Incoming::Ignore(_)));
    }

    #[test]
    fn bots_and_channels_are_ignored_and_topics_get_their_own_channel() {
        let mut from_bot = msg("private", "hi", json!([]));
        from_bot.from.as_mut().unwrap().is_bot = true;
        assert!(matches!(
            translate(&from_bot, &bot(), 1),
            Incoming::Ignore(_)
        ));
        let channel = msg("channel", "news", json!([]));
        assert!(matches!(
            translate(&channel, &bot(), 1),
            Incoming::Ignore(_)
        ));

        let mut topic = msg(
            "supergroup",
            "@clara_bot hi",
            json!([{"type":"mention","offset":0,"length":10}]),
        );
        topic.is_topic_message = true;
        topic.message_thread_id = Some(12);
        let Incoming::Message(d) = translate(&topic, &bot(), 1) else {
            panic!()
        };
        assert_eq!(d.inbound.conversation.channel, "-100:12");
        assert_eq!(parse_channel("-100:12"), Some((-100, Some(12))));
        assert_eq!(parse_channel("42"), Some((42, None)));
        assert_eq!(parse_channel("x"), None);
    }

    #[test]
    fn utf16_ranges() {
        assert_eq!(utf16_range("a😀b", 1, 2), Some(1..5));
        assert_eq!(utf16_range("a😀b", 3, 1), Some(5..6));
        assert_eq!(utf16_range("abc", 3, 0), Some(3..3));
        assert_eq!(utf16_range("a😀b", 2, 1), None, "inside a surrogate pair");
        assert_eq!(utf16_range("abc", 2, 5), None);
    }
}
