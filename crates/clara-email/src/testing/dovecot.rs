//! A private Dovecot per test: its own directories under a temporary
//! directory, passwd-file users, Maildir, plain IMAP on a free port of
//! 127.0.0.1 (`ssl = no`), run in the foreground as a child so the test can
//! stop, restart and kick it. Mail arrives through `dovecot-lda`, as from an
//! MTA. Missing Dovecot fails the test (install it with `scripts/dovecot.sh`).
//!
//! A harness: it panics (failing the test) on anything unexpected rather than
//! returning errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::model::{AccountId, MailAccount, Security};
use clara_core::{Secret, UserId};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DOVECOT: &str = "/usr/sbin/dovecot";
const LDA: &str = "/usr/lib/dovecot/dovecot-lda";
const DOVEADM: &str = "/usr/bin/doveadm";

/// The users every test server has: (login, password).
pub const ASSISTANT: (&str, &str) = ("assistant@example.test", "secret-pass-1");
/// A second user, for tests that need two mailboxes.
pub const OTHER: (&str, &str) = ("other@example.test", "secret-pass-2");

/// A running private Dovecot; stopped when dropped.
pub struct Dovecot {
    dir: tempfile::TempDir,
    conf: PathBuf,
    port: u16,
    child: Option<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Dovecot {
    /// Starts a fresh server and waits until it accepts connections.
    pub fn start() -> Self {
        for tool in [DOVECOT, LDA, DOVEADM] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: Dovecot is needed for these tests; install it with scripts/dovecot.sh"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let me = std::fs::metadata(root).unwrap();
        let as_root = me.uid() == 0;
        // Dovecot refuses to give a mailbox to root and to run its login
        // processes as root: as root, the mail belongs to `nobody` and the
        // package's dovecot/dovenull users run the rest; otherwise everything
        // runs as the current user.
        let (uid, gid) = if as_root {
            (65534, 65534)
        } else {
            (me.uid(), me.gid())
        };
        for sub in ["base", "state", "log", "mail"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        if as_root {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::os::unix::fs::chown(root.join("mail"), Some(uid), Some(gid)).unwrap();
        }
        let users = root.join("users");
        let mut lines = String::new();
        for (user, password) in [ASSISTANT, OTHER] {
            let home = root.join("mail").join(user);
            lines.push_str(&format!(
                "{user}:{{PLAIN}}{password}:{uid}:{gid}::{}::\n",
                home.display()
            ));
        }
        std::fs::write(&users, lines).unwrap();
        let identity = if as_root {
            String::new()
        } else {
            let name = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
                .unwrap()
                .trim()
                .to_owned();
            let group = String::from_utf8(Command::new("id").arg("-gn").output().unwrap().stdout)
                .unwrap()
                .trim()
                .to_owned();
            format!(
                "default_internal_user = {name}\ndefault_internal_group = {group}\ndefault_login_user = {name}\n"
            )
        };
        let port = free_port();
        let conf = root.join("dovecot.conf");
        let r = root.display();
        std::fs::write(
            &conf,
            format!(
                r#"base_dir = {r}/base
state_dir = {r}/state
instance_name = clara-test-{port}
log_path = {r}/log/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:~/Maildir
{identity}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {users}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"#,
                users = users.display()
            ),
        )
        .unwrap();
        let mut server = Self {
            dir,
            conf,
            port,
            child: None,
        };
        server.run();
        server
    }

    fn run(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("log").join("stdout"))
            .unwrap();
        let child = Command::new(DOVECOT)
            .arg("-F")
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < until,
                "Dovecot did not listen on port {} within 20 s; log:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The plain IMAP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Dovecot's log so far.
    pub fn log(&self) -> String {
        let dir = self.dir.path().join("log");
        let mut text = std::fs::read_to_string(dir.join("dovecot.log")).unwrap_or_default();
        text.push_str(&std::fs::read_to_string(dir.join("stdout")).unwrap_or_default());
        text
    }

    /// An account of `user` on this server for `person` (plain, IDLE allowed).
    pub fn account(&self, person: UserId, user: (&str, &str)) -> MailAccount {
        MailAccount {
            id: AccountId::new(),
            user: person,
            label: user.0.to_owned(),
            host: "127.0.0.1".into(),
            port: self.port,
            security: Security::Plain,
            username: user.0.to_owned(),
            password: Secret::new(user.1),
            folders: vec!["INBOX".into()],
            use_idle: true,
        }
    }

    /// Delivers a mail to `user` as an MTA would.
    pub fn deliver(&self, user: &str, from: &str, subject: &str, body: &str) {
        let address = from
            .rsplit_once('<')
            .map_or(from, |(_, a)| a.trim_end_matches('>'));
        let raw = format!(
            "From: {from}\r\nTo: {user}\r\nSubject: {subject}\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{}@example.test>\r\n\r\n{body}\r\n",
            uuid::Uuid::new_v4()
        );
        self.deliver_raw(user, address, &raw);
    }

    /// Delivers `raw` (a whole message) to `user`, envelope sender `from`.
    pub fn deliver_raw(&self, user: &str, from: &str, raw: &str) {
        let mut child = Command::new(LDA)
            .arg("-c")
            .arg(&self.conf)
            .arg("-d")
            .arg(user)
            .arg("-f")
            .arg(from)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(raw.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "dovecot-lda failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Drops every IMAP connection of `user` (`doveadm kick`).
    pub fn kick(&self, user: &str) {
        let out = Command::new(DOVEADM)
            .arg("-c")
            .arg(&self.conf)
            .arg("kick")
            .arg(user)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "doveadm kick failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server (SIGTERM to its master, then waits).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM lets the master stop its children too; SIGKILL would
            // leave them running.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let until = Instant::now() + Duration::from_secs(10);
            while Instant::now() < until {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops and starts again, same port and mail.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}
