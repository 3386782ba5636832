//! Whether a Discord message is for Clara, and what text of it she reads.
//!
//! In a direct message everything is for her. In a server she answers only in
//! allowed servers and channels, and only when mentioned or replied to. Her own
//! messages and other bots' are never answered. Pure: no I/O.

use super::wire::Message;
use clara_core::stop::StopPhrases;

/// The adapter's standing rules.
#[derive(Clone, Debug)]
pub struct Rules {
    /// Servers Clara answers in (empty: all).
    pub allowed_servers: Vec<u64>,
    /// Channels Clara answers in (empty: all).
    pub allowed_channels: Vec<u64>,
    /// Discord-specific stop phrases.
    pub stop_phrases: StopPhrases,
}

impl Rules {
    /// Whether a server channel may be answered in at all. Direct messages
    /// (`guild` is `None`) always may.
    pub fn allows(&self, guild: Option<u64>, channel: u64) -> bool {
        let Some(guild) = guild else {
            return true;
        };
        (self.allowed_servers.is_empty() || self.allowed_servers.contains(&guild))
            && (self.allowed_channels.is_empty() || self.allowed_channels.contains(&channel))
    }
}

/// Who Clara is on Discord.
#[derive(Clone, Debug)]
pub struct Me {
    /// The bot's user id.
    pub id: u64,
    /// The bot's name, for mentions of her inside a sentence.
    pub name: String,
}

/// What to do with a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not for Clara; the reason is for the debug log.
    Ignore(&'static str),
    /// A stop phrase addressed to her: cancel the reply in flight.
    Stop,
    /// Hand it to Clara with this text.
    Answer(String),
}

/// Judges one incoming message.
pub fn judge(message: &Message, me: &Me, rules: &Rules) -> Verdict {
    if message.author.id == me.id {
        return Verdict::Ignore("Clara's own message");
    }
    if message.author.bot || message.webhook_id.is_some() {
        return Verdict::Ignore("sent by a bot or webhook");
    }
    if !rules.allows(message.guild_id, message.channel_id) {
        return Verdict::Ignore("server or channel not in the allow-list");
    }
    if message.guild_id.is_some() && !is_addressed(message, me.id) {
        return Verdict::Ignore("not mentioned or replied to");
    }
    let text = readable_text(message, me);
    if rules.stop_phrases.matches(&text) {
        return Verdict::Stop;
    }
    Verdict::Answer(text)
}

/// Whether a server message mentions Clara or replies to her.
fn is_addressed(message: &Message, me: u64) -> bool {
    message.mentions.iter().any(|m| m.user.id == me)
        || message.content.contains(&format!("<@{me}>"))
        || message.content.contains(&format!("<@!{me}>"))
        || message
            .referenced_message
            .as_ref()
            .is_some_and(|r| r.author.id == me)
}

/// The message's text as a person reads it: Clara's mention at the start or
/// end dropped (elsewhere it reads `@Name`), other people's mentions shown as
/// `@Name`.
pub fn readable_text(message: &Message, me: &Me) -> String {
    let mut text = message.content.clone();
    for form in [format!("<@{}>", me.id), format!("<@!{}>", me.id)] {
        loop {
            let trimmed = text.trim();
            if let Some(rest) = trimmed.strip_prefix(&form) {
                text = rest.to_owned();
            } else if let Some(rest) = trimmed.strip_suffix(&form) {
                text = rest.to_owned();
            } else {
                break;
            }
        }
        text = text.replace(&form, &format!("@{}", me.name));
    }
    for mention in &message.mentions {
        let name = mention
            .member
            .as_ref()
            .and_then(|m| m.nick.as_deref())
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| mention.user.display_name());
        for form in [
            format!("<@{}>", mention.user.id),
            format!("<@!{}>", mention.user.id),
        ] {
            text = text.replace(&form, &format!("@{name}"));
        }
    }
    text.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ME: u64 = 500;

    fn me() -> Me {
        Me {
            id: ME,
            name: "Clara".into(),
        }
    }

    fn rules() -> Rules {
        Rules {
            allowed_servers: Vec::new(),
            allowed_channels: Vec::new(),
            stop_phrases: StopPhrases::new(["hush now"]),
        }
    }

    fn message(guild: Option<u64>, content: &str, mentions: &[(u64, &str)]) -> Message {
        let mut m = json!({
            "id": "1000", "channel_id": "20",
            "author": {"id": "40", "username": "ann", "global_name": "Ann"},
            "content": content,
            "mentions": mentions.iter().map(|(id, name)| json!({"id": id.to_string(), "username": name})).collect::<Vec<_>>(),
        });
        if let Some(g) = guild {
            m["guild_id"] = json!(g.to_string());
        }
        serde_json::from_value(m).unwrap()
    }

    #[test]
    fn direct_messages_are_always_for_clara() {
        let m = message(None, "hello there", &[]);
        assert_eq!(
            judge(&m, &me(), &rules()),
            Verdict::Answer("hello there".into())
        );
    }

    #[test]
    fn in_a_server_only_a_mention_or_a_reply_to_her_counts() {
        let plain = message(Some(1), "hello everyone", &[]);
        assert_eq!(
            judge(&plain, &me(), &rules()),
            Verdict::Ignore("not mentioned or replied to")
        );
        let mentioned = message(Some(1), "<@500> what is 2+2?", &[(ME, "clara")]);
        assert_eq!(
            judge(&mentioned, &me(), &rules()),
            Verdict::Answer("what is 2+2?".into())
        );
        let nick_form = message(Some(1), "<@!500>  !high explain", &[]);
        assert_eq!(
            judge(&nick_form, &me(), &rules()),
            Verdict::Answer("!high explain".into())
        );
        let mut reply = message(Some(1), "and then?", &[]);
        reply.referenced_message = Some(Box::new(message(Some(1), "earlier", &[])));
        reply.referenced_message.as_mut().unwrap().author.id = ME;
        assert_eq!(
            judge(&reply, &me(), &rules()),
            Verdict::Answer("and then?".into())
        );
    }

    #[test]
    fn bots_and_her_own_messages_are_ignored() {
        let mut own = message(None, "hi", &[]);
        own.author.id = ME;
        assert_eq!(
            judge(&own, &me(), &rules()),
            Verdict::Ignore("Clara's own message")
        );
        let mut bot = message(None, "hi", &[]);
        bot.author.bot = true;
        assert!(matches!(judge(&bot, &me(), &rules()), Verdict::Ignore(_)));
        let mut hook = message(Some(1), "<@500> hi", &[]);
        hook.webhook_id = Some(9);
        assert!(matches!(judge(&hook, &me(), &rules()), Verdict::Ignore(_)));
    }

    #[test]
    fn allow_lists_drop_other_servers_and_channels_but_not_dms() {
        let r = Rules {
            allowed_servers: vec![1],
            allowed_channels: vec![20],
            ..rules()
        };
        let ok = message(Some(1), "<@500> hi", &[(ME, "clara")]);
        assert!(matches!(judge(&ok, &me(), &r), Verdict::Answer(_)));
        let other_server = message(Some(2), "<@500> hi", &[(ME, "clara")]);
        assert!(matches!(
            judge(&other_server, &me(), &r),
            Verdict::Ignore(_)
        ));
        let mut other_channel = message(Some(1), "<@500> hi", &[(ME, "clara")]);
        other_channel.channel_id = 21;
        assert!(matches!(
            judge(&other_channel, &me(), &r),
            Verdict::Ignore(_)
        ));
        assert!(matches!(
            judge(&message(None, "hi", &[]), &me(), &r),
            Verdict::Answer(_)
        ));
    }

    #[test]
    fn a_stop_phrase_addressed_to_her_stops() {
        let m = message(Some(1), "<@500> Hush now!", &[(ME, "clara")]);
        assert_eq!(judge(&m, &me(), &rules()), Verdict::Stop);
        let dm = message(None, "hush now", &[]);
        assert_eq!(judge(&dm, &me(), &rules()), Verdict::Stop);
    }

    #[test]
    fn mentions_read_as_names() {
        let m = message(
            Some(1),
            "<@500> ask <@41> and <@!500> too <@500>",
            &[(ME, "clara"), (41, "bob")],
        );
        assert_eq!(readable_text(&m, &me()), "ask @bob and @Clara too");
    }
}
