//! `clara schedule …` through the real binary and a real SQLite file: the
//! person and their conversations are made in the store first (the CLI looks
//! people up, never creates them), as a chat would have made them.

use crate::common::{clara, run, text};
use clara_core::{ChannelKind, ConversationRef, MessageId, Role, ThoughtId, UserId};
use clara_store::{MessageStatus, NewMessage, NewProactive, ProactiveKind, Store};
use serde_json::Value;
use std::path::Path;

/// Ann, who wrote once in her direct conversation `cli:ann`, and a group
/// `cli:team` Clara is in.
async fn ann_in(data: &Path) -> UserId {
    let store = Store::open(&data.join("clara.db")).await.unwrap();
    let conversation = store
        .resolve_conversation(&ConversationRef {
            platform: "cli".into(),
            channel: "ann".into(),
            kind: ChannelKind::Direct,
        })
        .await
        .unwrap();
    store
        .resolve_conversation(&ConversationRef {
            platform: "cli".into(),
            channel: "team".into(),
            kind: ChannelKind::Group,
        })
        .await
        .unwrap();
    let user = store.resolve_user("cli", "ann", "Ann").await.unwrap();
    let session = store.start_session(conversation, 1).await.unwrap().id;
    store
        .append_messages(&[NewMessage {
            id: MessageId::new(),
            conversation,
            session,
            thought: ThoughtId::new(),
            user: Some(user),
            role: Role::User,
            content: "hello".into(),
            event_id: None,
            status: MessageStatus::Complete,
            created_at_ms: 1,
            usage: None,
            tool_runs: Vec::new(),
        }])
        .await
        .unwrap();
    store.close().await;
    user
}

/// Runs `clara schedule <args>`, expecting success; returns standard output.
async fn ok(data: &Path, cwd: &Path, args: &[&str]) -> String {
    let out = run(clara(data, cwd).arg("schedule").args(args), "").await;
    assert!(
        out.status.success(),
        "clara schedule {args:?} failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs `clara schedule <args>`, expecting one `clara: …` sentence; returns it.
async fn fails(data: &Path, cwd: &Path, args: &[&str]) -> String {
    let out = run(clara(data, cwd).arg("schedule").args(args), "").await;
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success(),
        "clara schedule {args:?} succeeded: {}",
        text(&out.stdout)
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one sentence: {stderr}");
    assert!(stderr.starts_with("clara: "), "{stderr}");
    stderr
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// The short id in "Added reminder 1a2b3c4d for Ann: …".
fn added_id(out: &str) -> String {
    let first = out.lines().next().unwrap();
    let id = first.split_whitespace().nth(2).unwrap().to_owned();
    assert_eq!(id.len(), 8, "{out}");
    id
}

#[tokio::test]
async fn add_list_and_remove_with_time_zones_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let (data, cwd) = (dir.path().join("data"), dir.path());
    ann_in(&data).await;

    let empty = ok(&data, cwd, &["list"]).await;
    assert_eq!(empty.trim(), "No reminders or scheduled tasks.");

    // A relative time needs no zone.
    let soon = ok(
        &data,
        cwd,
        &[
            "add",
            "--user",
            "cli:ann",
            "--remind",
            "stretch",
            "--when",
            "in 2 minutes",
        ],
    )
    .await;
    assert!(soon.starts_with("Added reminder "), "{soon}");
    assert!(soon.contains("for Ann: stretch"), "{soon}");
    assert!(
        soon.contains("\nnext: ") && soon.contains(" (UTC)\n"),
        "{soon}"
    );
    assert!(soon.contains("delivered to: cli:ann\n"), "{soon}");
    assert!(soon.contains("no restart is needed"), "{soon}");
    let stretch = added_id(&soon);

    // A local time without a zone is one sentence that says what to pass.
    let err = fails(
        &data,
        cwd,
        &[
            "add",
            "--user",
            "cli:ann",
            "--remind",
            "call mum",
            "--when",
            "tomorrow at 9",
        ],
    )
    .await;
    assert!(
        err.contains("Ann's time zone is not known yet") && err.contains("--time-zone"),
        "{err}"
    );

    // Given once, the zone is remembered.
    let weekday = ok(
        &data,
        cwd,
        &[
            "add",
            "--user",
            "cli:ann",
            "--task",
            "what is the weather today?",
            "--when",
            "every weekday at 7",
            "--time-zone",
            "Europe/Berlin",
        ],
    )
    .await;
    assert!(weekday.starts_with("Added task "), "{weekday}");
    assert!(
        weekday.contains("when: every weekday at 07:00\n"),
        "{weekday}"
    );
    assert!(weekday.contains(" at 07:00 (Europe/Berlin)\n"), "{weekday}");
    assert!(
        weekday.contains("Ann's time zone is now Europe/Berlin."),
        "{weekday}"
    );
    let mum = ok(
        &data,
        cwd,
        &[
            "add",
            "--user",
            "cli:ann",
            "--remind",
            "call mum",
            "--when",
            "tomorrow at 9",
            "--to",
            "cli:team",
        ],
    )
    .await;
    assert!(mum.contains(" at 09:00 (Europe/Berlin)\n"), "{mum}");
    assert!(mum.contains("delivered to: cli:team\n"), "{mum}");
    assert!(!mum.contains("time zone is now"), "{mum}");
    let mum_id = added_id(&mum);

    // Conversations and people are looked up, never made.
    let err = fails(
        &data,
        cwd,
        &[
            "add",
            "--user",
            "cli:ann",
            "--remind",
            "x",
            "--when",
            "in 1 hour",
            "--to",
            "cli:nowhere",
        ],
    )
    .await;
    assert!(err.contains("no conversation \"nowhere\""), "{err}");
    let err = fails(
        &data,
        cwd,
        &[
            "add",
            "--user",
            "cli:bob",
            "--remind",
            "x",
            "--when",
            "in 1 hour",
        ],
    )
    .await;
    assert!(err.contains("there is no user \"bob\""), "{err}");
    let err = fails(
        &data,
        cwd,
        &[
            "add", "--user", "cli:ann", "--remind", "x", "--when", "someday",
        ],
    )
    .await;
    assert!(err.contains("Could not read \"someday\""), "{err}");
    // Both a reminder and a task is a usage error.
    let out = run(
        clara(&data, cwd).args([
            "schedule",
            "add",
            "--user",
            "cli:ann",
            "--remind",
            "x",
            "--task",
            "y",
            "--when",
            "in 1 hour",
        ]),
        "",
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));

    // The table: short id, person, kind, when, next in their zone, where.
    let table = ok(&data, cwd, &["list"]).await;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(
        lines[0].starts_with("ID ")
            && lines[0].contains("PERSON")
            && lines[0].contains("NEXT")
            && lines[0].contains("DELIVERED TO"),
        "{table}"
    );
    assert!(lines[1].starts_with(&stretch) && lines[1].contains("(UTC)"));
    assert!(
        lines[2].contains("Ann")
            && lines[2].contains("task")
            && lines[2].contains("every weekday at 07:00")
            && lines[2].contains("at 07:00 (Europe/Berlin)")
            && lines[2].contains("cli:ann"),
        "{table}"
    );
    assert!(
        lines[3].starts_with(&mum_id) && lines[3].contains("cli:team"),
        "{table}"
    );
    let listed = json(&ok(&data, cwd, &["list", "--user", "cli:ann", "--json"]).await);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 3);
    for s in listed {
        assert!(s["next"].is_string() && s["next_at_ms"].is_i64(), "{s}");
        assert_eq!(s["person"], "Ann");
        assert_eq!(s["active"], true);
    }
    assert_eq!(listed[1]["time_zone"], "Europe/Berlin");
    assert_eq!(listed[1]["kind"], "task");

    // Removed by the first digits of its id.
    let removed = ok(&data, cwd, &["remove", &mum_id[..5], "--user", "cli:ann"]).await;
    assert_eq!(
        removed.trim(),
        format!("Cancelled reminder {mum_id} of Ann: call mum")
    );
    let err = fails(&data, cwd, &["remove", &mum_id]).await;
    assert!(
        err.contains("no active reminder or task") && err.contains("clara schedule list"),
        "{err}"
    );
    assert_eq!(ok(&data, cwd, &["list"]).await.lines().count(), 3);
    let all = ok(&data, cwd, &["list", "--all"]).await;
    let cancelled = all.lines().find(|l| l.starts_with(&mum_id)).unwrap();
    assert!(cancelled.contains("cancelled "), "{all}");
}

#[tokio::test]
async fn settings_round_trip_and_a_bad_flag_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (data, cwd) = (dir.path().join("data"), dir.path());
    let ann = ann_in(&data).await;

    let shown = ok(&data, cwd, &["settings", "--user", "cli:ann"]).await;
    assert!(
        shown.contains(&format!("person:       Ann ({ann})")),
        "{shown}"
    );
    assert!(shown.contains("time zone:    not set"), "{shown}");
    assert!(
        shown.contains("alerts go to: the direct conversation they last wrote in (now cli:ann)"),
        "{shown}"
    );
    assert!(shown.contains("quiet hours:  none"), "{shown}");

    let changed = ok(
        &data,
        cwd,
        &[
            "settings",
            "--user",
            &ann.to_string(),
            "--time-zone",
            "europe/berlin",
            "--quiet-hours",
            "22:00-07:00",
            "--alerts-to",
            "cli:team",
        ],
    )
    .await;
    assert!(
        changed.starts_with("Updated Ann's settings.\n"),
        "{changed}"
    );
    assert!(
        changed.contains("time zone:    Europe/Berlin\n"),
        "{changed}"
    );
    assert!(changed.contains("alerts go to: cli:team\n"), "{changed}");
    assert!(changed.contains("quiet hours:  22:00–07:00\n"), "{changed}");

    // A bad flag among good ones: one sentence, and nothing is written.
    let err = fails(
        &data,
        cwd,
        &[
            "settings",
            "--user",
            "cli:ann",
            "--time-zone",
            "Asia/Tokyo",
            "--quiet-hours",
            "late",
        ],
    )
    .await;
    assert!(err.contains("not a quiet-hours range"), "{err}");
    let err = fails(
        &data,
        cwd,
        &[
            "settings",
            "--user",
            "cli:ann",
            "--time-zone",
            "Mars/Olympus",
        ],
    )
    .await;
    assert!(err.contains("not a known time zone"), "{err}");
    let settings = json(&ok(&data, cwd, &["settings", "--user", "cli:ann", "--json"]).await);
    assert_eq!(settings["time_zone"], "Europe/Berlin");
    assert_eq!(settings["alerts_to"], "cli:team");
    assert_eq!(settings["quiet_hours"], "22:00–07:00");

    // Back to none and to the last direct conversation.
    ok(
        &data,
        cwd,
        &[
            "settings",
            "--user",
            "cli:ann",
            "--quiet-hours",
            "off",
            "--alerts-to",
            "auto",
        ],
    )
    .await;
    let settings = json(&ok(&data, cwd, &["settings", "--user", "cli:ann", "--json"]).await);
    assert_eq!(settings["time_zone"], "Europe/Berlin");
    assert_eq!(settings["alerts_to"], Value::Null);
    assert_eq!(settings["alerts_now_to"], "cli:ann");
    assert_eq!(settings["quiet_hours"], Value::Null);
}

#[tokio::test]
async fn the_outbox_shows_what_went_out_and_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let (data, cwd) = (dir.path().join("data"), dir.path());
    let ann = ann_in(&data).await;

    let empty = ok(&data, cwd, &["outbox"]).await;
    assert_eq!(
        empty.trim(),
        "The outbox is empty: Clara has started no messages yet."
    );

    let store = Store::open(&data.join("clara.db")).await.unwrap();
    let (conversation, _) = store
        .latest_direct_conversation(ann)
        .await
        .unwrap()
        .unwrap();
    for (key, kind, body) in [
        ("test:sent", ProactiveKind::Reminder, "stretch"),
        ("test:failed", ProactiveKind::Alert, "a mail from the bank"),
    ] {
        assert!(
            store
                .enqueue_proactive(&NewProactive {
                    key: key.into(),
                    user: Some(ann),
                    conversation,
                    kind,
                    body: body.into(),
                    note: None,
                    due_at_ms: 1_800_000_000_000,
                })
                .await
                .unwrap()
        );
    }
    store
        .proactive_sent(&["test:sent".into()], 1_800_000_060_000)
        .await
        .unwrap();
    store
        .proactive_failed("test:failed", "no telegram adapter is running here")
        .await
        .unwrap();
    store.close().await;

    let table = ok(&data, cwd, &["outbox", "--user", "cli:ann"]).await;
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("STATUS ") && lines[0].contains("DUE (UTC)"),
        "{table}"
    );
    let sent = lines.iter().find(|l| l.starts_with("sent ")).unwrap();
    assert!(
        sent.contains("reminder")
            && sent.contains("Ann")
            && sent.contains("cli:ann")
            && sent.contains("2027-01-15 08:00")
            && sent.contains("2027-01-15 08:01")
            && sent.contains("stretch"),
        "{table}"
    );
    let failed = lines.iter().position(|l| l.starts_with("failed ")).unwrap();
    assert!(lines[failed].contains("alert"), "{table}");
    assert_eq!(
        lines[failed + 1].trim(),
        "last error: no telegram adapter is running here"
    );

    let rows = json(&ok(&data, cwd, &["outbox", "--json", "--limit", "1"]).await);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["person"], "Ann");
    assert!(rows[0]["status"] == "sent" || rows[0]["status"] == "failed");
}
