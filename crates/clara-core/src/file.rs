//! Files that pass through Clara: what a person sends (a document, a photo, a
//! voice note) and what Clara sends back (a chart the sandbox drew).
//!
//! A [`FileBlob`] carries its bytes; on the wire (the gateway protocol, the
//! Redis queue) they travel as base64. Where the bytes are kept afterwards is
//! the file store's business, not this type's.

use serde::{Deserialize, Serialize};

/// A file with its name, type and bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileBlob {
    /// Its name as the person (or the tool) gave it, e.g. `report.csv`. Not
    /// trusted as a path: stores and workspaces sanitise it.
    pub name: String,
    /// Its MIME type, e.g. `image/png`; `application/octet-stream` when unknown.
    pub media_type: String,
    /// Its bytes.
    #[serde(with = "base64_bytes")]
    pub data: Vec<u8>,
}

impl std::fmt::Debug for FileBlob {
    // The bytes are never useful in a log line and can be megabytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileBlob")
            .field("name", &self.name)
            .field("media_type", &self.media_type)
            .field("bytes", &self.data.len())
            .finish()
    }
}

impl FileBlob {
    /// A file named `name` holding `data`, its type guessed from the name.
    pub fn new(name: impl Into<String>, data: Vec<u8>) -> Self {
        let name = name.into();
        let media_type = media_type_for(&name).to_owned();
        Self {
            name,
            media_type,
            data,
        }
    }

    /// Whether platforms should show it as a picture.
    pub fn is_image(&self) -> bool {
        matches!(
            self.media_type.as_str(),
            "image/png" | "image/jpeg" | "image/gif" | "image/webp"
        )
    }
}

/// The MIME type a file name's extension suggests; `application/octet-stream`
/// when it suggests nothing Clara knows.
pub fn media_type_for(name: &str) -> &'static str {
    let extension = name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "csv" => "text/csv",
        "txt" | "log" | "md" => "text/plain",
        "json" => "application/json",
        "html" | "htm" => "text/html",
        "py" => "text/x-python",
        "zip" => "application/zip",
        "ogg" | "oga" => "audio/ogg",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        _ => "application/octet-stream",
    }
}

/// Bytes as a base64 string in JSON, instead of an array of numbers.
pub mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `data` as base64.
    pub fn serialize<S: Serializer>(data: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(data))
    }

    /// Reads base64 back into bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_travel_as_base64_and_come_back() {
        let file = FileBlob::new("chart.png", vec![0x89, b'P', b'N', b'G', 0, 255]);
        let json = serde_json::to_string(&file).unwrap();
        assert!(json.contains("\"data\":\"iVBORwD/\""), "{json}");
        let back: FileBlob = serde_json::from_str(&json).unwrap();
        assert_eq!(back, file);
        assert!(back.is_image());
    }

    #[test]
    fn types_come_from_the_extension() {
        assert_eq!(media_type_for("Report.CSV"), "text/csv");
        assert_eq!(media_type_for("noext"), "application/octet-stream");
        assert!(!FileBlob::new("a.pdf", vec![]).is_image());
    }

    #[test]
    fn debug_shows_the_size_not_the_bytes() {
        let file = FileBlob::new("a.txt", vec![b'x'; 10]);
        assert_eq!(
            format!("{file:?}"),
            "FileBlob { name: \"a.txt\", media_type: \"text/plain\", bytes: 10 }"
        );
    }
}
