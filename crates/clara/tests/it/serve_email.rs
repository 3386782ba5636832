//! E-mail monitoring end to end: the real `clara serve` with
//! `EMAIL_MONITORING_ENABLED`, a private real Dovecot
//! (`clara_email::testing::dovecot`), the fake Telegram and the fake OpenAI.
//! The person talks to Clara on Telegram, the operator connects their mailbox
//! and a rule with `clara email …`, and mail delivered by `dovecot-lda` comes
//! back as an alert in the person's Telegram chat — once, across a restart
//! and a re-added account, with the mail left unread.

use crate::common::{SECRET, clara, free_port, run, text, wait_ready, with_fake};
use clara_core::{Role, UserId};
use clara_email::imap;
use clara_email::testing::dovecot::{ASSISTANT, Dovecot};
use clara_store::Store;
use clara_testkit::fake_openai::FakeOpenAi;
use clara_testkit::fake_telegram::{FakeChat, FakeTelegram, FakeUser, UserMessage};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// A generous deadline for things that take a second or two (the debug
/// binary on a shared, busy machine can be slow); never a timing assertion.
const DEADLINE: Duration = Duration::from_secs(120);

/// The person: Ann on Telegram, in her private chat with Clara.
const ANN: i64 = 4242;
const ANN_USER: &str = "telegram:4242";

/// Where the test runs: the data dir and the working directory of every
/// `clara` it starts, with the fakes' addresses.
struct Setup {
    data: PathBuf,
    cwd: PathBuf,
    llm: FakeOpenAi,
    tg: FakeTelegram,
}

impl Setup {
    /// `clara` with the environment every command here shares: the fake
    /// model, the fake Telegram, e-mail monitoring on with fast reloads and
    /// no batching wait.
    fn clara(&self) -> tokio::process::Command {
        let mut cmd = clara(&self.data, &self.cwd);
        with_fake(&mut cmd, &self.llm);
        cmd.env("TG_BOT_TOKEN", self.tg.token())
            .env("TELEGRAM_API_URL", self.tg.api_url())
            .env("EMAIL_MONITORING_ENABLED", "true")
            .env("CLARA_EMAIL__RELOAD_SECS", "1")
            .env("CLARA_EMAIL__BATCH_SECS", "0");
        cmd
    }

    /// Runs `clara email <args>` with `stdin`; returns (success, stdout, stderr).
    async fn email(&self, args: &[&str], stdin: &str) -> (bool, String, String) {
        let out = run(self.clara().arg("email").args(args), stdin).await;
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    }

    /// Runs `clara email <args>`, expecting success; returns standard output.
    async fn email_ok(&self, args: &[&str], stdin: &str) -> String {
        let (ok, stdout, stderr) = self.email(args, stdin).await;
        assert!(
            ok,
            "clara email {args:?} failed: {stderr}\nstdout: {stdout}"
        );
        stdout
    }

    /// Starts `clara serve` and waits until it is ready.
    async fn serve(&self) -> Serving {
        let port = free_port();
        let mut cmd = self.clara();
        cmd.env("CLARA_GATEWAY_PORT", port.to_string())
            // The watcher's own debug lines too: they must not carry the password either.
            .env(
                "RUST_LOG",
                "info,clara_email=debug,sqlx=warn,hyper=warn,reqwest=warn",
            );
        let mut child = cmd.arg("serve").spawn().unwrap();
        // Drained as it comes: a long test's log must not fill the pipe and
        // stall the server.
        let log = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            drain(child.stdout.take().unwrap(), Arc::clone(&log)),
            drain(child.stderr.take().unwrap(), Arc::clone(&log)),
        ];
        wait_ready(port).await;
        Serving {
            child,
            log,
            readers,
        }
    }
}

fn drain(
    mut from: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    into: Arc<Mutex<String>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = [0u8; 8192];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => into
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
    })
}

/// A running `clara serve` and what it has written so far.
struct Serving {
    child: tokio::process::Child,
    log: Arc<Mutex<String>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Serving {
    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Stops it with SIGTERM (as a service manager would); returns its whole
    /// output after checking it exited cleanly.
    async fn stop(mut self) -> String {
        let pid = self.child.id().unwrap();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("clara exits after SIGTERM")
            .unwrap();
        for reader in self.readers.drain(..) {
            reader.await.unwrap();
        }
        let log = self.log();
        assert!(status.success(), "exit: {status:?}, output: {log}");
        log
    }
}

/// Clara's messages in Ann's chat that are mail alerts, oldest first.
fn alerts(tg: &FakeTelegram) -> Vec<String> {
    tg.bot_messages(ANN)
        .into_iter()
        .map(|m| m.text)
        .filter(|t| t.starts_with("📧"))
        .collect()
}

/// Waits (polling) until `check` holds; panics with `what` at the deadline.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + DEADLINE;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < until,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until an alert mentioning `subject` reached Ann's chat; returns it.
async fn alert_about(tg: &FakeTelegram, subject: &str) -> String {
    eventually(&format!("an alert about “{subject}”"), move || async move {
        alerts(tg).iter().any(|a| a.contains(subject))
    })
    .await;
    alerts(tg)
        .into_iter()
        .find(|a| a.contains(subject))
        .unwrap()
}

/// Waits until the running watcher has taken its first look at the account's
/// INBOX (read from the store, as `clara` does): mail that arrived before that
/// is old news and is never alerted.
async fn watcher_looked(db: &Path) {
    let store = Store::open(db).await.unwrap();
    let account = store.mail_accounts(None).await.unwrap()[0].account.id;
    eventually("the watcher looked at the INBOX", || {
        let store = store.clone();
        async move { store.mail_mark(account, "INBOX").await.unwrap().is_some() }
    })
    .await;
    store.close().await;
}

/// Every mail in the assistant's INBOX and whether it is `\Seen`, read in a
/// read-only session of the test's own.
async fn seen_flags(dovecot: &Dovecot) -> Vec<(u32, bool)> {
    let account = dovecot.account(UserId::new(), ASSISTANT);
    let (mut session, _) = imap::connect(&account, Duration::from_secs(10))
        .await
        .unwrap();
    imap::examine(&mut session, "INBOX").await.unwrap();
    let uids = imap::uid_search(&mut session, "ALL").await.unwrap();
    let fetched = imap::uid_fetch(&mut session, &uids, "(UID FLAGS)")
        .await
        .unwrap();
    imap::logout(session).await;
    let mut flags: Vec<(u32, bool)> = fetched.into_iter().map(|f| (f.uid, f.seen)).collect();
    flags.sort_unstable();
    flags
}

/// `clara schedule outbox --user … --json`, parsed.
async fn outbox(setup: &Setup) -> Vec<Value> {
    let out = run(
        setup
            .clara()
            .args(["schedule", "outbox", "--user", ANN_USER, "--json"]),
        "",
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_alerts_about_matching_mail_on_telegram_once_and_leaves_it_unread() {
    let mut dovecot = Dovecot::start();
    let port = dovecot.port().to_string();
    let (login, password) = ASSISTANT;
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup {
        data: dir.path().join("data"),
        cwd: dir.path().to_owned(),
        llm: FakeOpenAi::start().await,
        tg: FakeTelegram::start().await,
    };
    let db = setup.data.join("clara.db");
    let tg = &setup.tg;

    // 1–2. Clara runs; Ann says hi, so Clara knows her and her direct chat.
    let serving = setup.serve().await;
    let ann = FakeUser::new(ANN, "Ann");
    let chat = FakeChat::private(&ann);
    tg.send(UserMessage::text(&chat, &ann, "hi"));
    tg.wait_for("Clara's answer", |tg| {
        tg.bot_messages(ANN)
            .iter()
            .any(|m| m.text == "You said: hi")
    })
    .await;

    // 3. The operator connects Ann's mailbox (password on standard input)
    //    and a rule, while Clara runs.
    let add_args = [
        "add",
        "--user",
        ANN_USER,
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--security",
        "plain",
        "--username",
        login,
    ];
    let added = setup.email_ok(&add_args, &format!("{password}\n")).await;
    assert!(
        added.contains(
            "Signed in to assistant@example.test on 127.0.0.1: new mail arrives by IDLE."
        ),
        "{added}"
    );
    assert!(added.contains("Added mail account "), "{added}");
    assert!(!added.contains(password), "{added}");
    let rule = setup
        .email_ok(
            &[
                "rule",
                "add",
                "--user",
                ANN_USER,
                "--name",
                "bank",
                "--from",
                "*@bank.example",
            ],
            "",
        )
        .await;
    assert!(
        rule.starts_with("Added rule ") && rule.contains("(bank)"),
        "{rule}"
    );

    // The running Clara picks the account up by itself (no restart).
    watcher_looked(&db).await;

    // 4. A mail no rule picks, then one the bank rule picks: only the second
    //    is alerted (by the time it is, the first was long decided).
    dovecot.deliver(
        login,
        "Bob <bob@friends.example>",
        "Lunch on Friday?",
        "Pizza?",
    );
    dovecot.deliver(
        login,
        "Alice <alice@bank.example>",
        "Invoice 42 overdue",
        "Please pay.",
    );
    let first = alert_about(tg, "Invoice 42 overdue").await;
    assert!(first.contains("alice@bank.example"), "{first}");
    assert!(first.contains("bank"), "{first}");
    assert_eq!(alerts(tg), vec![first.clone()], "only the bank mail");
    assert!(
        tg.bot_messages(ANN)
            .iter()
            .all(|m| !m.text.contains("Lunch on Friday")),
        "the mail no rule picks is not alerted"
    );
    assert_eq!(
        seen_flags(&dovecot).await,
        vec![(1, false), (2, false)],
        "watching never marks mail read"
    );

    // 7. The alert went through the outbox, was sent, and is stored in
    //    Ann's conversation as Clara's message.
    let s = &setup;
    eventually("the alert's outbox row is sent", move || async move {
        outbox(s)
            .await
            .iter()
            .any(|r| r["kind"] == "alert" && r["status"] == "sent")
    })
    .await;
    let rows = outbox(&setup).await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0]["to"], format!("telegram:{ANN}"), "{rows:#?}");
    assert!(
        rows[0]["text"]
            .as_str()
            .unwrap()
            .contains("Invoice 42 overdue"),
        "{rows:#?}"
    );

    // 5. A restart repeats nothing; mail that arrives after it is alerted once.
    let first_log = serving.stop().await;
    let serving = setup.serve().await;
    dovecot.deliver(
        login,
        "Alice <alice@bank.example>",
        "Card statement",
        "Your statement is ready.",
    );
    let second = alert_about(tg, "Card statement").await;
    assert!(second.contains("alice@bank.example"), "{second}");
    assert_eq!(
        alerts(tg),
        vec![first.clone(), second.clone()],
        "exactly one new alert after the restart: the new mail's"
    );
    assert_eq!(
        seen_flags(&dovecot).await,
        vec![(1, false), (2, false), (3, false)]
    );

    // 6. The account is listed as watched by IDLE; a wrong password is one
    //    sentence and is never printed.
    eventually(
        "the account is listed as watching (IDLE)",
        move || async move {
            s.email_ok(&["list", "--user", ANN_USER], "")
                .await
                .contains("watching (IDLE)")
        },
    )
    .await;
    let listed = setup.email_ok(&["list"], "").await;
    assert!(
        listed.contains("assistant@example.test")
            && listed.contains(&format!("127.0.0.1:{port} (plain)"))
            && listed.contains("folders: INBOX"),
        "{listed}"
    );
    let wrong = "not-the-pass-9x7";
    let (ok, stdout, stderr) = setup.email(&add_args, &format!("{wrong}\n")).await;
    assert!(!ok, "a refused password is an error: {stdout}");
    assert_eq!(stderr.lines().count(), 1, "one sentence: {stderr}");
    assert!(stderr.starts_with("clara: "), "{stderr}");
    assert!(
        stderr.contains("refused the user name or password"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(wrong) && !stdout.contains(wrong),
        "{stderr}"
    );
    assert!(!stdout.contains("Added mail account"), "{stdout}");
    let accounts = setup.email_ok(&["list"], "").await;
    assert_eq!(accounts.lines().count(), 1, "nothing stored: {accounts}");

    // Adding the same mailbox again (a changed password, say) updates the
    // account rather than watching the mailbox twice: one alert per mail.
    let id = added
        .lines()
        .find_map(|l| l.strip_prefix("Added mail account "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    let again = setup.email_ok(&add_args, &format!("{password}\n")).await;
    assert!(
        again.contains(&format!(
            "Updated mail account {id} (assistant@example.test)."
        )),
        "{again}"
    );
    let accounts = setup.email_ok(&["list"], "").await;
    assert_eq!(accounts.lines().count(), 1, "one account: {accounts}");
    dovecot.deliver(
        login,
        "Alice <alice@bank.example>",
        "New payee added",
        "Was it you?",
    );
    let third = alert_about(tg, "New payee added").await;
    assert_eq!(alerts(tg), vec![first.clone(), second.clone(), third]);
    assert!(
        seen_flags(&dovecot).await.iter().all(|(_, seen)| !seen),
        "still nothing marked read"
    );

    let second_log = serving.stop().await;
    for log in [&first_log, &second_log] {
        assert!(log.contains("e-mail monitoring on"), "{log}");
        assert!(!log.contains(password), "the mail password is never logged");
        assert!(!log.contains(wrong));
        assert!(!log.contains(SECRET));
        assert!(!log.contains(tg.token()));
    }
    assert!(
        second_log.contains("watching a mail folder"),
        "{second_log}"
    );

    // The alerts are Clara's messages in Ann's direct conversation.
    let store = Store::open(&db).await.unwrap();
    let user = store
        .find_user("telegram", &ANN.to_string())
        .await
        .unwrap()
        .unwrap();
    let (conversation, _) = store
        .latest_direct_conversation(user)
        .await
        .unwrap()
        .unwrap();
    let said: Vec<String> = store
        .recent_messages(conversation, 0, 100, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.role == Role::Assistant)
        .map(|m| m.content)
        .collect();
    assert!(said.contains(&first), "{said:#?}");
    assert!(said.contains(&second), "{said:#?}");
    store.close().await;

    dovecot.stop();
}
