//! `clara schedule …`: an operator makes, lists and cancels people's reminders
//! and scheduled tasks, sets each person's time zone, where their alerts go and
//! their quiet hours, and reads the outbox to see what went out (or why not).
//!
//! Everything goes through the runtime's [`ScheduleBook`], as the `schedule__*`
//! tools and the web page do, so all three agree on time zones and wording.
//! People and conversations are looked up, never created: `--user` is a user id
//! or `platform:platform_user_id` (e.g. `telegram:123`), `--to` a conversation
//! as `platform:channel` that Clara already has. Nothing here needs a model,
//! and nothing needs a restart: a running Clara reads the store every few
//! seconds, so what is added here fires on time.

use crate::settings::Resolved;
use anyhow::{Result, anyhow, bail};
use clara_core::schedule::{QuietHours, describe_instant, parse_time_zone};
use clara_core::{ConversationId, ConversationRef, UserId};
use clara_runtime::proactive::zone_or_utc;
use clara_runtime::{
    ProactiveSignals, ScheduleBook, ScheduleBookError, ScheduleRequest, ScheduleView, SystemClock,
};
use clara_store::{ProactiveRecord, ProactiveStatus, ScheduleKind, ScheduleRecord, Store};
use serde::Serialize;
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;

/// What `--alerts-to auto` means, in words.
const LAST_DIRECT: &str = "the direct conversation they last wrote in";

/// `clara schedule …`
#[derive(clap::Args, Debug)]
#[command(
    after_help = "A running Clara reads the store every few seconds: what is added \
                        or removed here takes effect without a restart."
)]
pub struct ScheduleArgs {
    #[command(subcommand)]
    command: ScheduleCommand,
}

#[derive(clap::Subcommand, Debug)]
enum ScheduleCommand {
    /// The reminders and tasks that will still fire, oldest first.
    List {
        /// Only this person's: their user id, or platform:platform_user_id (e.g. cli:alice).
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// Include the ones that ended or were cancelled.
        #[arg(long)]
        all: bool,
        /// JSON for scripts instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Make a reminder (Clara says its text) or a task (Clara answers its prompt
    /// with the person's tools and memories). A running Clara fires it on time,
    /// without a restart.
    #[command(group = clap::ArgGroup::new("what").required(true).args(["remind", "task"]))]
    Add {
        /// Whose it is: their user id, or platform:platform_user_id (e.g. cli:alice).
        #[arg(long, value_name = "USER")]
        user: String,
        /// A reminder with this text.
        #[arg(long, value_name = "TEXT")]
        remind: Option<String>,
        /// A scheduled task with this prompt.
        #[arg(long, value_name = "PROMPT")]
        task: Option<String>,
        /// When: "in 10 minutes", "tomorrow at 9", "2026-12-08 09:00", "every day
        /// at 7", "every weekday at 7", "every mon,wed at 8:30", "monthly on 1 at
        /// 9", "every 15 minutes".
        #[arg(long, value_name = "WHEN")]
        when: String,
        /// The IANA zone of local times (e.g. Europe/Berlin); remembered as the
        /// person's when they had none. Needed once for local times.
        #[arg(long, value_name = "ZONE")]
        time_zone: Option<String>,
        /// Deliver it in this conversation (platform:channel, one Clara already
        /// has); default: the direct conversation the person last wrote in.
        #[arg(long, value_name = "PLATFORM:CHANNEL")]
        to: Option<String>,
        /// Print the new schedule as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a reminder or task by its id (the first digits are enough).
    Remove {
        /// The id, as `clara schedule list` shows it.
        id: String,
        /// Only if it is this person's.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
    },
    /// Show a person's time zone, where their alerts go and their quiet hours;
    /// with flags, change them first.
    Settings {
        /// The person: their user id, or platform:platform_user_id (e.g. cli:alice).
        #[arg(long, value_name = "USER")]
        user: String,
        /// Their IANA time zone, e.g. Europe/Berlin.
        #[arg(long, value_name = "ZONE")]
        time_zone: Option<String>,
        /// Where alerts go: a conversation as platform:channel, or `auto` for
        /// the direct conversation they last wrote in.
        #[arg(long, value_name = "PLATFORM:CHANNEL|auto")]
        alerts_to: Option<String>,
        /// When alerts wait (in their zone), e.g. 22:00-07:00; `off` for none.
        /// Reminders and tasks come at the time asked for regardless.
        #[arg(long, value_name = "HH:MM-HH:MM|off")]
        quiet_hours: Option<String>,
        /// JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The latest messages Clara started (alerts, reminders, tasks): whether
    /// each is pending, sending, sent or failed, and the last error.
    Outbox {
        /// Only this person's.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// At most this many, newest first.
        #[arg(long, value_name = "N", default_value_t = 20)]
        limit: u32,
        /// JSON for scripts instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Runs one `clara schedule` command.
pub async fn run(resolved: &Resolved, args: ScheduleArgs) -> Result<ExitCode> {
    let store = resolved.open_store().await?;
    // This process runs no scheduler: its signals wake nothing, and the
    // running Clara finds the change at its next look at the store.
    let book = ScheduleBook::new(
        store.clone(),
        Arc::new(SystemClock),
        Arc::new(ProactiveSignals::default()),
    );
    let result = execute(&store, &book, args.command).await;
    store.close().await;
    result.map(|()| ExitCode::SUCCESS)
}

async fn execute(store: &Store, book: &ScheduleBook, command: ScheduleCommand) -> Result<()> {
    match command {
        ScheduleCommand::List { user, all, json } => {
            let person = match &user {
                Some(given) => Some(find_person(store, given).await?),
                None => None,
            };
            let schedules = book.list(person.as_ref().map(|p| p.id), all).await?;
            let names = Names::lookup(store, schedules.iter().map(|s| Some(s.user))).await?;
            if json {
                let rows: Vec<ScheduleJson> = schedules
                    .iter()
                    .map(|s| ScheduleJson::new(book, s, &names))
                    .collect();
                print_json(&rows)?;
            } else if schedules.is_empty() {
                match &person {
                    Some(p) => println!("{} has no reminders or scheduled tasks.", p.name),
                    None => println!("No reminders or scheduled tasks."),
                }
            } else {
                print_schedules(book, &schedules, &names);
            }
        }
        ScheduleCommand::Add {
            user,
            remind,
            task,
            when,
            time_zone,
            to,
            json,
        } => {
            let person = find_person(store, &user).await?;
            let (kind, text) = match (remind, task) {
                (Some(text), None) => (ScheduleKind::Reminder, text),
                (None, Some(prompt)) => (ScheduleKind::Task, prompt),
                // clap's group admits exactly one.
                _ => bail!("give either --remind TEXT or --task PROMPT"),
            };
            let (conversation, _) = match &to {
                Some(to) => find_conversation(store, to).await?,
                None => store
                    .latest_direct_conversation(person.id)
                    .await?
                    .ok_or_else(|| {
                        anyhow!(
                            "{} has no direct conversation with Clara yet: pass --to platform:channel of a conversation Clara has",
                            person.name
                        )
                    })?,
            };
            let zone_before = store.person_settings(person.id).await?.time_zone;
            let schedule = book
                .add(ScheduleRequest {
                    user: person.id,
                    person: &person.name,
                    conversation,
                    kind,
                    when: &when,
                    text: &text,
                    time_zone: time_zone.as_deref(),
                })
                .await
                .map_err(|e| explain(e, &person))?;
            let view = book.view(&schedule);
            if json {
                let names = Names(HashMap::from([(person.id, person.name.clone())]));
                print_json(&ScheduleJson::new(book, &schedule, &names))?;
                return Ok(());
            }
            println!(
                "Added {} {} for {}: {}",
                view.kind,
                view.id,
                person.name,
                one_line(&view.text, 200)
            );
            println!("when: {}", view.when);
            if let Some(next) = &view.next {
                println!("next: {next} ({})", view.time_zone);
            }
            println!("delivered to: {}", view.delivered_to);
            if zone_before.is_none()
                && let Some(zone) = store.person_settings(person.id).await?.time_zone
            {
                println!("{}'s time zone is now {zone}.", person.name);
            }
            println!("A running Clara fires it on time; no restart is needed.");
        }
        ScheduleCommand::Remove { id, user } => {
            let person = match &user {
                Some(given) => Some(find_person(store, given).await?),
                None => None,
            };
            let schedule = match book.cancel(person.as_ref().map(|p| p.id), &id).await {
                Ok(schedule) => schedule,
                Err(ScheduleBookError::NotFound(_)) => {
                    let whose = person
                        .as_ref()
                        .map(|p| format!(" of {}", p.name))
                        .unwrap_or_default();
                    bail!(
                        "there is no active reminder or task {:?}{whose}; `clara schedule list` shows the ids",
                        id.trim()
                    )
                }
                Err(ScheduleBookError::Ambiguous(_)) => bail!(
                    "{:?} matches several reminders or tasks; give more of the id",
                    id.trim()
                ),
                Err(other) => return Err(other.into()),
            };
            let names = Names::lookup(store, [Some(schedule.user)]).await?;
            println!(
                "Cancelled {} {} of {}: {}",
                schedule.kind.as_str(),
                schedule.id.short(),
                names.name(Some(schedule.user)),
                one_line(&schedule.body, 200)
            );
        }
        ScheduleCommand::Settings {
            user,
            time_zone,
            alerts_to,
            quiet_hours,
            json,
        } => {
            let person = find_person(store, &user).await?;
            let change = SettingsChange::read(store, time_zone, alerts_to, quiet_hours).await?;
            let changed = change.apply(book, person.id).await?;
            show_settings(store, book, &person, changed, json).await?;
        }
        ScheduleCommand::Outbox { user, limit, json } => {
            let person = match &user {
                Some(given) => Some(find_person(store, given).await?),
                None => None,
            };
            let rows = store
                .recent_proactive(person.as_ref().map(|p| p.id), limit.max(1))
                .await?;
            let names = Names::lookup(store, rows.iter().map(|r| r.user)).await?;
            if json {
                let rows: Vec<OutboxJson> =
                    rows.iter().map(|r| OutboxJson::new(r, &names)).collect();
                print_json(&rows)?;
            } else if rows.is_empty() {
                match &person {
                    Some(p) => println!("Clara has started no messages to {} yet.", p.name),
                    None => println!("The outbox is empty: Clara has started no messages yet."),
                }
            } else {
                print_outbox(&rows, &names);
            }
        }
    }
    Ok(())
}

/// A person the flags name.
struct Person {
    id: UserId,
    /// Their display name (for sentences).
    name: String,
}

/// A person by user id, or by `platform:platform_user_id`; never created.
async fn find_person(store: &Store, given: &str) -> Result<Person> {
    let id = crate::memory_cli::find_user(store, given).await?;
    match store.user_display_name(id).await? {
        Some(name) if !name.trim().is_empty() => Ok(Person { id, name }),
        _ => Ok(Person {
            id,
            name: given.trim().to_owned(),
        }),
    }
}

/// A conversation Clara has, by `platform:channel`; never created.
async fn find_conversation(
    store: &Store,
    given: &str,
) -> Result<(ConversationId, ConversationRef)> {
    let given = given.trim();
    let Some((platform, channel)) = given
        .split_once(':')
        .filter(|(p, c)| !p.is_empty() && !c.is_empty())
    else {
        bail!(
            "{given:?} is not a conversation: write it as platform:channel, e.g. telegram:123456"
        );
    };
    store
        .find_conversation(platform, channel)
        .await?
        .ok_or_else(|| {
            anyhow!(
                "Clara has no conversation {channel:?} on {platform:?}: name one she has talked in"
            )
        })
}

/// A book's error in the operator's words (the book's own are for the model).
fn explain(error: ScheduleBookError, person: &Person) -> anyhow::Error {
    match error {
        ScheduleBookError::NoTimeZone(_) => anyhow!(
            "{}'s time zone is not known yet: pass --time-zone, e.g. --time-zone Europe/Berlin (it is remembered for their next ones)",
            person.name
        ),
        other => other.into(),
    }
}

/// What `clara schedule settings` was asked to change, checked before any of
/// it is written: a bad flag changes nothing.
struct SettingsChange {
    time_zone: Option<String>,
    alerts_to: Option<AlertsTo>,
    quiet_hours: Option<String>,
}

/// Where alerts go.
enum AlertsTo {
    /// The direct conversation the person last wrote in.
    Auto,
    /// This conversation.
    Conversation(ConversationId),
}

impl SettingsChange {
    async fn read(
        store: &Store,
        time_zone: Option<String>,
        alerts_to: Option<String>,
        quiet_hours: Option<String>,
    ) -> Result<Self> {
        if let Some(zone) = &time_zone {
            parse_time_zone(zone)?;
        }
        let alerts_to = match alerts_to.as_deref().map(str::trim) {
            None => None,
            Some(auto) if auto.eq_ignore_ascii_case("auto") => Some(AlertsTo::Auto),
            Some(to) => Some(AlertsTo::Conversation(
                find_conversation(store, to).await?.0,
            )),
        };
        if let Some(quiet) = quiet_hours.as_deref().map(str::trim)
            && !is_off(quiet)
        {
            QuietHours::parse(quiet)?;
        }
        Ok(Self {
            time_zone,
            alerts_to,
            quiet_hours,
        })
    }

    /// Writes the change; returns whether there was one.
    async fn apply(self, book: &ScheduleBook, user: UserId) -> Result<bool> {
        let changed =
            self.time_zone.is_some() || self.alerts_to.is_some() || self.quiet_hours.is_some();
        if let Some(zone) = &self.time_zone {
            book.set_time_zone(user, zone).await?;
        }
        let conversation = match self.alerts_to {
            Some(AlertsTo::Conversation(c)) => Some(c),
            _ => None,
        };
        if conversation.is_some() || self.quiet_hours.is_some() {
            book.set_alerts(user, conversation, self.quiet_hours.as_deref())
                .await?;
        }
        if let Some(AlertsTo::Auto) = self.alerts_to {
            book.reset_alerts_to(user, None).await?;
        }
        Ok(changed)
    }
}

fn is_off(text: &str) -> bool {
    text.eq_ignore_ascii_case("off") || text.eq_ignore_ascii_case("none")
}

/// A person's settings as `--json` prints them.
#[derive(Serialize)]
struct SettingsJson {
    user: String,
    person: String,
    time_zone: Option<String>,
    /// A conversation (`telegram:123`), or none for the last direct one.
    alerts_to: Option<String>,
    /// Where that is now, when it is the last direct one.
    alerts_now_to: Option<String>,
    quiet_hours: Option<String>,
}

async fn show_settings(
    store: &Store,
    book: &ScheduleBook,
    person: &Person,
    changed: bool,
    json: bool,
) -> Result<()> {
    let view = book.alert_settings(person.id).await?;
    let chosen = store.person_settings(person.id).await?.alerts_to.is_some();
    let last_direct = if chosen {
        None
    } else {
        store
            .latest_direct_conversation(person.id)
            .await?
            .map(|(_, c)| conversation_name(&c))
    };
    if json {
        return print_json(&SettingsJson {
            user: person.id.to_string(),
            person: person.name.clone(),
            time_zone: view.time_zone,
            alerts_to: chosen.then_some(view.alerts_to),
            alerts_now_to: last_direct,
            quiet_hours: view.quiet_hours,
        });
    }
    if changed {
        println!("Updated {}'s settings.", person.name);
    }
    println!("person:       {} ({})", person.name, person.id);
    match &view.time_zone {
        Some(zone) => println!("time zone:    {zone}"),
        None => println!(
            "time zone:    not set (local times like \"tomorrow at 9\" need one: --time-zone)"
        ),
    }
    let alerts = match (chosen, last_direct) {
        (true, _) => view.alerts_to,
        (false, Some(now)) => format!("{LAST_DIRECT} (now {now})"),
        (false, None) => format!("{LAST_DIRECT} (none yet)"),
    };
    println!("alerts go to: {alerts}");
    match (&view.quiet_hours, &view.time_zone) {
        (Some(quiet), Some(_)) => println!("quiet hours:  {quiet}"),
        (Some(quiet), None) => {
            println!("quiet hours:  {quiet} (read in UTC until a time zone is set)")
        }
        (None, _) => println!("quiet hours:  none"),
    }
    Ok(())
}

/// People's display names, looked up once each.
struct Names(HashMap<UserId, String>);

impl Names {
    async fn lookup(
        store: &Store,
        users: impl IntoIterator<Item = Option<UserId>>,
    ) -> Result<Self> {
        let mut names = HashMap::new();
        for user in users.into_iter().flatten() {
            if let std::collections::hash_map::Entry::Vacant(slot) = names.entry(user) {
                let name = store
                    .user_display_name(user)
                    .await?
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or_else(|| user.to_string());
                slot.insert(name);
            }
        }
        Ok(Self(names))
    }

    /// The name of `user`; `-` for a message that is nobody's.
    fn name(&self, user: Option<UserId>) -> String {
        match user {
            Some(user) => self
                .0
                .get(&user)
                .cloned()
                .unwrap_or_else(|| user.to_string()),
            None => "-".to_owned(),
        }
    }
}

/// A schedule as `--json` prints it: the book's view, with whose it is.
#[derive(Serialize)]
struct ScheduleJson {
    /// The whole id (the view's is the short one).
    uuid: String,
    user: String,
    person: String,
    #[serde(flatten)]
    view: ScheduleView,
    fired: u32,
    last_fired_at_ms: Option<i64>,
    cancelled_at_ms: Option<i64>,
    created_at_ms: i64,
}

impl ScheduleJson {
    fn new(book: &ScheduleBook, s: &ScheduleRecord, names: &Names) -> Self {
        Self {
            uuid: s.id.to_string(),
            user: s.user.to_string(),
            person: names.name(Some(s.user)),
            view: book.view(s),
            fired: s.fired,
            last_fired_at_ms: s.last_fired_at_ms,
            cancelled_at_ms: s.cancelled_at_ms,
            created_at_ms: s.created_at_ms,
        }
    }
}

/// An outbox row as `--json` prints it.
#[derive(Serialize)]
struct OutboxJson {
    key: String,
    user: Option<String>,
    person: String,
    kind: &'static str,
    status: &'static str,
    to: String,
    text: String,
    note: Option<String>,
    due_at_ms: i64,
    sent_at_ms: Option<i64>,
    attempts: u32,
    last_error: Option<String>,
}

impl OutboxJson {
    fn new(r: &ProactiveRecord, names: &Names) -> Self {
        Self {
            key: r.key.clone(),
            user: r.user.map(|u| u.to_string()),
            person: names.name(r.user),
            kind: r.kind.as_str(),
            status: status_name(r.status),
            to: conversation_name(&r.conversation_ref),
            text: r.body.clone(),
            note: r.note.clone(),
            due_at_ms: r.due_at_ms,
            sent_at_ms: r.sent_at_ms,
            attempts: r.attempts,
            last_error: r.last_error.clone(),
        }
    }
}

fn status_name(status: ProactiveStatus) -> &'static str {
    match status {
        ProactiveStatus::Pending => "pending",
        ProactiveStatus::Sending => "sending",
        ProactiveStatus::Sent => "sent",
        ProactiveStatus::Failed => "failed",
    }
}

fn conversation_name(c: &ConversationRef) -> String {
    format!("{}:{}", c.platform, c.channel)
}

fn print_json<T: Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `text` on one line, cut to `width` characters with an ellipsis.
fn one_line(text: &str, width: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= width {
        return flat;
    }
    let mut cut: String = flat.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// `2026-11-30 05:13` (UTC).
fn minute(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || "?".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M").to_string(),
    )
}

/// Rows under a header, each column as wide as its widest cell; the last
/// column is not padded.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                let pad = widths[i].saturating_sub(cell.chars().count());
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

fn print_schedules(book: &ScheduleBook, schedules: &[ScheduleRecord], names: &Names) {
    let rows: Vec<Vec<String>> = schedules
        .iter()
        .map(|s| {
            let view = book.view(s);
            let next = match (&view.next, s.cancelled_at_ms) {
                (Some(next), _) => format!("{next} ({})", view.time_zone),
                (None, Some(at)) => {
                    let tz = zone_or_utc(Some(&s.time_zone));
                    format!("cancelled {}", describe_instant(at, tz))
                }
                (None, None) => "ended".to_owned(),
            };
            vec![
                view.id,
                names.name(Some(s.user)),
                view.kind.to_owned(),
                view.when,
                next,
                view.delivered_to,
                one_line(&view.text, 60),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "ID",
                "PERSON",
                "KIND",
                "WHEN",
                "NEXT",
                "DELIVERED TO",
                "TEXT"
            ],
            &rows
        )
    );
}

fn print_outbox(rows: &[ProactiveRecord], names: &Names) {
    let mut out = String::new();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                status_name(r.status).to_owned(),
                r.kind.as_str().to_owned(),
                names.name(r.user),
                conversation_name(&r.conversation_ref),
                minute(r.due_at_ms),
                r.sent_at_ms.map_or_else(|| "-".to_owned(), minute),
                r.attempts.to_string(),
                one_line(&r.body, 60),
            ]
        })
        .collect();
    let header = [
        "STATUS",
        "KIND",
        "PERSON",
        "TO",
        "DUE (UTC)",
        "SENT (UTC)",
        "TRIES",
        "TEXT",
    ];
    let text = table(&header, &cells);
    let mut lines = text.lines();
    if let Some(head) = lines.next() {
        out.push_str(head);
        out.push('\n');
    }
    // Each row, then why its last attempt failed, beneath it.
    for (line, r) in lines.zip(rows) {
        out.push_str(line);
        out.push('\n');
        if let Some(error) = &r.last_error {
            out.push_str(&format!("    last error: {}\n", one_line(error, 200)));
        }
    }
    print!("{out}");
}
