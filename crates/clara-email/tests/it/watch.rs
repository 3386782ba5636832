//! The watcher against a real Dovecot: IDLE, polling, rules, unseen mail,
//! restarts, dropped connections, bad credentials, bursts, the judge.

use crate::{
    DEADLINE, config, eventually, first_look, init_logs, marked_past, rule, seen_flags, watch,
};
use clara_core::UserId;
use clara_email::testing::dovecot::{ASSISTANT, Dovecot};
use clara_email::testing::{FnJudge, MemoryBook, RecordingAlerts};
use clara_email::{AccountStatus, MailJudge};
use std::sync::Arc;
use std::time::Duration;

fn bank_rule(user: UserId) -> clara_email::MailRule {
    rule(user, "bank", |r| r.from = Some("*@bank.example".into()))
}

#[tokio::test]
async fn idle_alerts_within_seconds_and_the_mail_stays_unread() {
    init_logs();
    let server = Dovecot::start();
    // Old mail, there before the watcher looked: never alerted.
    server.deliver(
        ASSISTANT.0,
        "Bank <old@bank.example>",
        "Old statement",
        "old",
    );
    let person = UserId::new();
    let account = server.account(person, ASSISTANT);
    let book = MemoryBook::new();
    book.put_account(account.clone());
    book.add_rule(bank_rule(person));
    let alerts = RecordingAlerts::new();
    let watcher = watch(config(), &book, &alerts, None);

    first_look(&book, &account).await;
    assert_eq!(book.mark_of(account.id, "INBOX").unwrap().last_uid, 1);
    eventually("the watcher is in IDLE", || {
        book.status(account.id) == Some(AccountStatus::Watching { idle: true })
    })
    .await;

    server.deliver(
        ASSISTANT.0,
        "Alice Bank <alice@bank.example>",
        "Invoice 42 overdue",
        "Please pay.",
    );
    let sent = alerts.wait_for_alerts(1, DEADLINE).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].user, person);
    assert_eq!(
        sent[0].text,
        "📧 Alice Bank <alice@bank.example>: “Invoice 42 overdue” — rule “bank” (sender matches *@bank.example)"
    );
    assert!(
        sent[0]
            .key
            .starts_with(&format!("mail:{}:INBOX:", account.id)),
        "{}",
        sent[0].key
    );
    marked_past(&book, &account, 2).await;

    // Nothing became \Seen: the watcher only EXAMINEs and PEEKs.
    assert_eq!(seen_flags(&account).await, vec![(1, false), (2, false)]);
    watcher.stop().await;
    assert_eq!(alerts.alerts().len(), 1, "the old mail was never alerted");
}

#[tokio::test]
async fn polling_finds_mail_when_idle_is_off() {
    init_logs();
    let server = Dovecot::start();
    let person = UserId::new();
    let mut account = server.account(person, ASSISTANT);
    account.use_idle = false;
    let book = MemoryBook::new();
    book.put_account(account.clone());
    book.add_rule(bank_rule(person));
    let alerts = RecordingAlerts::new();
    let watcher = watch(config(), &book, &alerts, None);
    first_look(&book, &account).await;
    assert_eq!(
        book.status(account.id),
        Some(AccountStatus::Watching { idle: false })
    );

    server.deliver(
        ASSISTANT.0,
        "notice@bank.example",
        "Card blocked",
        "Call us.",
    );
    let sent = alerts.wait_for_alerts(1, DEADLINE).await;
    assert_eq!(sent.len(), 1);
    assert!(sent[0].text.contains("“Card blocked”"), "{}", sent[0].text);
    assert_eq!(seen_flags(&account).await, vec![(1, false)]);
    watcher.stop().await;
}

#[tokio::test]
async fn mail_no_rule_picks_sends_nothing() {
    init_logs();
    let server = Dovecot::start();
    let person = UserId::new();
    let account = server.account(person, ASSISTANT);
    let book = MemoryBook::new();
    book.put_account(account.clone());
    book.add_rule(bank_rule(person));
    book.add_rule(rule(person, "big", |r| {
        r.subject = Some("^urgent".into());
        r.has_attachment = Some(true);
    }));
    // Another person's rule matching everything is not this person's.
    book.add_rule(rule(UserId::new(), "all", |_| {}));
    let alerts = RecordingAlerts::new();
    let watcher = watch(config(), &book, &alerts, None);
    first_look(&book, &account).await;

    server.deliver(
        ASSISTANT.0,
        "Newsletter <news@shop.example>",
        "Urgent: sale",
        "50% off",
    );
    server.deliver(
        ASSISTANT.0,
        "bob@bank.example.evil",
        "Your account",
        "click here",
    );
    // The mark moves only after both were looked at.
    marked_past(&book, &account, 2).await;
    watcher.stop().await;
    assert!(alerts.alerts().is_empty(), "{:?}", alerts.alerts());
    assert_eq!(alerts.calls(), 0);
}

#[tokio::test]
async fn a_restart_does_not_alert_again() {
    init_logs();
    let server = Dovecot::start();
    let person = UserId::new();
    let account = server.account(person, ASSISTANT);
    let book = MemoryBook::new();
    book.put_account(account.clone());
    book.add_rule(bank_rule(person));
    let first_alerts = RecordingAlerts::new();
    let first = watch(config(), &book, &first_alerts, None);
    first_look(&book, &account).await;
    server.deliver(ASSISTANT.0, "a@bank.example", "First", "1");
    assert_eq!(first_alerts.wait_for_alerts(1, DEADLINE).await.len(), 1);
    marked_past(&book, &account, 1).await;
    first.stop().await;

    // A new watcher over the same book, with an outbox that has never seen a
    // key: only the new mail reaches it.
    let second_alerts = RecordingAlerts::new();
    let second = watch(config(), &book, &second_alerts, None);
    eventually("the second watcher is watching", || {
        book.statuses(account.id)
            .iter()
            .filter(|s| matches!(s, AccountStatus::Watching { .. }))
            .count()
            >= 2
    })
    .await;
    server.deliver(ASSISTANT.0, "b@bank.example", "Second", "2");
    let sent = second_alerts.wait_for_alerts(1, DEADLINE).await;
    marked_past(&book, &account, 2).await;
    second.stop().await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].text.contains("“Second”"), "{}", sent[0].text);
    assert_eq!(second_alerts.calls(), 1);
}

#[tokio::test]
async fn a_dropped_connection_and_a_server_restart_are_survived() {
    init_logs();
    let mut server = Dovecot::start();
    let person = UserId::new();
    let account = server.account(person, ASSISTANT);
    let book = MemoryBook::new();
    book.put_account(account.clone());
    book.add_rule(bank_rule(person));
    let alerts = RecordingAlerts::new();
    let watcher = watch(config(), &book, &alerts, None);
    first_look(&book, &account).await;
    let watching = |book: &MemoryBook| {
        book.statuses(account.id)
            .iter()
            .filter(|s| matches!(s, AccountStatus::Watching { idle: true }))
            .count()
    };
    eventually("watching", || watching(&book) == 1).await;

    // The server drops the connection (as on a timeout or an admin's kick).
    server.kick(ASSISTANT.0);
    eventually("the watcher signed in again", || watching(&book) >= 2).await;
    server.deliver(ASSISTANT.0, "a@bank.example", "After the kick", "1");
    let sent = alerts.wait_for_alerts(1, DEADLINE).await;
    assert!(sent[0].text.contains("After the kick"), "{sent:?}");

    // The whole server goes away and comes back.
    server.restart();
    eventually("the watcher signed in after the restart", || {
        watching(&book) >= 3
    })
    .await;
    server.deliver(ASSISTANT.0, "b@bank.example", "After the restart", "2");
    let sent = alerts.wait_for_alerts(2, DEADLINE).await;
    watcher.stop().await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[1].text.contains("After the restart"), "{sent:?}");
    assert!(
        alerts.problems().is_empty(),
        "a short outage is not worth a message"
    );
}

#[tokio::test]
async fn bad_credentials_give_one_clear_sentence() {
    init_logs();
    let server = Dovecot::start();
    let person = UserId::new();
    let mut account = server.account(person, ASSISTANT);
    account.password = clara_core::Secret::new("wrong-password-xyz");
    let book = MemoryBook::new();
    book.put_account(account.clone());
    book.add_rule(bank_rule(person));
    let alerts = RecordingAlerts::new();
    // Retries every second: the sentence must still come once.
    let watcher = watch(config(), &book, &alerts, None);
    let problems = alerts.wait_for_problems(1, DEADLINE).await;
    eventually("the watcher tried again", || {
        book.statuses(account.id)
            .iter()
            .filter(|s| matches!(s, AccountStatus::Failing(_)))
            .count()
            >= 3
    })
    .await;
    watcher.stop().await;

    let problems_after = alerts.problems();
    assert_eq!(problems_after.len(), 1, "{problems_after:?}");
    assert_eq!(problems[0].user, person);
    assert_eq!(
        problems[0].text,
        "Clara could not sign in to assistant@example.test on 127.0.0.1: the server refused the user name or password. Update the account with `clara email add …`."
    );
    assert_eq!(problems[0].key, format!("mail-problem:{}:auth", account.id));
    let status = book.status(account.id).unwrap();
    assert_eq!(status, AccountStatus::Failing(problems[0].text.clone()));
    assert!(!format!("{status:?}{problems:?}").contains("wrong-password-xyz"));
    assert!(alerts.alerts().is_empty());
}

#[tokio::test]
async fn a_burst_after_downtime_is_one_alert() {
    init_logs();
    let server = Dovecot::start();
    let person = UserId::new();
    let account = server.account(person, ASSISTANT);
    let book = MemoryBook::new();
    book.put_account(account.clone());
    book.add_rule(bank_rule(person));
    let alerts = RecordingAlerts::new();
    let mut settings = config();
    settings.batch = Duration::from_secs(2);
    let first = watch(settings.clone(), &book, &alerts, None);
    first_look(&book, &account).await;
    first.stop().await;

    // 200 mails arrive while Clara is down; 150 match.
    for i in 1..=200 {
        let from = if i % 4 == 0 {
            format!("shop{i}@shop.example")
        } else {
            format!("Bank {i} <n{i}@bank.example>")
        };
        server.deliver(ASSISTANT.0, &from, &format!("Mail {i}"), "text");
    }
    let second = watch(settings, &book, &alerts, None);
    marked_past(&book, &account, 200).await;
    // Give a second alert (if any) the chance to arrive before counting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    second.stop().await;
    let sent = alerts.alerts();
    assert!(!sent.is_empty() && sent.len() <= 2, "{} alerts", sent.len());
    let text = &sent[0].text;
    assert!(
        text.starts_with("📧 150 new mails matched your rules in assistant@example.test:"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 7, "{text}");
    assert!(text.ends_with("…and 145 more."), "{text}");
    assert!(
        text.contains("• Bank 1 <n1@bank.example>: “Mail 1” — rule “bank”"),
        "{text}"
    );
    // All still unread.
    assert!(seen_flags(&account).await.iter().all(|(_, seen)| !seen));
}

#[tokio::test]
async fn the_model_is_asked_only_when_the_other_conditions_hold() {
    init_logs();
    let server = Dovecot::start();
    let person = UserId::new();
    let account = server.account(person, ASSISTANT);
    let book = MemoryBook::new();
    book.put_account(account.clone());
    book.add_rule(rule(person, "landlord", |r| {
        r.from = Some("*@landlord.example".into());
        r.ask_model = Some("anything about the rent".into());
    }));
    let judge = Arc::new(FnJudge::new(
        |_wish: &str, mail: &clara_email::MailSummary| {
            Ok(mail
                .body
                .contains("rent")
                .then(|| "asks about the rent".to_owned()))
        },
    ));
    let alerts = RecordingAlerts::new();
    let mut settings = config();
    settings.judge = true;
    let watcher = watch(
        settings,
        &book,
        &alerts,
        Some(Arc::clone(&judge) as Arc<dyn MailJudge>),
    );
    first_look(&book, &account).await;

    server.deliver(
        ASSISTANT.0,
        "Landlord <owner@landlord.example>",
        "Flat",
        "The rent goes up in May.",
    );
    server.deliver(
        ASSISTANT.0,
        "Landlord <owner@landlord.example>",
        "Party",
        "Summer party on Friday.",
    );
    server.deliver(
        ASSISTANT.0,
        "someone@else.example",
        "Rent",
        "rent rent rent",
    );
    marked_past(&book, &account, 3).await;
    watcher.stop().await;

    let sent = alerts.alerts();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        sent[0].text,
        "📧 Landlord <owner@landlord.example>: “Flat” — rule “landlord” (sender matches *@landlord.example, the model: asks about the rent)"
    );
    // The stranger's mail never reached the model.
    let asked: Vec<String> = judge.asked().into_iter().map(|(_, m)| m.subject).collect();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(!asked.contains(&"Rent".to_owned()));
}

#[tokio::test]
async fn without_judge_setting_model_rules_stay_silent() {
    init_logs();
    let server = Dovecot::start();
    let person = UserId::new();
    let account = server.account(person, ASSISTANT);
    let book = MemoryBook::new();
    book.put_account(account.clone());
    book.add_rule(rule(person, "ask", |r| {
        r.ask_model = Some("everything".into())
    }));
    let judge = Arc::new(FnJudge::new(|_: &str, _: &clara_email::MailSummary| {
        Ok(Some("yes".to_owned()))
    }));
    let alerts = RecordingAlerts::new();
    // config().judge is false: the judge is never asked.
    let watcher = watch(
        config(),
        &book,
        &alerts,
        Some(Arc::clone(&judge) as Arc<dyn MailJudge>),
    );
    first_look(&book, &account).await;
    server.deliver(ASSISTANT.0, "x@example.test", "Hello", "hi");
    marked_past(&book, &account, 1).await;
    watcher.stop().await;
    assert!(alerts.alerts().is_empty());
    assert!(judge.asked().is_empty());
}

#[tokio::test]
async fn accounts_added_and_removed_while_running_are_picked_up() {
    init_logs();
    let server = Dovecot::start();
    let person = UserId::new();
    let account = server.account(person, ASSISTANT);
    let book = MemoryBook::new();
    book.add_rule(bank_rule(person));
    let alerts = RecordingAlerts::new();
    let watcher = watch(config(), &book, &alerts, None);
    // Added after start: found on the next reload.
    book.put_account(account.clone());
    first_look(&book, &account).await;
    server.deliver(ASSISTANT.0, "a@bank.example", "One", "1");
    alerts.wait_for_alerts(1, DEADLINE).await;
    marked_past(&book, &account, 1).await;

    // Removed: its mail is no longer looked at.
    book.remove_account(account.id);
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.deliver(ASSISTANT.0, "b@bank.example", "Two", "2");
    tokio::time::sleep(Duration::from_secs(3)).await;
    watcher.stop().await;
    assert_eq!(alerts.alerts().len(), 1);
    assert_eq!(book.mark_of(account.id, "INBOX").unwrap().last_uid, 1);
}
