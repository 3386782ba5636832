//! Files both ways against the fake Bot API: documents, voice notes and
//! pictures sent as files land in `Inbound::files` (a file over the limit is
//! left out with one line, the rest of the message kept); Clara's files go out
//! as `sendPhoto` or `sendDocument` multipart uploads, within Telegram's limits.

use crate::support::*;
use clara_core::port::SinkError;
use clara_core::{FileBlob, Image, Outbound, ThoughtId};
use clara_testkit::fake_telegram::{FakeChat, FakeFile, FileKind, UserMessage, png_of_size};

/// Clara sends `file` with `caption` in `chat` through the adapter's sink.
async fn clara_sends(
    r: &Recorded,
    chat: &FakeChat,
    file: FileBlob,
    caption: Option<&str>,
) -> Result<Option<String>, SinkError> {
    r.sink
        .deliver(
            &conversation_of(chat),
            Outbound::File {
                thought: ThoughtId::new(),
                file,
                caption: caption.map(str::to_owned),
            },
        )
        .await
}

/// The adapter, with Ann's private chat known to the fake (she wrote first).
async fn with_anns_chat() -> (Recorded, FakeChat) {
    let r = Recorded::start().await;
    let ann = ann();
    let chat = dm(&ann);
    r.tg.send(UserMessage::text(&chat, &ann, "hi"));
    r.assistant.wait_for_inbounds(1).await;
    (r, chat)
}

#[tokio::test]
async fn a_document_and_a_voice_note_arrive_as_files_with_name_type_and_bytes() {
    let r = Recorded::start().await;
    let ann = ann();
    let chat = dm(&ann);
    let pdf = b"%PDF-1.7\nthe quarterly report".to_vec();
    r.tg.send(UserMessage::document(
        &chat,
        &ann,
        "report.pdf",
        "application/pdf",
        pdf.clone(),
        Some("please summarise"),
    ));
    let ogg = b"OggS\0\x02fake opus voice".to_vec();
    r.tg.send(UserMessage::voice(&chat, &ann, ogg.clone()));
    let got = r.assistant.wait_for_inbounds(2).await;

    assert_eq!(got[0].text, "please summarise");
    assert_eq!(
        got[0].files,
        vec![FileBlob {
            name: "report.pdf".into(),
            media_type: "application/pdf".into(),
            data: pdf
        }]
    );
    assert!(got[0].images.is_empty(), "a PDF is no picture");

    assert_eq!(
        got[1].text, "[a voice note]",
        "a voice note still asks for an answer"
    );
    let voice = &got[1].files[0];
    assert!(
        voice.name.starts_with("voice-AgAD") && voice.name.ends_with(".ogg"),
        "named after its kind and file_unique_id: {}",
        voice.name
    );
    assert_eq!(voice.media_type, "audio/ogg");
    assert_eq!(voice.data, ogg);
    assert_eq!(r.tg.calls_to("getFile").len(), 2);
    r.adapter.stop().await.unwrap();
}

#[tokio::test]
async fn audio_videos_and_pictures_sent_as_files_are_kept_and_pictures_shown() {
    let r = Recorded::start().await;
    let ann = ann();
    let chat = dm(&ann);
    let png = png_of_size(32, 16);
    r.tg.send(UserMessage::document(
        &chat,
        &ann,
        "chart.png",
        "image/png",
        png.clone(),
        None,
    ));
    let note = FakeFile {
        kind: FileKind::VideoNote,
        name: None,
        mime_type: None,
        bytes: b"\0\0\0\x18ftypmp42".to_vec(),
    };
    r.tg.send(UserMessage::with_file(&chat, &ann, note, None));
    let song = FakeFile {
        kind: FileKind::Audio,
        name: Some("song.mp3".into()),
        mime_type: Some("audio/mpeg".into()),
        bytes: b"ID3\x04fake".to_vec(),
    };
    r.tg.send(UserMessage::with_file(&chat, &ann, song, Some("listen")));
    let got = r.assistant.wait_for_inbounds(3).await;

    assert_eq!(got[0].text, "[sent the file chart.png]");
    assert_eq!(got[0].files[0].name, "chart.png");
    assert_eq!(
        got[0].images,
        vec![Image::Bytes {
            media_type: "image/png".into(),
            data: png
        }],
        "the model sees a picture sent as a file"
    );
    assert_eq!(got[1].text, "[a video note]");
    assert_eq!(got[1].files[0].media_type, "video/mp4");
    assert!(got[1].files[0].name.starts_with("video-note-"));
    assert_eq!(got[2].text, "listen");
    assert_eq!(
        (
            got[2].files[0].name.as_str(),
            got[2].files[0].media_type.as_str()
        ),
        ("song.mp3", "audio/mpeg")
    );
    r.adapter.stop().await.unwrap();
}

#[tokio::test]
async fn a_file_over_the_limit_is_left_out_with_one_line_and_the_rest_is_kept() {
    let r = Recorded::start_with(|c| c.max_file_bytes = 1_000).await;
    let ann = ann();
    let chat = dm(&ann);
    r.tg.send(UserMessage::document(
        &chat,
        &ann,
        "big.zip",
        "application/zip",
        vec![7; 5_000],
        Some("here are the logs"),
    ));
    r.tg.send(UserMessage::document(
        &chat,
        &ann,
        "small.txt",
        "text/plain",
        b"fits".to_vec(),
        None,
    ));
    let got = r.assistant.wait_for_inbounds(2).await;
    assert_eq!(
        got[0].text,
        "here are the logs\n[big.zip was not kept: 5 kB, the limit is 1 kB]"
    );
    assert!(got[0].files.is_empty());
    assert_eq!(got[0].author.display_name, "Ann Lee", "the message is kept");
    assert_eq!(got[1].files[0].data, b"fits");
    // Judged by the size Telegram reports: the big one was never fetched.
    assert_eq!(r.tg.calls_to("getFile").len(), 1);
    r.adapter.stop().await.unwrap();
}

#[tokio::test]
async fn a_file_over_the_bot_apis_20_mb_is_left_out_even_with_a_higher_limit() {
    // A higher limit fits a local Bot API server; the public one still
    // refuses downloads over 20 MB ("file is too big").
    let r = Recorded::start_with(|c| c.max_file_bytes = 30_000_000).await;
    let ann = ann();
    let chat = dm(&ann);
    r.tg.send(UserMessage::document(
        &chat,
        &ann,
        "video.mov",
        "video/quicktime",
        vec![1; 21_000_000],
        Some("look"),
    ));
    let got = r.assistant.wait_for_inbounds(1).await;
    assert_eq!(
        got[0].text,
        "look\n[video.mov was not kept: 21 MB, the limit is 20 MB]"
    );
    assert!(got[0].files.is_empty());
    let asked = r.tg.calls_to("getFile");
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].status, Some(400));
    r.adapter.stop().await.unwrap();
}

#[tokio::test]
async fn a_png_goes_out_as_a_photo_with_its_caption() {
    let (r, chat) = with_anns_chat().await;
    let png = png_of_size(640, 480);
    let id = clara_sends(
        &r,
        &chat,
        FileBlob::new("chart.png", png.clone()),
        Some("Sales by month"),
    )
    .await
    .unwrap()
    .expect("a message id");
    let sent = r.tg.sent_files();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, "sendPhoto");
    assert_eq!(sent[0].filename, "chart.png");
    assert_eq!(sent[0].content_type.as_deref(), Some("image/png"));
    assert_eq!(sent[0].bytes, png);
    assert_eq!(sent[0].caption.as_deref(), Some("Sales by month"));
    assert_eq!(sent[0].chat_id, chat.id);
    assert_eq!(id, sent[0].message_id.to_string());
    let message = r.tg.bot_messages(chat.id).pop().unwrap();
    assert_eq!(message.caption.as_deref(), Some("Sales by month"));
    r.adapter.stop().await.unwrap();
}

#[tokio::test]
async fn a_pdf_goes_out_as_a_document() {
    let (r, chat) = with_anns_chat().await;
    let pdf = b"%PDF-1.7\nClara's report".to_vec();
    clara_sends(&r, &chat, FileBlob::new("report.pdf", pdf.clone()), None)
        .await
        .unwrap()
        .expect("a message id");
    let sent = r.tg.sent_files();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, "sendDocument");
    assert_eq!(
        (sent[0].filename.as_str(), sent[0].content_type.as_deref()),
        ("report.pdf", Some("application/pdf"))
    );
    assert_eq!(sent[0].bytes, pdf);
    assert_eq!(sent[0].caption, None);
    assert!(r.tg.calls_to("sendPhoto").is_empty());
    r.adapter.stop().await.unwrap();
}

#[tokio::test]
async fn a_picture_telegram_refuses_as_a_photo_goes_again_as_a_document() {
    let (r, chat) = with_anns_chat().await;
    // 9600 × 480: width and height add up to more than Telegram's 10000.
    let wide = png_of_size(9600, 480);
    clara_sends(
        &r,
        &chat,
        FileBlob::new("wide.png", wide.clone()),
        Some("wide"),
    )
    .await
    .unwrap()
    .expect("a message id");
    let photo = r.tg.calls_to("sendPhoto");
    assert_eq!(photo.len(), 1);
    assert_eq!(photo[0].status, Some(400));
    let sent = r.tg.sent_files();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, "sendDocument");
    assert_eq!(sent[0].bytes, wide);
    assert_eq!(sent[0].caption.as_deref(), Some("wide"));

    // Over 10 MB, a picture goes as a document straight away.
    let mut huge = png_of_size(100, 100);
    huge.resize(10_500_000, 0);
    clara_sends(&r, &chat, FileBlob::new("huge.png", huge), None)
        .await
        .unwrap();
    assert_eq!(r.tg.calls_to("sendPhoto").len(), 1, "no second sendPhoto");
    assert_eq!(r.tg.sent_files()[1].method, "sendDocument");
    r.adapter.stop().await.unwrap();
}

#[tokio::test]
async fn a_file_over_50_mb_is_one_sentence_and_never_uploaded() {
    let (r, chat) = with_anns_chat().await;
    let error = clara_sends(
        &r,
        &chat,
        FileBlob::new("dump.zip", vec![0; 60_000_000]),
        None,
    )
    .await
    .unwrap_err();
    let SinkError::Failed(sentence) = error else {
        panic!("expected a sentence, got {error:?}");
    };
    assert_eq!(
        sentence,
        "dump.zip could not be sent: it is 60 MB, and a Telegram bot can send files of at most 50 MB."
    );
    assert!(r.tg.calls_to("sendDocument").is_empty());
    r.adapter.stop().await.unwrap();
}

#[tokio::test]
async fn a_flood_limited_upload_is_handed_back_with_retry_after() {
    use clara_testkit::fake_telegram::FakeFault;
    let (r, chat) = with_anns_chat().await;
    r.tg.fail_next("sendPhoto", FakeFault::TooManyRequests { retry_after: 3 });
    let png = png_of_size(10, 10);
    let error = clara_sends(&r, &chat, FileBlob::new("a.png", png.clone()), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            SinkError::RateLimited {
                retry_after_ms: 3000
            }
        ),
        "{error:?}"
    );
    // The send queue tries again after the wait; then it goes through.
    clara_sends(&r, &chat, FileBlob::new("a.png", png), None)
        .await
        .unwrap();
    assert_eq!(r.tg.sent_files().len(), 1);
    r.adapter.stop().await.unwrap();
}

#[tokio::test]
async fn a_file_in_a_forum_topic_goes_to_the_topic() {
    let r = Recorded::start().await;
    let ann = ann();
    let group = FakeChat::supergroup(-100_555, "Team");
    r.tg.send(UserMessage::text(&group, &ann, "@clara_test_bot hi"));
    r.assistant.wait_for_inbounds(1).await;
    let topic = clara_core::ConversationRef {
        channel: format!("{}:12", group.id),
        ..conversation_of(&group)
    };
    r.sink
        .deliver(
            &topic,
            Outbound::File {
                thought: ThoughtId::new(),
                file: FileBlob::new("notes.txt", b"a list".to_vec()),
                caption: Some("the list".into()),
            },
        )
        .await
        .unwrap();
    let sent = r.tg.sent_files();
    assert_eq!(sent[0].thread, Some(12));
    assert_eq!(sent[0].content_type.as_deref(), Some("text/plain"));
    r.adapter.stop().await.unwrap();
}
