//! Messages Clara starts: person settings, the outbox (stored once, claimed by
//! one process, leases that run out), schedules fired once in one transaction,
//! and watched mailboxes.

use crate::common::{TestDb, msg, place};
use clara_store::{
    Firing, MailRuleRecord, NewMailAccount, NewProactive, NewSchedule, PersonSettings,
    ProactiveKind, ProactiveStatus, ScheduleId, ScheduleKind,
};

fn message(key: &str, p: &crate::common::Place, due: i64) -> NewProactive {
    NewProactive {
        key: key.into(),
        user: Some(p.user),
        conversation: p.conversation,
        kind: ProactiveKind::Alert,
        body: format!("body of {key}"),
        note: None,
        due_at_ms: due,
    }
}

async fn settings_round_trip(db: TestDb) {
    let store = db.open().await;
    let p = place(&store, "ann").await;
    assert_eq!(
        store.person_settings(p.user).await.unwrap(),
        PersonSettings::default()
    );
    let settings = PersonSettings {
        time_zone: Some("Europe/Berlin".into()),
        alerts_to: Some(p.conversation),
        quiet_hours: Some(("22:00".into(), "07:00".into())),
    };
    store.set_person_settings(p.user, &settings).await.unwrap();
    assert_eq!(store.person_settings(p.user).await.unwrap(), settings);
    let cleared = PersonSettings {
        time_zone: Some("UTC".into()),
        ..PersonSettings::default()
    };
    store.set_person_settings(p.user, &cleared).await.unwrap();
    assert_eq!(store.person_settings(p.user).await.unwrap(), cleared);
}

async fn the_latest_direct_conversation_is_where_they_last_wrote(db: TestDb) {
    let store = db.open().await;
    let first = place(&store, "ann").await;
    assert!(
        store
            .latest_direct_conversation(first.user)
            .await
            .unwrap()
            .is_none()
    );
    store
        .append_messages(&[msg(&first, "hello", 1_000)])
        .await
        .unwrap();
    let (id, conv) = store
        .latest_direct_conversation(first.user)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(id, first.conversation);
    assert_eq!(conv.channel, "ann");
}

async fn the_outbox_stores_a_key_once_and_one_claim_wins(db: TestDb) {
    let store = db.open().await;
    let p = place(&store, "ann").await;
    assert!(
        store
            .enqueue_proactive(&message("a", &p, 1_000))
            .await
            .unwrap()
    );
    assert!(
        !store
            .enqueue_proactive(&message("a", &p, 1_000))
            .await
            .unwrap()
    );
    assert!(
        store
            .enqueue_proactive(&message("later", &p, 9_000))
            .await
            .unwrap()
    );

    // Another platform's process sees nothing; not yet due is not claimed.
    let none = store
        .claim_proactive(2_000, &["telegram".into()], 60_000, 10)
        .await
        .unwrap();
    assert!(none.is_empty());
    let claimed = store
        .claim_proactive(2_000, &["cli".into()], 60_000, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].key, "a");
    assert_eq!(claimed[0].conversation_ref.channel, "ann");
    assert_eq!(claimed[0].status, ProactiveStatus::Sending);
    // A second claim within the lease gets nothing.
    let again = store
        .claim_proactive(3_000, &["cli".into()], 60_000, 10)
        .await
        .unwrap();
    assert!(again.is_empty());
    // The lease runs out (the process died): due again.
    let retaken = store
        .claim_proactive(70_000, &["cli".into()], 60_000, 1)
        .await
        .unwrap();
    assert_eq!(retaken[0].key, "a");
    assert_eq!(retaken[0].attempts, 2);
    store.proactive_sent(&["a".into()], 70_001).await.unwrap();
    let sent = store.proactive("a").await.unwrap().unwrap();
    assert_eq!(sent.status, ProactiveStatus::Sent);
    assert_eq!(sent.sent_at_ms, Some(70_001));

    // Postponed (quiet hours) then failed.
    let later = store
        .claim_proactive(70_002, &["cli".into()], 60_000, 10)
        .await
        .unwrap();
    assert_eq!(later[0].key, "later");
    store
        .postpone_proactive("later", 100_000, Some("quiet hours"))
        .await
        .unwrap();
    assert!(
        store
            .claim_proactive(99_999, &["cli".into()], 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let back = store
        .claim_proactive(100_000, &["cli".into()], 60_000, 10)
        .await
        .unwrap();
    assert_eq!(back[0].last_error.as_deref(), Some("quiet hours"));
    store.proactive_failed("later", "no adapter").await.unwrap();
    let recent = store.recent_proactive(Some(p.user), 10).await.unwrap();
    assert_eq!(recent.len(), 2);
    assert_eq!(recent[0].status, ProactiveStatus::Failed);
}

async fn schedules_fire_once_with_their_outbox_row(db: TestDb) {
    let store = db.open().await;
    let p = place(&store, "ann").await;
    let id = ScheduleId::new();
    store
        .add_schedule(&NewSchedule {
            id,
            user: p.user,
            conversation: p.conversation,
            kind: ScheduleKind::Reminder,
            body: "stretch".into(),
            timing: serde_json::json!({"kind": "daily", "time": "09:00"}),
            time_zone: "UTC".into(),
            next_at_ms: 1_000,
        })
        .await
        .unwrap();
    assert_eq!(store.next_schedule_at().await.unwrap(), Some(1_000));
    let plan = |s: &clara_store::ScheduleRecord| Firing {
        next_at_ms: Some(s.next_at_ms.unwrap_or(0) + 86_400_000),
        message: NewProactive {
            key: format!("schedule:{}:{}", s.id, s.next_at_ms.unwrap_or(0)),
            user: Some(s.user),
            conversation: s.conversation,
            kind: ProactiveKind::Reminder,
            body: s.body.clone(),
            note: None,
            due_at_ms: s.next_at_ms.unwrap_or(0),
        },
    };
    assert!(
        store
            .fire_due_schedules(999, 10, plan)
            .await
            .unwrap()
            .is_empty()
    );
    let fired = store.fire_due_schedules(1_500, 10, plan).await.unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].body, "stretch");
    // Fired: not due again until tomorrow.
    assert!(
        store
            .fire_due_schedules(1_600, 10, plan)
            .await
            .unwrap()
            .is_empty()
    );
    let row = store.schedule(id).await.unwrap().unwrap();
    assert_eq!(row.next_at_ms, Some(86_401_000));
    assert_eq!(row.fired, 1);
    assert_eq!(row.last_fired_at_ms, Some(1_500));
    let out = store
        .proactive(&format!("schedule:{id}:1000"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.kind, ProactiveKind::Reminder);

    assert_eq!(store.schedules(Some(p.user), false).await.unwrap().len(), 1);
    let short = id.short();
    assert_eq!(store.schedules_by_prefix(&short).await.unwrap()[0].id, id);
    assert!(store.cancel_schedule(id, Some(p.user)).await.unwrap());
    assert!(!store.cancel_schedule(id, Some(p.user)).await.unwrap());
    assert!(
        store
            .schedules(Some(p.user), false)
            .await
            .unwrap()
            .is_empty()
    );
    let ended = store.schedules(Some(p.user), true).await.unwrap();
    assert!(!ended[0].is_active());
    assert_eq!(store.next_schedule_at().await.unwrap(), None);
}

async fn schedules_fired_by_two_stores_fire_once(db: TestDb) {
    let store = db.open().await;
    let p = place(&store, "ann").await;
    for i in 0..20 {
        store
            .add_schedule(&NewSchedule {
                id: ScheduleId::new(),
                user: p.user,
                conversation: p.conversation,
                kind: ScheduleKind::Task,
                body: format!("task {i}"),
                timing: serde_json::json!({"kind": "once", "at_ms": 1_000}),
                time_zone: "UTC".into(),
                next_at_ms: 1_000,
            })
            .await
            .unwrap();
    }
    let other = db.open().await;
    let plan = |s: &clara_store::ScheduleRecord| Firing {
        next_at_ms: None,
        message: NewProactive {
            key: format!("schedule:{}", s.id),
            user: Some(s.user),
            conversation: s.conversation,
            kind: ProactiveKind::Task,
            body: s.body.clone(),
            note: None,
            due_at_ms: 1_000,
        },
    };
    let (a, b) = tokio::join!(
        async {
            let mut n = 0;
            for _ in 0..10 {
                n += store
                    .fire_due_schedules(2_000, 3, plan)
                    .await
                    .unwrap()
                    .len();
            }
            n
        },
        async {
            let mut n = 0;
            for _ in 0..10 {
                n += other
                    .fire_due_schedules(2_000, 3, plan)
                    .await
                    .unwrap()
                    .len();
            }
            n
        }
    );
    assert_eq!(a + b, 20, "each schedule fired exactly once");
}

async fn mail_accounts_marks_and_rules(db: TestDb) {
    let store = db.open().await;
    let p = place(&store, "ann").await;
    let id = uuid::Uuid::new_v4();
    let account = NewMailAccount {
        id,
        user: p.user,
        label: "ann@example.test".into(),
        host: "127.0.0.1".into(),
        port: 14300,
        security: "plain".into(),
        username: "ann".into(),
        password_sealed: vec![1, 2, 3, 0, 255],
        folders: vec!["INBOX".into(), "Work".into()],
        use_idle: true,
    };
    store.put_mail_account(&account).await.unwrap();
    let listed = store.mail_accounts(Some(p.user)).await.unwrap();
    assert_eq!(listed[0].account, account);
    assert!(!format!("{:?}", listed[0]).contains("[1, 2, 3"));
    store.set_mail_status(id, "watching (IDLE)").await.unwrap();
    assert_eq!(
        store.mail_accounts(None).await.unwrap()[0]
            .status
            .as_deref(),
        Some("watching (IDLE)")
    );
    assert_eq!(store.mail_mark(id, "INBOX").await.unwrap(), None);
    store.set_mail_mark(id, "INBOX", 7, 41).await.unwrap();
    store.set_mail_mark(id, "INBOX", 7, 42).await.unwrap();
    assert_eq!(store.mail_mark(id, "INBOX").await.unwrap(), Some((7, 42)));

    let rule = MailRuleRecord {
        id: uuid::Uuid::new_v4(),
        user: p.user,
        name: "bank".into(),
        conditions: serde_json::json!({"from": "*@bank.example"}),
        created_at_ms: 5,
    };
    store.add_mail_rule(&rule).await.unwrap();
    assert_eq!(
        store.mail_rules(Some(p.user)).await.unwrap(),
        vec![rule.clone()]
    );
    let stranger = place(&store, "bob").await;
    assert!(
        !store
            .remove_mail_rule(rule.id, Some(stranger.user))
            .await
            .unwrap()
    );
    assert!(store.remove_mail_rule(rule.id, Some(p.user)).await.unwrap());

    assert!(
        !store
            .remove_mail_account(id, Some(stranger.user))
            .await
            .unwrap()
    );
    assert!(store.remove_mail_account(id, None).await.unwrap());
    assert_eq!(store.mail_mark(id, "INBOX").await.unwrap(), None);
}

on_both_backends!(
    settings_round_trip,
    the_latest_direct_conversation_is_where_they_last_wrote,
    the_outbox_stores_a_key_once_and_one_claim_wins,
    schedules_fire_once_with_their_outbox_row,
    schedules_fired_by_two_stores_fire_once,
    mail_accounts_marks_and_rules,
);
