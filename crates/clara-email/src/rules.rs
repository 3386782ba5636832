//! Which mails are worth an alert: a person's [`MailRule`]s, compiled once
//! per check and run in code. Only a rule that asks for the model's judgement
//! costs a model call, and only after its other conditions hold.

use crate::judge::MailJudge;
use crate::model::{MailRule, MailSummary};
use crate::parse::one_line;
use regex::{Regex, RegexBuilder};

/// The largest compiled pattern allowed: a rule is the person's, but a
/// pathological one must not eat the watcher's memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Why a mail matched: the rule's name and its conditions in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleMatch {
    /// The rule's name.
    pub rule: String,
    /// What held: "sender matches *@bank.example, has attachments".
    pub why: String,
}

/// A rule ready to run.
#[derive(Debug)]
pub struct CompiledRule {
    rule: MailRule,
    from: Option<Regex>,
    subject: Option<Regex>,
    body: Option<Regex>,
}

impl CompiledRule {
    /// `rule` compiled; one sentence naming the bad pattern when it is not valid.
    pub fn new(rule: MailRule) -> Result<Self, String> {
        let from = match given(&rule.from) {
            Some(glob) => Some(glob_regex(glob).map_err(|e| {
                format!(
                    "the sender pattern {glob:?} of rule “{}” is not valid: {e}",
                    rule.name
                )
            })?),
            None => None,
        };
        let subject = match given(&rule.subject) {
            Some(p) => Some(regex(p).map_err(|e| {
                format!(
                    "the subject pattern {p:?} of rule “{}” is not a valid regular expression: {e}",
                    rule.name
                )
            })?),
            None => None,
        };
        let body = match given(&rule.body) {
            Some(p) => Some(regex(p).map_err(|e| {
                format!(
                    "the body pattern {p:?} of rule “{}” is not a valid regular expression: {e}",
                    rule.name
                )
            })?),
            None => None,
        };
        Ok(Self {
            rule,
            from,
            subject,
            body,
        })
    }

    /// The rule.
    pub fn rule(&self) -> &MailRule {
        &self.rule
    }

    /// The person's wish for the model, when the rule asks for its judgement.
    pub fn wish(&self) -> Option<&str> {
        given(&self.rule.ask_model)
    }

    /// The reasons every condition except the model's holds for `mail`, or
    /// `None` when one fails.
    pub fn conditions(&self, mail: &MailSummary) -> Option<Vec<String>> {
        let mut why = Vec::new();
        if let Some(from) = &self.from {
            let name = mail
                .from
                .split_once('<')
                .map_or("", |(name, _)| name.trim());
            let hit = from.is_match(&mail.from)
                || from.is_match(&mail.from_address)
                || (!name.is_empty() && from.is_match(name));
            if !hit {
                return None;
            }
            why.push(format!(
                "sender matches {}",
                given(&self.rule.from).unwrap_or_default()
            ));
        }
        if let Some(subject) = &self.subject {
            if !subject.is_match(&mail.subject) {
                return None;
            }
            why.push(format!(
                "subject matches “{}”",
                given(&self.rule.subject).unwrap_or_default()
            ));
        }
        if let Some(body) = &self.body {
            if !body.is_match(&mail.body) {
                return None;
            }
            why.push(format!(
                "text matches “{}”",
                given(&self.rule.body).unwrap_or_default()
            ));
        }
        if let Some(wanted) = self.rule.has_attachment {
            if mail.has_attachment() != wanted {
                return None;
            }
            why.push(
                if wanted {
                    "has attachments"
                } else {
                    "no attachments"
                }
                .to_owned(),
            );
        }
        Some(why)
    }
}

/// A person's rules, compiled. Rules that do not compile are left out (with
/// a warning): one bad rule must not silence the others.
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<CompiledRule>,
}

impl RuleSet {
    /// `rules` compiled, in order.
    pub fn new(rules: Vec<MailRule>) -> Self {
        let rules = rules
            .into_iter()
            .filter_map(|rule| match CompiledRule::new(rule) {
                Ok(compiled) => Some(compiled),
                Err(sentence) => {
                    tracing::warn!(%sentence, "a mail rule is skipped");
                    None
                }
            })
            .collect();
        Self { rules }
    }

    /// Whether there are no usable rules (then no mail is worth an alert).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first rule that picks `mail`, and why. Rules that need no model
    /// are tried first; a rule asking the model is tried only with a `judge`
    /// and while `model_calls` (decremented per call) lasts. A judge that
    /// fails counts as "no": the failure is logged, nothing is alerted.
    pub async fn decide(
        &self,
        mail: &MailSummary,
        judge: Option<&dyn MailJudge>,
        model_calls: &mut usize,
    ) -> Option<RuleMatch> {
        for rule in self.rules.iter().filter(|r| r.wish().is_none()) {
            if let Some(why) = rule.conditions(mail) {
                return Some(matched(rule, why));
            }
        }
        let judge = judge?;
        for rule in self.rules.iter() {
            let Some(wish) = rule.wish() else { continue };
            let Some(mut why) = rule.conditions(mail) else {
                continue;
            };
            if *model_calls == 0 {
                tracing::warn!(rule = %rule.rule.name, uid = mail.uid, "too many mails for the model's judgement at once; this one is not judged");
                return None;
            }
            *model_calls -= 1;
            match judge.judge(wish, mail).await {
                Ok(Some(reason)) => {
                    let reason = one_line(&clara_tools::untrusted::clean(&reason));
                    let reason = crate::parse::cap_chars(&reason, 120);
                    why.push(if reason.is_empty() {
                        "the model thinks it fits".to_owned()
                    } else {
                        format!("the model: {reason}")
                    });
                    return Some(matched(rule, why));
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(rule = %rule.rule.name, uid = mail.uid, %error, "the model's judgement failed; no alert for this rule");
                }
            }
        }
        None
    }
}

fn matched(rule: &CompiledRule, why: Vec<String>) -> RuleMatch {
    RuleMatch {
        rule: rule.rule.name.clone(),
        why: if why.is_empty() {
            "every mail".to_owned()
        } else {
            why.join(", ")
        },
    }
}

/// Checks `rule`'s patterns: `Err` is one sentence naming the bad one (for
/// the command or tool that saves rules).
pub fn check_rule(rule: &MailRule) -> Result<(), String> {
    CompiledRule::new(rule.clone()).map(|_| ())
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn regex(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

/// A case-insensitive glob as a regex: `*` any run, `?` one character,
/// anchored when it has wildcards, found anywhere when it has none.
pub fn glob_regex(glob: &str) -> Result<Regex, regex::Error> {
    let wild = glob.contains(['*', '?']);
    let mut pattern = String::new();
    if wild {
        pattern.push('^');
    }
    for c in glob.chars() {
        match c {
            '*' => pattern.push_str(".*"),
            '?' => pattern.push('.'),
            other => pattern.push_str(&regex::escape(&other.to_string())),
        }
    }
    if wild {
        pattern.push('$');
    }
    regex(&pattern)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clara_core::UserId;

    fn rule(change: impl FnOnce(&mut MailRule)) -> MailRule {
        let mut rule = MailRule {
            id: uuid::Uuid::nil(),
            user: UserId(uuid::Uuid::nil()),
            name: "r".into(),
            from: None,
            subject: None,
            body: None,
            has_attachment: None,
            ask_model: None,
        };
        change(&mut rule);
        rule
    }

    fn mail() -> MailSummary {
        MailSummary {
            uid: 1,
            folder: "INBOX".into(),
            from: "Bank Support <NoReply@Bank.Example>".into(),
            from_address: "noreply@bank.example".into(),
            subject: "Your statement for March".into(),
            body: "Dear customer, your balance is low.".into(),
            attachments: vec!["statement.pdf".into()],
            ..MailSummary::default()
        }
    }

    fn decide_now(rules: Vec<MailRule>, mail: &MailSummary) -> Option<RuleMatch> {
        let set = RuleSet::new(rules);
        let mut calls = 10;
        futures::executor::block_on(set.decide(mail, None, &mut calls))
    }

    #[test]
    fn sender_globs_match_the_address_the_name_or_the_whole() {
        let m = mail();
        for glob in [
            "*@bank.example",
            "*@BANK.example",
            "Bank*",
            "noreply@bank.example",
            "support",
            "*<noreply@*>",
        ] {
            let found = decide_now(vec![rule(|r| r.from = Some(glob.into()))], &m);
            assert!(found.is_some(), "{glob}");
        }
        for glob in [
            "*@bank.example.evil",
            "alice@*",
            "*@other.example",
            "n?reply@bank.example.com",
        ] {
            assert!(
                decide_now(vec![rule(|r| r.from = Some(glob.into()))], &m).is_none(),
                "{glob}"
            );
        }
        let found = decide_now(vec![rule(|r| r.from = Some("*@bank.example".into()))], &m).unwrap();
        assert_eq!(found.why, "sender matches *@bank.example");
        // Regex characters in a glob are literal.
        assert!(glob_regex("a.b@x").unwrap().is_match("a.b@x"));
        assert!(!glob_regex("a.b@x").unwrap().is_match("axb@x"));
    }

    #[test]
    fn every_condition_must_hold() {
        let m = mail();
        let all = rule(|r| {
            r.name = "bank".into();
            r.from = Some("*@bank.example".into());
            r.subject = Some("statement".into());
            r.body = Some(r"balance\s+is\s+low".into());
            r.has_attachment = Some(true);
        });
        let found = decide_now(vec![all.clone()], &m).unwrap();
        assert_eq!(found.rule, "bank");
        assert_eq!(
            found.why,
            "sender matches *@bank.example, subject matches “statement”, text matches “balance\\s+is\\s+low”, has attachments"
        );
        let mut no_attachment = m.clone();
        no_attachment.attachments.clear();
        assert!(decide_now(vec![all.clone()], &no_attachment).is_none());
        let mut other_subject = m.clone();
        other_subject.subject = "Hello".into();
        assert!(decide_now(vec![all], &other_subject).is_none());
        let none = rule(|r| r.has_attachment = Some(false));
        assert!(decide_now(vec![none.clone()], &m).is_none());
        assert_eq!(
            decide_now(vec![none], &no_attachment).unwrap().why,
            "no attachments"
        );
        // No conditions: every mail.
        assert_eq!(
            decide_now(vec![rule(|_| {})], &m).unwrap().why,
            "every mail"
        );
        // No rules: nothing.
        assert!(decide_now(vec![], &m).is_none());
    }

    #[test]
    fn bad_patterns_are_named_and_skipped() {
        let bad = rule(|r| {
            r.name = "broken".into();
            r.subject = Some("(unclosed".into());
        });
        let e = check_rule(&bad).unwrap_err();
        assert!(e.contains("broken") && e.contains("(unclosed"), "{e}");
        let good = rule(|r| r.name = "good".into());
        assert_eq!(decide_now(vec![bad, good], &mail()).unwrap().rule, "good");
    }

    #[test]
    fn model_rules_need_a_judge() {
        let wish = rule(|r| r.ask_model = Some("anything about money".into()));
        assert!(decide_now(vec![wish], &mail()).is_none());
    }
}
