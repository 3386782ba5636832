//! Files on the web page, both ways: a message's attached files (JSON, base64)
//! reach Clara, pictures also as images the model sees, within the size
//! limits (413 and one sentence beyond); a running tool's live output and the
//! files Clara sends reach the page's event stream, and the files are served
//! to the page's person only, pictures inline and everything else (SVG
//! included) as a download. In Chromium: `http_browser.rs`.

use crate::http_support::{Server, read_sse};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clara_core::{ChannelKind, ConversationRef, FileBlob, Outbound, ThoughtId};
use clara_gateway::http::HttpConfig;
use clara_testkit::FakeReply;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A PNG of `width` × `height` pixels coloured by `pixel` (RGB), encoded
/// without compression: a real picture a browser draws.
pub fn png(width: u32, height: u32, pixel: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    }
    let mut raw = Vec::new();
    for y in 0..height {
        raw.push(0); // no filter
        for x in 0..width {
            raw.extend_from_slice(&pixel(x, y));
        }
    }
    // zlib with stored (uncompressed) deflate blocks.
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        let len = u16::try_from(block.len()).unwrap();
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    chunk(&mut out, b"IHDR", &header);
    chunk(&mut out, b"IDAT", &zlib);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A bar chart, as the sandbox's matplotlib would draw one.
pub fn chart_png() -> Vec<u8> {
    let bars = [60u32, 120, 90, 160, 130];
    png(360, 220, |x, y| {
        let axis = x == 30 || y == 200;
        let bar = (0..bars.len() as u32).find(|i| (40 + i * 62..84 + i * 62).contains(&x));
        match bar {
            _ if axis => [40, 40, 48],
            Some(i) if y < 200 && y >= 200 - bars[i as usize] => [106, 87, 240],
            _ => [255, 255, 255],
        }
    })
}

/// An SVG that would run script if a browser showed it inline.
pub const HOSTILE_SVG: &str =
    r#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;

fn page() -> ConversationRef {
    conversation("page:owner")
}

fn conversation(channel: &str) -> ConversationRef {
    ConversationRef {
        platform: "web".into(),
        channel: channel.into(),
        kind: ChannelKind::Direct,
    }
}

fn events_of(raw: &[String]) -> Vec<Value> {
    raw.iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

async fn error_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (status, body["error"].clone())
}

fn one_sentence(message: &str) {
    assert!(
        message.ends_with('.') && !message.contains('\n') && message.len() < 200,
        "one sentence: {message:?}"
    );
}

#[tokio::test]
async fn attached_files_reach_clara_and_the_model_sees_the_picture() {
    let server = Server::start(HttpConfig::new(true)).await;
    server.fake.push(FakeReply::text("Two columns and a dot."));
    let (cookie, csrf) = server.page_login().await;
    let client = server.client();
    let events = client
        .get(format!("{}/api/chat/events", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let reader = tokio::spawn(read_sse(events, |d| d.contains("\"type\":\"end\"")));
    let csv = b"x,y\n1,2\n".to_vec();
    let dot = png(2, 2, |_, _| [200, 10, 10]);
    let sent = client
        .post(format!("{}/api/chat/messages", server.url))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({
            "text": "What is in these?",
            "client_id": "files-1",
            "files": [
                { "name": "data.csv", "media_type": "text/csv", "data": STANDARD.encode(&csv) },
                // No type given: it is taken from the name.
                { "name": "dot.png", "data": STANDARD.encode(&dot) },
            ],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::ACCEPTED);
    let events = events_of(&reader.await.unwrap());
    let said = events
        .iter()
        .find(|e| e["type"] == "user_message")
        .expect("the message is shown in the tabs");
    assert_eq!(said["text"], "What is in these?");
    assert_eq!(
        said["files"],
        json!([
            { "name": "data.csv", "media_type": "text/csv", "size": csv.len() },
            { "name": "dot.png", "media_type": "image/png", "size": dot.len() },
        ])
    );
    // The picture went to the model with the text.
    let request = server.fake.requests().last().cloned().unwrap();
    let body = request.body.to_string();
    assert!(
        body.contains(&STANDARD.encode(&dot)),
        "the model saw the picture: {body}"
    );
    assert!(
        request
            .last_user_text()
            .is_some_and(|t| t.contains("What is in these?"))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn files_over_the_limits_are_413s_in_one_sentence_and_reach_nobody() {
    let mut config = HttpConfig::new(true);
    config.max_file_bytes = 1000;
    config.max_message_file_bytes = 1500;
    let server = Server::start(config).await;
    let (cookie, csrf) = server.page_login().await;
    let client = server.client();
    let post = |body: Value| {
        client
            .post(format!("{}/api/chat/messages", server.url))
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .json(&body)
            .send()
    };
    let file =
        |name: &str, size: usize| json!({ "name": name, "data": STANDARD.encode(vec![1u8; size]) });

    let (status, e) = error_of(
        post(json!({"text": "hi", "files": [file("big.bin", 1001)]}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(e["code"], "file_too_large");
    assert_eq!(
        e["message"],
        "\"big.bin\" is 1001 bytes, and a file may be at most 1000 bytes."
    );

    let (status, e) = error_of(
        post(json!({"text": "hi", "files": [file("a.bin", 800), file("b.bin", 800)]}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(e["code"], "files_too_large");
    one_sentence(e["message"].as_str().unwrap());

    // A body far over what the files could take is refused before it is read.
    let (status, e) = error_of(
        post(json!({"text": "hi", "files": [file("huge.bin", 200_000)]}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        e["message"],
        "The files of one message may add up to at most 1.4 KiB."
    );

    // A bad file is a 400 naming it.
    let (status, e) = error_of(
        post(json!({"text": "hi", "files": [{"name": "x.txt", "data": "%%%"}]}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(e["param"], "files[0].data");
    assert!(
        server.fake.requests().is_empty(),
        "nothing reached the model"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn by_default_a_file_may_be_20_mib() {
    let server = Server::start(HttpConfig::new(true)).await;
    let (cookie, csrf) = server.page_login().await;
    let data = STANDARD.encode(vec![0u8; 20 * 1024 * 1024 + 1]);
    let response = server
        .client()
        .post(format!("{}/api/chat/messages", server.url))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"text": "", "files": [{"name": "scan.pdf", "data": data}]}))
        .send()
        .await
        .unwrap();
    let (status, e) = error_of(response).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        e["message"],
        "\"scan.pdf\" is larger than 20 MiB, the most a file may be."
    );
    server.shutdown().await;
}

#[tokio::test]
async fn live_output_and_files_reach_the_page_and_are_served_to_its_person_only() {
    let server = Server::start(HttpConfig::new(true)).await;
    let (cookie, _) = server.page_login().await;
    let client = server.client();
    let events = client
        .get(format!("{}/api/chat/events", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let reader = tokio::spawn(read_sse(events, |d| d.contains("\"type\":\"end\"")));
    let t = ThoughtId::new();
    let tool = "sandbox__run_python".to_owned();
    let chart = chart_png();
    for outbound in [
        Outbound::ToolStarted {
            thought: t,
            name: tool.clone(),
        },
        Outbound::ToolProgress {
            thought: t,
            name: tool.clone(),
            text: "loading data.csv\nfitting…".into(),
        },
        Outbound::File {
            thought: t,
            file: FileBlob::new("chart.png", chart.clone()),
            caption: Some("Sales by month".into()),
        },
        Outbound::File {
            thought: t,
            file: FileBlob::new("drawing.svg", HOSTILE_SVG.as_bytes().to_vec()),
            caption: None,
        },
        Outbound::ToolFinished {
            thought: t,
            name: tool.clone(),
            ok: true,
        },
        Outbound::Delta {
            thought: t,
            text: "Here is your chart.".into(),
        },
        Outbound::End { thought: t },
    ] {
        server.web.deliver(&page(), outbound).await.unwrap();
    }
    let events = events_of(&reader.await.unwrap());
    let progress = events
        .iter()
        .find(|e| e["type"] == "tool_progress")
        .unwrap();
    assert_eq!(
        *progress,
        json!({"type": "tool_progress", "thought": t.to_string(), "name": tool, "text": "loading data.csv\nfitting…"})
    );
    let files: Vec<&Value> = events.iter().filter(|e| e["type"] == "file").collect();
    assert_eq!(files.len(), 2);
    let (picture, svg) = (files[0], files[1]);
    assert_eq!(picture["thought"], t.to_string());
    assert_eq!(picture["name"], "chart.png");
    assert_eq!(picture["media_type"], "image/png");
    assert_eq!(picture["size"], chart.len());
    assert_eq!(picture["caption"], "Sales by month");
    assert_eq!(picture["image"], true);
    assert_eq!(svg["image"], false, "an SVG is never shown as a picture");
    let url = |f: &Value| format!("{}{}", server.url, f["url"].as_str().unwrap());
    assert!(
        picture["url"]
            .as_str()
            .unwrap()
            .starts_with("/api/chat/files/")
    );

    // The picture: its bytes, inline, with its type.
    let got = client
        .get(url(picture))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    let header = |name: &str| got.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(header("content-type"), "image/png");
    assert!(header("content-disposition").starts_with("inline; filename=\"chart.png\""));
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert!(header("content-security-policy").contains("sandbox"));
    assert_eq!(got.bytes().await.unwrap().as_ref(), chart.as_slice());

    // The SVG: a download, never inline.
    let got = client
        .get(url(svg))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    let disposition = got.headers()["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert_eq!(got.headers()["x-content-type-options"], "nosniff");
    assert_eq!(got.text().await.unwrap(), HOSTILE_SVG);

    // Without the login: refused.
    let anonymous = client.get(url(picture)).send().await.unwrap();
    let (status, e) = error_of(anonymous).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(e["code"], "login_required");

    // Another person's file is not the page's to fetch; nor is a made-up id.
    let bob = ThoughtId::new();
    server
        .web
        .deliver(
            &conversation("page:bob"),
            Outbound::File {
                thought: bob,
                file: FileBlob::new("bobs.png", chart_png()),
                caption: None,
            },
        )
        .await
        .unwrap();
    for id in ["00000000000000000000000000000000", "../../etc/passwd"] {
        let got = client
            .get(format!("{}/api/chat/files/{id}", server.url))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), StatusCode::NOT_FOUND, "{id}");
    }

    // A tab that connects later gets the kept files and the tool's output.
    let events = client
        .get(format!("{}/api/chat/events", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let hello = events_of(&read_sse(events, |_| true).await).remove(0);
    assert_eq!(hello["type"], "hello");
    let kept: Vec<&str> = hello["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(kept, ["chart.png", "drawing.svg"], "bob's file is not here");
    assert_eq!(
        hello["live"]["tools"][0]["output"],
        "loading data.csv\nfitting…"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn off_loopback_files_need_the_page_login_not_the_api_key() {
    let password = "a long and happy password";
    let config = HttpConfig::new(false)
        .with_password(password)
        .unwrap()
        .with_api_key("sk-files");
    let server = Server::start_on("0.0.0.0:0", config).await;
    let client = server.client();
    let t = ThoughtId::new();
    server
        .web
        .deliver(
            &page(),
            Outbound::File {
                thought: t,
                file: FileBlob::new("chart.png", chart_png()),
                caption: None,
            },
        )
        .await
        .unwrap();
    let login = client
        .post(format!("{}/auth/login", server.url))
        .json(&json!({ "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let events = client
        .get(format!("{}/api/chat/events", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let hello = events_of(&read_sse(events, |_| true).await).remove(0);
    let url = format!(
        "{}{}",
        server.url,
        hello["files"][0]["url"].as_str().unwrap()
    );

    let nobody = client.get(&url).send().await.unwrap();
    assert_eq!(nobody.status(), StatusCode::UNAUTHORIZED);
    let with_key = client
        .get(&url)
        .bearer_auth("sk-files")
        .send()
        .await
        .unwrap();
    assert_eq!(with_key.status(), StatusCode::UNAUTHORIZED);
    let stale = client
        .get(&url)
        .header("cookie", "clara_session=not-a-login")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);
    let page = client
        .get(&url)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.bytes().await.unwrap().as_ref(), chart_png().as_slice());
    server.shutdown().await;
}
