//! Files both ways against the fake Discord: attachments people send land in
//! `Inbound::files` (one over the limit is left out with one line, the rest of
//! the message kept); Clara's files go out as multipart uploads (`payload_json`
//! and `files[0]`), within the upload limit, rate limits honoured.

use crate::support::*;
use clara_core::port::{OutboundSink, SinkError};
use clara_core::{ChannelKind, ConversationRef, FileBlob, Outbound, ThoughtId};
use clara_discord::Discord;
use clara_testkit::fake_discord::{FakeDiscord, UserMessage};
use std::sync::Arc;

fn dm() -> ConversationRef {
    ConversationRef {
        platform: "discord".into(),
        channel: DM.to_string(),
        kind: ChannelKind::Direct,
    }
}

async fn send_file(
    sink: &Arc<dyn OutboundSink>,
    conversation: &ConversationRef,
    file: FileBlob,
    caption: Option<&str>,
) -> Result<Option<String>, SinkError> {
    sink.deliver(
        conversation,
        Outbound::File {
            thought: ThoughtId::new(),
            file,
            caption: caption.map(str::to_owned),
        },
    )
    .await
}

/// Bytes that start like a PNG (Discord does not judge pictures by their bytes).
fn png() -> Vec<u8> {
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDRa chart".to_vec()
}

#[tokio::test]
async fn discord_attachments_arrive_as_files_with_name_type_and_bytes() {
    let fake = FakeDiscord::start().await;
    let (running, assistant) = recording(&fake, config_for(&fake)).await;
    let pdf = b"%PDF-1.7 report".to_vec();
    fake.post(UserMessage::dm(DM, &ann(), "").with_attachment("report.pdf", None, &pdf));
    fake.post(
        UserMessage::dm(DM, &ann(), "two more")
            .with_attachment("data.csv", Some("text/csv; charset=utf-8"), b"a,b\n1,2")
            .with_attachment("voice.ogg", Some("audio/ogg"), b"OggS"),
    );
    let got = assistant.wait_submitted(2).await;
    assert_eq!(got[0].text, "[sent the file report.pdf]");
    assert_eq!(
        got[0].files,
        vec![FileBlob {
            name: "report.pdf".into(),
            media_type: "application/pdf".into(),
            data: pdf
        }],
        "the type from the name when Discord gives none"
    );
    assert_eq!(got[1].text, "two more");
    let kept: Vec<(&str, &str)> = got[1]
        .files
        .iter()
        .map(|f| (f.name.as_str(), f.media_type.as_str()))
        .collect();
    assert_eq!(kept, [("data.csv", "text/csv"), ("voice.ogg", "audio/ogg")]);
    assert_eq!(got[1].files[0].data, b"a,b\n1,2");
    running.shut_down().await.unwrap();
}

#[tokio::test]
async fn discord_an_attachment_over_the_limit_is_left_out_with_one_line() {
    let fake = FakeDiscord::start().await;
    let mut config = config_for(&fake);
    config.max_file_bytes = 2048;
    let (running, assistant) = recording(&fake, config).await;
    fake.post(
        UserMessage::dm(DM, &ann(), "the logs")
            .with_attachment("big.zip", Some("application/zip"), &[7; 5000])
            .with_attachment("small.txt", Some("text/plain"), b"fits"),
    );
    fake.post(UserMessage::dm(DM, &ann(), "").with_attachment("huge.bin", None, &[1; 4096]));
    let got = assistant.wait_submitted(2).await;
    assert_eq!(
        got[0].text,
        "the logs\n[big.zip was not kept: 5 kB, the limit is 2 kB]"
    );
    let kept: Vec<&str> = got[0].files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(kept, ["small.txt"], "the rest of the message is kept");
    assert_eq!(
        got[1].text, "[huge.bin was not kept: 4 kB, the limit is 2 kB]",
        "a message of only a refused file still reaches Clara"
    );
    running.shut_down().await.unwrap();
}

#[tokio::test]
async fn discord_a_png_goes_out_as_an_attachment_with_its_caption() {
    let fake = FakeDiscord::start().await;
    let sink = Discord::new(config_for(&fake)).unwrap().sink();
    let id = send_file(
        &sink,
        &dm(),
        FileBlob::new("chart.png", png()),
        Some("Sales by month"),
    )
    .await
    .unwrap()
    .expect("a message id");
    let sent = fake.sent_files();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].channel_id, DM);
    assert_eq!(id, sent[0].message_id.to_string());
    assert_eq!(sent[0].filename, "chart.png");
    assert_eq!(sent[0].content_type.as_deref(), Some("image/png"));
    assert_eq!(sent[0].data, png());
    assert_eq!(sent[0].content, "Sales by month");

    // The wire format: the message's JSON in payload_json naming files[0].
    let call = &fake.calls_to("POST", "/messages")[0];
    assert_eq!(call.body["content"], "Sales by month");
    assert_eq!(
        call.body["attachments"],
        serde_json::json!([{ "id": 0, "filename": "chart.png" }])
    );
    assert_eq!(
        call.body["allowed_mentions"]["parse"],
        serde_json::json!([])
    );
    assert_eq!(call.files[0].field, "files[0]");
    // Discord shows it from its CDN.
    let message = fake.bot_messages(DM).pop().unwrap();
    let url = message["attachments"][0]["url"].as_str().unwrap();
    let served = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    assert_eq!(served.to_vec(), png());
}

#[tokio::test]
async fn discord_a_pdf_goes_out_as_a_file_without_a_caption() {
    let fake = FakeDiscord::start().await;
    let sink = Discord::new(config_for(&fake)).unwrap().sink();
    let pdf = b"%PDF-1.7 Clara's report".to_vec();
    send_file(&sink, &dm(), FileBlob::new("report.pdf", pdf.clone()), None)
        .await
        .unwrap()
        .expect("a message id");
    let sent = fake.sent_files();
    assert_eq!(
        (sent[0].filename.as_str(), sent[0].content_type.as_deref()),
        ("report.pdf", Some("application/pdf"))
    );
    assert_eq!(sent[0].data, pdf);
    assert_eq!(sent[0].content, "");
}

#[tokio::test]
async fn discord_a_file_over_the_upload_limit_is_one_sentence_and_never_sent() {
    let fake = FakeDiscord::start().await;
    let sink = Discord::new(config_for(&fake)).unwrap().sink();
    let big = vec![0; 12 * 1024 * 1024];
    let error = send_file(&sink, &dm(), FileBlob::new("dump.zip", big), None)
        .await
        .unwrap_err();
    let SinkError::Failed(sentence) = error else {
        panic!("expected a sentence, got {error:?}");
    };
    assert!(
        sentence.starts_with(
            "dump.zip could not be sent: it is 12 MB, and Clara sends at most 10 MB on Discord"
        ),
        "{sentence}"
    );
    assert!(fake.calls_to("POST", "/messages").is_empty());

    // A server that takes less than Clara's setting answers 413.
    fake.set_upload_limit(1024);
    let error = send_file(&sink, &dm(), FileBlob::new("a.csv", vec![b'x'; 2048]), None)
        .await
        .unwrap_err();
    let SinkError::Failed(sentence) = error else {
        panic!("expected a sentence, got {error:?}");
    };
    assert_eq!(
        sentence,
        "a.csv could not be sent: at 2 kB it is more than Discord takes in this channel."
    );
    assert_eq!(fake.calls_to("POST", "/messages")[0].status, 413);
    assert!(fake.sent_files().is_empty());
}

#[tokio::test]
async fn discord_a_rate_limited_upload_waits_and_goes_through_once() {
    let fake = FakeDiscord::start().await;
    let sink = Discord::new(config_for(&fake)).unwrap().sink();
    fake.rate_limit_next("POST", "/messages", 0.2, false, 1);
    send_file(&sink, &dm(), FileBlob::new("chart.png", png()), None)
        .await
        .unwrap()
        .expect("a message id");
    let calls = fake.calls_to("POST", "/messages");
    assert_eq!(
        calls.iter().map(|c| c.status).collect::<Vec<_>>(),
        [429, 200]
    );
    assert_eq!(fake.sent_files().len(), 1);

    // A lasting limit is handed back to the send queue to wait out.
    fake.rate_limit_next("POST", "/messages", 120.0, false, 1);
    let error = send_file(&sink, &dm(), FileBlob::new("chart.png", png()), None)
        .await
        .unwrap_err();
    assert!(matches!(error, SinkError::RateLimited { .. }), "{error:?}");
}

#[tokio::test]
async fn discord_a_file_opening_a_reply_in_a_server_answers_the_message() {
    let fake = FakeDiscord::start().await;
    let (running, assistant) = recording(&fake, config_for(&fake)).await;
    let asked = fake.post(UserMessage::guild(
        GUILD,
        GENERAL,
        &ann(),
        &format!("{} plot this", FakeDiscord::mention()),
    ));
    assistant.wait_submitted(1).await;
    let general = ConversationRef {
        platform: "discord".into(),
        channel: GENERAL.to_string(),
        kind: ChannelKind::Group,
    };
    send_file(
        &running.sink,
        &general,
        FileBlob::new("plot.png", png()),
        Some("Here it is"),
    )
    .await
    .unwrap();
    let sent = fake.sent_files();
    assert_eq!(sent[0].reply_to, Some(asked));
    assert_eq!(sent[0].channel_id, GENERAL);
    running.shut_down().await.unwrap();
}
