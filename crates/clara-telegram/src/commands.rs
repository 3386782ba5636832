//! What the adapter says to commands, and the sticky `/tier` choice. Pure.

use clara_core::Tier;

/// `/start` and `/help`.
pub(crate) const GREETING: &str = "Hi, I'm Clara. Write to me as you would to a friend; I remember what matters across our conversations.\n\n\
Commands:\n\
/new – start a fresh conversation (I keep what I know about you)\n\
/forget <what> – ask me to forget something about you\n\
/tier high|mid|low – choose the model I answer with here (/tier default to reset)\n\
/stop – stop the answer I'm writing\n\n\
In a group, mention me or reply to one of my messages.";

/// `/new`, once done.
pub(crate) const FRESH_START: &str =
    "Fresh start: I've closed our previous conversation. I still remember what I know about you.";

/// `/stop`.
pub(crate) const STOPPED: &str = "Stopped.";

/// `/forget` without saying what.
pub(crate) const FORGET_USAGE: &str = "Tell me what to forget, for example: /forget my old address";

/// A message Clara cannot read.
pub(crate) const UNREADABLE: &str =
    "I can read text, photos and files, but not this kind of message yet.";

/// What Clara is asked when someone says `/forget <what>`; her memory tools act on it.
pub(crate) fn forget_request(what: &str) -> String {
    format!("Please forget this about me: {what}")
}

/// An unknown command.
pub(crate) fn unknown(name: &str) -> String {
    format!("I don't know /{name}.\n\n{GREETING}")
}

/// `/tier [args]` given the chat's current choice: the new choice and the answer.
pub(crate) fn tier(args: &str, current: Option<Tier>) -> (Option<Tier>, String) {
    let word = args
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    match word.as_str() {
        "" => {
            let now = current.map_or("the default".to_owned(), |t| {
                format!("the {} tier", t.as_str())
            });
            (
                current,
                format!(
                    "Here I answer with {now}. Use /tier high, /tier mid, /tier low or /tier default."
                ),
            )
        }
        "default" | "reset" | "auto" | "off" => (None, "Back to the default tier here.".to_owned()),
        other => match Tier::parse(other) {
            Some(tier) => (
                Some(tier),
                format!(
                    "From now on I answer here with the {} tier. (/tier default goes back.)",
                    tier.as_str()
                ),
            ),
            None => (
                current,
                format!(
                    "{other:?} is not a tier: use /tier high, /tier mid, /tier low or /tier default."
                ),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tier_is_set_shown_reset_and_checked() {
        let (t, said) = tier("HIGH", None);
        assert_eq!(t, Some(Tier::High));
        assert!(said.contains("high tier"));
        let (t, said) = tier("", Some(Tier::Low));
        assert_eq!(t, Some(Tier::Low));
        assert!(said.contains("the low tier"));
        let (t, _) = tier("default", Some(Tier::Low));
        assert_eq!(t, None);
        let (t, said) = tier("ultra", Some(Tier::Mid));
        assert_eq!(t, Some(Tier::Mid));
        assert!(said.contains("\"ultra\" is not a tier"));
    }
}
