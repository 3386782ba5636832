//! `/api/schedules` over real sockets: a person's reminders, tasks and alert
//! settings (each person's own only), the book's sentences as 400s, and a
//! reminder made here reaching the page's open tab when it fires — and staying
//! in the conversation's history for the next visit.

use crate::http_support::{Server, read_sse};
use clara_gateway::http::HttpConfig;
use clara_runtime::{ManualClock, ProactiveConfig, ProactiveDelivery, Scheduler};
use clara_testkit::FakeReply;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;

const KEY: &str = "sk-clara-schedules";

/// A Clara off loopback with an API key: requests name their person.
async fn keyed_server() -> Server {
    Server::start_on("0.0.0.0:0", HttpConfig::new(false).with_api_key(KEY)).await
}

/// A request as `person`, with the key.
fn as_person(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    person: &str,
) -> reqwest::RequestBuilder {
    server
        .client()
        .request(method, format!("{}{path}", server.url))
        .bearer_auth(KEY)
        .header("x-clara-user", person)
}

async fn answer(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn list(server: &Server, person: &str) -> Value {
    let (status, body) = answer(as_person(
        server,
        reqwest::Method::GET,
        "/api/schedules",
        person,
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn ids(listing: &Value) -> Vec<String> {
    listing["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn reminders_and_tasks_round_trip_for_their_person_only() {
    let server = keyed_server().await;
    use reqwest::Method;

    // No key, no schedules.
    let status = server
        .client()
        .get(format!("{}/api/schedules", server.url))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Someone Clara has never met has nothing, and is not made by looking.
    let empty = list(&server, "ann").await;
    assert_eq!(empty["data"], json!([]));
    assert_eq!(empty["settings"]["time_zone"], Value::Null);
    assert_eq!(empty["settings"]["alerts_here"], false);
    assert!(
        server
            .store
            .find_user("web", "ann")
            .await
            .unwrap()
            .is_none()
    );

    // A reminder with a zone; the zone becomes Ann's.
    let (status, reminder) = answer(
        as_person(&server, Method::POST, "/api/schedules", "ann").json(&json!({
            "kind": "reminder", "text": "Water the plants", "when": "tomorrow at 9",
            "time_zone": "Europe/Berlin"
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{reminder}");
    assert_eq!(reminder["kind"], "reminder");
    assert_eq!(reminder["text"], "Water the plants");
    assert_eq!(reminder["time_zone"], "Europe/Berlin");
    assert_eq!(reminder["delivered_to"], "web:page:ann");
    assert_eq!(reminder["active"], true);
    assert!(
        reminder["when"].as_str().unwrap().contains("09:00"),
        "{reminder}"
    );
    assert!(
        reminder["next"].as_str().unwrap().contains("09:00"),
        "{reminder}"
    );
    assert!(reminder["next_at_ms"].as_i64().is_some());
    let reminder_id = reminder["id"].as_str().unwrap().to_owned();
    assert_eq!(reminder_id.len(), 8);

    // A task without a zone takes the one she now has.
    let (status, task) = answer(
        as_person(&server, Method::POST, "/api/schedules", "ann").json(&json!({
            "kind": "task", "text": "Tell me the weather", "when": "every weekday at 7"
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    assert_eq!(task["kind"], "task");
    assert_eq!(task["time_zone"], "Europe/Berlin");
    let task_id = task["id"].as_str().unwrap().to_owned();

    let ann = list(&server, "ann").await;
    assert_eq!(ids(&ann), [reminder_id.clone(), task_id.clone()]);
    assert_eq!(ann["object"], "list");
    assert_eq!(ann["settings"]["time_zone"], "Europe/Berlin");
    assert_eq!(ann["settings"]["alerts_here"], false);

    // Bob sees none of them and cannot remove them.
    let bob = list(&server, "bob").await;
    assert_eq!(bob["data"], json!([]));
    let (status, e) = answer(as_person(
        &server,
        Method::DELETE,
        &format!("/api/schedules/{reminder_id}"),
        "bob",
    ))
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{e}");
    assert_eq!(e["error"]["code"], "not_found");
    // Even once Bob is known, with a schedule of his own.
    let (status, _) = answer(
        as_person(&server, Method::POST, "/api/schedules", "bob").json(&json!({
            "kind": "reminder", "text": "Call mum", "when": "in 20 minutes"
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = answer(as_person(
        &server,
        Method::DELETE,
        &format!("/api/schedules/{task_id}"),
        "bob",
    ))
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(ids(&list(&server, "ann").await).len(), 2);
    assert_eq!(ids(&list(&server, "bob").await).len(), 1);

    // Wrong times, kinds and zones are 400s with the book's sentence.
    let (status, e) = answer(
        as_person(&server, Method::POST, "/api/schedules", "ann").json(&json!({
            "kind": "reminder", "text": "Water the plants", "when": "whenever"
        })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"]["param"], "when");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Could not read \"whenever\" as a time"),
        "{e}"
    );
    let (status, e) = answer(
        as_person(&server, Method::POST, "/api/schedules", "ann").json(&json!({
            "kind": "alarm", "text": "x", "when": "in 5 minutes"
        })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"]["param"], "kind");
    let (status, e) = answer(
        as_person(&server, Method::POST, "/api/schedules", "ann").json(&json!({
            "kind": "reminder", "text": "   ", "when": "in 5 minutes"
        })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"]["message"], "The reminder's text is empty");
    let (status, e) = answer(
        as_person(&server, Method::POST, "/api/schedules", "ann").json(&json!({
            "kind": "reminder", "text": "x", "when": "tomorrow at 9", "time_zone": "Mars/Olympus"
        })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"]["param"], "time_zone");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Mars/Olympus")
    );
    // A local time for someone whose zone is unknown asks for it.
    let (status, e) = answer(
        as_person(&server, Method::POST, "/api/schedules", "cleo").json(&json!({
            "kind": "reminder", "text": "x", "when": "tomorrow at 9"
        })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"]["code"], "time_zone_unknown");
    assert_eq!(e["error"]["param"], "time_zone");

    // Settings: quiet hours and alerts to her page.
    let (status, settings) = answer(
        as_person(&server, Method::PUT, "/api/schedules/settings", "ann")
            .json(&json!({ "quiet_hours": "22:00-07:00", "alerts_here": true })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    assert_eq!(settings["quiet_hours"], "22:00–07:00");
    assert_eq!(settings["alerts_here"], true);
    assert_eq!(settings["alerts_to"], "web:page:ann");
    assert_eq!(settings["time_zone"], "Europe/Berlin");
    // A wrong field changes nothing, not even the right ones beside it.
    let (status, e) = answer(
        as_person(&server, Method::PUT, "/api/schedules/settings", "ann")
            .json(&json!({ "time_zone": "America/New_York", "quiet_hours": "after dinner" })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"]["param"], "quiet_hours");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("after dinner")
    );
    let (status, e) = answer(
        as_person(&server, Method::PUT, "/api/schedules/settings", "ann")
            .json(&json!({ "time_zone": "Mars/Olympus" })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"]["param"], "time_zone");
    let ann = list(&server, "ann").await;
    assert_eq!(ann["settings"]["time_zone"], "Europe/Berlin");
    assert_eq!(ann["settings"]["quiet_hours"], "22:00–07:00");
    assert_eq!(ann["settings"]["alerts_here"], true);
    // Bob's settings are his own.
    assert_eq!(list(&server, "bob").await["settings"]["alerts_here"], false);
    // Off again.
    let (status, settings) = answer(
        as_person(&server, Method::PUT, "/api/schedules/settings", "ann").json(
            &json!({ "time_zone": "America/New_York", "quiet_hours": "off", "alerts_here": false }),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    assert_eq!(settings["time_zone"], "America/New_York");
    assert_eq!(settings["quiet_hours"], Value::Null);
    assert_eq!(settings["alerts_here"], false);
    let ann_user = server.store.find_user("web", "ann").await.unwrap().unwrap();
    assert_eq!(
        server
            .store
            .person_settings(ann_user)
            .await
            .unwrap()
            .alerts_to,
        None
    );

    // Ann removes her reminder; a second time it is gone.
    let (status, removed) = answer(as_person(
        &server,
        Method::DELETE,
        &format!("/api/schedules/{reminder_id}"),
        "ann",
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(
        removed,
        json!({ "id": reminder_id, "object": "schedule", "cancelled": true })
    );
    assert_eq!(ids(&list(&server, "ann").await), [task_id]);
    let (status, _) = answer(as_person(
        &server,
        Method::DELETE,
        &format!("/api/schedules/{reminder_id}"),
        "ann",
    ))
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.shutdown().await;
}

#[tokio::test]
async fn the_page_reaches_its_own_persons_schedules_with_its_csrf_token() {
    let server = Server::start(HttpConfig::new(true)).await;
    let (cookie, csrf) = server.page_login().await;
    let client = server.client();
    let url = format!("{}/api/schedules", server.url);
    let body = json!({ "kind": "reminder", "text": "Stretch", "when": "in 20 minutes" });

    let refused = client
        .post(&url)
        .header("cookie", &cookie)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // With the login, naming someone else still speaks for the page's person.
    let made = client
        .post(&url)
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .header("x-clara-user", "mallory")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), StatusCode::CREATED);
    let made: Value = made.json().await.unwrap();
    assert_eq!(made["delivered_to"], "web:page:owner");
    assert_eq!(made["time_zone"], "UTC", "in 20 minutes needs no zone");

    let listing: Value = client
        .get(&url)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listing["data"][0]["text"], "Stretch");
    server.shutdown().await;
}

/// Reads the page's event stream from its `hello` on, until `done`.
async fn page_events(
    server: &Server,
    cookie: &str,
    done: impl FnMut(&str) -> bool + Send + 'static,
) -> tokio::task::JoinHandle<Vec<Value>> {
    let events = server
        .client()
        .get(format!("{}/api/chat/events", server.url))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    // The stream subscribed before its headers came back: nothing said from
    // here on is missed.
    tokio::spawn(async move {
        read_sse(events, done)
            .await
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect()
    })
}

/// The text of the deltas of `thought`, and the thought of the first delta.
fn said(events: &[Value]) -> (String, String) {
    let thought = events
        .iter()
        .find(|e| e["type"] == "delta")
        .map(|e| e["thought"].as_str().unwrap().to_owned())
        .expect("a delta");
    let text = events
        .iter()
        .filter(|e| e["type"] == "delta" && e["thought"] == thought.as_str())
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    (text, thought)
}

#[tokio::test]
async fn a_reminder_made_on_the_page_reaches_the_open_tab_and_stays_after_a_reload() {
    let server = Server::start(HttpConfig::new(true)).await;
    let (cookie, csrf) = server.page_login().await;
    let client = server.client();
    let make = |text: &str, kind: &str, when: &str| {
        client
            .post(format!("{}/api/schedules", server.url))
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .json(&json!({ "kind": kind, "text": text, "when": when }))
            .send()
    };
    let reminder: Value = make("Stretch your legs", "reminder", "in 2 minutes")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let due = reminder["next_at_ms"].as_i64().unwrap();

    // A tab is open when it fires: no request of the person's is waiting.
    let tab = page_events(&server, &cookie, |d| d.contains("\"type\":\"end\"")).await;
    let clock = ManualClock::at(due);
    let signals = Arc::clone(server.engine.proactive_signals());
    let scheduler = Scheduler::new(
        server.store.clone(),
        Arc::new(clock.clone()),
        signals,
        ProactiveConfig::default(),
    );
    let delivery = ProactiveDelivery::new(
        server.engine.clone(),
        Arc::new(clock.clone()),
        ProactiveConfig::default(),
    );
    assert_eq!(scheduler.fire_due().await.unwrap(), 1);
    assert_eq!(delivery.deliver_due().await.unwrap(), 1);
    let events = tab.await.unwrap();
    assert_eq!(events[0]["type"], "hello");
    let (text, thought) = said(&events);
    assert_eq!(text, "⏰ Reminder: Stretch your legs");
    let end = events.last().unwrap();
    assert_eq!(
        (end["type"].as_str(), end["thought"].as_str()),
        (Some("end"), Some(thought.as_str()))
    );
    assert!(
        !events
            .iter()
            .any(|e| e["type"] == "pending" || e["type"] == "user_message"),
        "nobody wrote: {events:?}"
    );

    // A reload finds it in the history, and the snapshot names the same
    // thought (the page keeps one of each).
    let hello = page_events(&server, &cookie, |_| true).await.await.unwrap();
    let hello = &hello[0];
    let messages = hello["messages"].as_array().unwrap();
    let stored = messages
        .iter()
        .find(|m| m["text"] == "⏰ Reminder: Stretch your legs")
        .unwrap_or_else(|| panic!("the reminder is in the history: {hello}"));
    assert_eq!(stored["role"], "assistant");
    assert_eq!(stored["thought"], thought.as_str());
    assert_eq!(hello["live"]["thought"], thought.as_str());
    assert_eq!(hello["live"]["state"], "done");
    assert_eq!(hello["pending"], false);
    // It fired once: nothing is left to fire or deliver.
    let listing: Value = client
        .get(format!("{}/api/schedules", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listing["data"], json!([]));
    assert_eq!(delivery.deliver_due().await.unwrap(), 0);

    // A scheduled task becomes the person's thought; its answer streams to the tab.
    server.fake.push(FakeReply::text("It is sunny in Lyon."));
    let task: Value = make("Tell me the weather", "task", "in 3 minutes")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    clock.set(task["next_at_ms"].as_i64().unwrap());
    // Two messages: the task's prompt, shown first, then its answer.
    let mut ends = 0;
    let tab = page_events(&server, &cookie, move |d| {
        ends += usize::from(d.contains("\"type\":\"end\""));
        ends >= 2
    })
    .await;
    assert_eq!(scheduler.fire_due().await.unwrap(), 1);
    assert_eq!(delivery.deliver_due().await.unwrap(), 1);
    let events = tab.await.unwrap();
    let (header, header_thought) = said(&events);
    assert_eq!(header, "⏰ Scheduled task: Tell me the weather");
    let answer: Vec<Value> = events
        .iter()
        .filter(|e| e["thought"] != header_thought.as_str())
        .cloned()
        .collect();
    let (text, thought) = said(&answer);
    assert_eq!(text, "It is sunny in Lyon.");
    assert!(
        server.fake.requests().iter().any(|r| r
            .last_user_text()
            .is_some_and(|t| t.contains("Tell me the weather"))),
        "the task's prompt reached the model"
    );
    let hello = page_events(&server, &cookie, |_| true).await.await.unwrap();
    let messages = hello[0]["messages"].as_array().unwrap();
    let answered = messages
        .iter()
        .find(|m| m["text"] == "It is sunny in Lyon.")
        .unwrap_or_else(|| panic!("the answer is in the history: {}", hello[0]));
    assert_eq!(answered["thought"], thought.as_str());
    assert!(
        messages
            .iter()
            .any(|m| m["role"] == "user"
                && m["text"].as_str().unwrap().contains("Tell me the weather")),
        "the task's prompt is in the history as the person's: {messages:?}"
    );
    server.shutdown().await;
}

#[test]
fn the_openapi_file_documents_the_schedule_routes() {
    let spec = include_str!("../../../../docs/openapi.yaml");
    for route in [
        "/api/schedules",
        "/api/schedules/{id}",
        "/api/schedules/settings",
    ] {
        assert!(
            spec.contains(&format!("\n  {route}:\n")),
            "docs/openapi.yaml does not document {route}"
        );
    }
}

#[tokio::test]
async fn a_person_adds_lists_and_removes_reminders_and_one_fires_into_the_chat_in_chromium() {
    use crate::http_browser::{path_str, require_browser_tools, run_script, screenshots};
    require_browser_tools();
    // `POST /test/fire`: what the scheduler and the delivery loop do when the
    // next schedule's time comes, with the clock set to it.
    let wired: Arc<std::sync::OnceLock<(clara_runtime::Engine, clara_store::Store)>> =
        Arc::default();
    let fire_with = Arc::clone(&wired);
    let extra = axum::Router::new().route(
        "/test/fire",
        axum::routing::post(move || {
            let wired = Arc::clone(&fire_with);
            async move {
                let (engine, store) = wired.get().expect("wired before the script runs");
                let next = store
                    .schedules(None, false)
                    .await
                    .unwrap()
                    .iter()
                    .filter_map(|s| s.next_at_ms)
                    .min()
                    .expect("something is scheduled");
                let clock = Arc::new(ManualClock::at(next));
                let config = ProactiveConfig::default();
                let scheduler = Scheduler::new(
                    store.clone(),
                    clock.clone(),
                    Arc::clone(engine.proactive_signals()),
                    config.clone(),
                );
                let fired = scheduler.fire_due().await.unwrap();
                let delivery = ProactiveDelivery::new(engine.clone(), clock, config);
                let delivered = delivery.deliver_due().await.unwrap();
                axum::Json(json!({ "fired": fired, "delivered": delivered }))
            }
        }),
    );
    let server = Server::start_with("127.0.0.1:0", HttpConfig::new(true), extra).await;
    assert!(
        wired
            .set((server.engine.clone(), server.store.clone()))
            .is_ok()
    );
    run_script("reminders.mjs", &[&server.url, path_str(&screenshots())]).await;

    // What the page saved is the owner's.
    let owner = server
        .store
        .find_user("web", "owner")
        .await
        .unwrap()
        .unwrap();
    let settings = server.store.person_settings(owner).await.unwrap();
    assert_eq!(settings.time_zone.as_deref(), Some("Europe/Berlin"));
    assert_eq!(
        settings.quiet_hours,
        Some(("22:00".to_owned(), "07:00".to_owned()))
    );
    let page = server
        .store
        .resolve_conversation(&clara_core::ConversationRef {
            platform: "web".into(),
            channel: "page:owner".into(),
            kind: clara_core::ChannelKind::Direct,
        })
        .await
        .unwrap();
    assert_eq!(settings.alerts_to, Some(page));
    assert!(
        server
            .store
            .schedules(Some(owner), false)
            .await
            .unwrap()
            .is_empty()
    );
    server.shutdown().await;
}
