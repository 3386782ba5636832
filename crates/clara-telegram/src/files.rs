//! Files on Telegram, in and out: which files of a message to fetch (documents,
//! audio, voice notes, videos, video notes), what to call the ones without a
//! name, and the sentences for a file Clara does not keep or cannot send.
//! Pure: no I/O.

use super::types::{Media, Message};
use clara_core::file::media_type_for;

/// The largest file the Bot API lets a bot download (`getFile`).
pub const BOT_API_DOWNLOAD_LIMIT: u64 = 20_000_000;
/// The largest file a bot may upload.
pub(crate) const MAX_UPLOAD_BYTES: u64 = 50_000_000;
/// The largest picture `sendPhoto` takes; a larger one goes as a document.
pub(crate) const MAX_PHOTO_BYTES: u64 = 10_000_000;

/// The kinds of file a message carries, each under its own key of the Bot
/// API's `Message`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    Document,
    Audio,
    Voice,
    Video,
    VideoNote,
}

/// A file to download before the message goes to Clara.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileRef {
    pub file_id: String,
    pub name: String,
    pub media_type: String,
    /// Its size as Telegram reports it, when it does.
    pub size: Option<u64>,
    pub kind: FileKind,
}

/// The files of `message` (Telegram sends at most one per message).
pub(crate) fn files_of(message: &Message) -> Vec<FileRef> {
    [
        (&message.document, FileKind::Document),
        (&message.audio, FileKind::Audio),
        (&message.voice, FileKind::Voice),
        (&message.video, FileKind::Video),
        (&message.video_note, FileKind::VideoNote),
    ]
    .into_iter()
    .filter_map(|(media, kind)| media.as_ref().map(|m| file_ref(m, kind)))
    .collect()
}

fn file_ref(media: &Media, kind: FileKind) -> FileRef {
    let given = media
        .file_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    let reported = media
        .mime_type
        .as_deref()
        .map(str::trim)
        .filter(|t| t.contains('/'))
        .map(str::to_ascii_lowercase);
    let media_type = reported.unwrap_or_else(|| {
        match (kind, given) {
            (FileKind::Voice, _) => "audio/ogg",
            (FileKind::Video | FileKind::VideoNote, _) => "video/mp4",
            (FileKind::Audio, None) => "audio/mpeg",
            (_, Some(name)) => media_type_for(name),
            (FileKind::Document, None) => "application/octet-stream",
        }
        .to_owned()
    });
    let name = match given {
        Some(name) => name.to_owned(),
        None => {
            let (prefix, fallback) = match kind {
                FileKind::Document => ("file", "bin"),
                FileKind::Audio => ("audio", "mp3"),
                FileKind::Voice => ("voice", "ogg"),
                FileKind::Video => ("video", "mp4"),
                FileKind::VideoNote => ("video-note", "mp4"),
            };
            let id = if media.file_unique_id.is_empty() {
                "unnamed"
            } else {
                media.file_unique_id.as_str()
            };
            let extension = extension_for(&media_type).unwrap_or(fallback);
            format!("{prefix}-{id}.{extension}")
        }
    };
    FileRef {
        file_id: media.file_id.clone(),
        name,
        media_type,
        size: media.file_size,
        kind,
    }
}

/// The usual extension of a MIME type, for files that come without a name.
fn extension_for(media_type: &str) -> Option<&'static str> {
    Some(match media_type {
        "audio/ogg" | "audio/opus" => "ogg",
        "audio/mpeg" | "audio/mp3" => "mp3",
        "audio/mp4" | "audio/x-m4a" | "audio/m4a" => "m4a",
        "audio/wav" | "audio/x-wav" => "wav",
        "video/mp4" => "mp4",
        "video/quicktime" => "mov",
        "video/webm" => "webm",
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "application/pdf" => "pdf",
        "application/zip" => "zip",
        "application/json" => "json",
        "text/plain" => "txt",
        "text/csv" => "csv",
        _ => return None,
    })
}

/// What the model reads for a message that is only a file (the engine needs
/// words); `None` without files.
pub(crate) fn described(files: &[FileRef]) -> Option<String> {
    let file = files.first()?;
    let name = &file.name;
    Some(match file.kind {
        FileKind::Document => format!("[sent the file {name}]"),
        FileKind::Audio => format!("[sent the audio file {name}]"),
        FileKind::Voice => "[a voice note]".to_owned(),
        FileKind::Video => format!("[sent the video {name}]"),
        FileKind::VideoNote => "[a video note]".to_owned(),
    })
}

/// The line added to a message whose file is over `limit` bytes: the file is
/// not downloaded, and the model can tell the person why.
pub(crate) fn not_kept(name: &str, size: Option<u64>, limit: u64) -> String {
    match size {
        Some(size) => format!(
            "[{name} was not kept: {}, the limit is {}]",
            size_words(size),
            size_words(limit)
        ),
        None => format!(
            "[{name} was not kept: it is larger than the limit of {}]",
            size_words(limit)
        ),
    }
}

/// The line added to a message whose file could not be downloaded.
pub(crate) fn not_loaded(name: &str) -> String {
    format!("[{name} was attached but could not be loaded]")
}

/// Why a file of `size` bytes cannot be sent on Telegram.
pub(crate) fn too_big_to_send(name: &str, size: u64) -> String {
    format!(
        "{name} could not be sent: it is {}, and a Telegram bot can send files of at most {}.",
        size_words(size),
        size_words(MAX_UPLOAD_BYTES)
    )
}

/// A size as people read it: `25 MB`, `1.5 MB`, `300 kB`, `12 bytes`
/// (decimal units, as Telegram states its limits).
pub(crate) fn size_words(bytes: u64) -> String {
    if bytes >= 1_000_000 {
        let tenths = (bytes + 50_000) / 100_000;
        if tenths.is_multiple_of(10) {
            format!("{} MB", tenths / 10)
        } else {
            format!("{}.{} MB", tenths / 10, tenths % 10)
        }
    } else if bytes >= 1_000 {
        format!("{} kB", bytes.div_ceil(1_000))
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn message(extra: serde_json::Value) -> Message {
        let mut m = json!({
            "message_id": 1, "from": {"id": 7, "first_name": "Ann"},
            "chat": {"id": 7, "type": "private"}, "date": 1,
        });
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        serde_json::from_value(m).unwrap()
    }

    #[test]
    fn documents_keep_their_name_and_type() {
        let m = message(json!({"document": {
            "file_id": "d1", "file_unique_id": "AgADd1", "file_name": "report.pdf",
            "mime_type": "application/pdf", "file_size": 1234
        }}));
        assert_eq!(
            files_of(&m),
            vec![FileRef {
                file_id: "d1".into(),
                name: "report.pdf".into(),
                media_type: "application/pdf".into(),
                size: Some(1234),
                kind: FileKind::Document,
            }]
        );
        assert_eq!(
            described(&files_of(&m)).unwrap(),
            "[sent the file report.pdf]"
        );
        // Without a type, the name says it.
        let m = message(json!({"document": {"file_id": "d2", "file_name": "data.CSV"}}));
        assert_eq!(files_of(&m)[0].media_type, "text/csv");
    }

    #[test]
    fn unnamed_files_are_named_after_their_kind_and_id() {
        let m = message(json!({"voice": {
            "file_id": "v1", "file_unique_id": "AgADv1", "duration": 3, "mime_type": "audio/ogg"
        }}));
        let voice = &files_of(&m)[0];
        assert_eq!(voice.name, "voice-AgADv1.ogg");
        assert_eq!(voice.media_type, "audio/ogg");
        assert_eq!(described(&files_of(&m)).unwrap(), "[a voice note]");
        let m = message(json!({"video_note": {
            "file_id": "n1", "file_unique_id": "AgADn1", "length": 240, "duration": 3
        }}));
        let note = &files_of(&m)[0];
        assert_eq!(
            (note.name.as_str(), note.media_type.as_str()),
            ("video-note-AgADn1.mp4", "video/mp4")
        );
        let m = message(
            json!({"audio": {"file_id": "a1", "file_unique_id": "AgADa1", "duration": 3, "mime_type": "audio/mp4"}}),
        );
        assert_eq!(files_of(&m)[0].name, "audio-AgADa1.m4a");
        assert!(files_of(&message(json!({"text": "hi"}))).is_empty());
    }

    #[test]
    fn sizes_and_sentences_read_well() {
        assert_eq!(size_words(25_000_000), "25 MB");
        assert_eq!(size_words(25_340_000), "25.3 MB");
        assert_eq!(size_words(1_500), "2 kB");
        assert_eq!(size_words(12), "12 bytes");
        assert_eq!(
            not_kept("report.pdf", Some(25_000_000), 20_000_000),
            "[report.pdf was not kept: 25 MB, the limit is 20 MB]"
        );
        assert_eq!(
            not_kept("a.zip", None, 20_000_000),
            "[a.zip was not kept: it is larger than the limit of 20 MB]"
        );
        assert_eq!(
            too_big_to_send("big.zip", 61_200_000),
            "big.zip could not be sent: it is 61.2 MB, and a Telegram bot can send files of at most 50 MB."
        );
    }
}
