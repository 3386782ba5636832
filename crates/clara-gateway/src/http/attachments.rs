//! Files a person attaches to a message on the page: read from the message's
//! JSON (`files: [{name, media_type, data}]`, the data in base64), checked
//! against the size limits, and turned into the engine's [`FileBlob`]s (the
//! pictures among them also as [`Image`]s, so the model sees them).
//!
//! JSON rather than a multipart form: the page and API clients already speak
//! it, and a file's three fields read the same as everywhere else in Clara.

use crate::http::access::SMALL_BODY;
use crate::http::errors::ApiError;
use base64::Engine as _;
use clara_core::file::media_type_for;
use clara_core::{FileBlob, Image};
use serde::Deserialize;

/// The most files one message may carry.
pub(crate) const MAX_FILES: usize = 10;

/// The longest file name taken, in characters.
const MAX_NAME_CHARS: usize = 255;

/// Room in a body for each file's name, type and JSON punctuation.
const PER_FILE_OVERHEAD: usize = 1024;

/// One attached file, as the request carries it.
#[derive(Deserialize, Debug)]
pub(crate) struct Upload {
    /// Its name, e.g. `report.csv`.
    name: String,
    /// Its MIME type; guessed from the name when absent or not a MIME type.
    #[serde(default)]
    media_type: Option<String>,
    /// Its bytes in standard base64 (a `data:…;base64,` URL is taken too).
    data: String,
}

/// How large attached files may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UploadLimits {
    /// The largest file, in bytes.
    pub(crate) per_file: usize,
    /// The most bytes all files of one message may add up to.
    pub(crate) per_message: usize,
}

impl UploadLimits {
    /// The largest body a message may be: its files' budget in base64, plus
    /// room for the text and the JSON around them.
    pub(crate) fn body_bytes(&self) -> usize {
        self.per_message.div_ceil(3) * 4 + SMALL_BODY + MAX_FILES * PER_FILE_OVERHEAD
    }

    /// The answer to a body over [`UploadLimits::body_bytes`].
    pub(crate) fn body_too_large(&self) -> ApiError {
        ApiError::too_large_because(
            format!(
                "The files of one message may add up to at most {}.",
                size_words(self.per_message)
            ),
            "files_too_large",
        )
    }
}

/// Reads `uploads` into files, in order: each named, decoded and within
/// `limits` (over a limit is a 413 saying which file and what the limit is).
pub(crate) fn read_uploads(
    uploads: Vec<Upload>,
    limits: UploadLimits,
) -> Result<Vec<FileBlob>, ApiError> {
    if uploads.len() > MAX_FILES {
        return Err(
            ApiError::invalid(format!("A message may carry at most {MAX_FILES} files."))
                .with_param("files"),
        );
    }
    let mut files = Vec::with_capacity(uploads.len());
    let mut total = 0usize;
    for (i, upload) in uploads.into_iter().enumerate() {
        let name = file_name(&upload.name).map_err(|e| e.with_param(format!("files[{i}].name")))?;
        let (url_type, encoded) = split_data_url(&upload.data);
        // Refuse a file plainly over the limit before decoding it.
        if encoded.len() / 4 * 3 > limits.per_file.saturating_add(2) {
            return Err(file_too_large(
                &name,
                encoded.len() / 4 * 3,
                limits.per_file,
            ));
        }
        let data = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| {
                ApiError::invalid(format!("The data of {name:?} is not valid base64."))
                    .with_param(format!("files[{i}].data"))
            })?;
        if data.len() > limits.per_file {
            return Err(file_too_large(&name, data.len(), limits.per_file));
        }
        total += data.len();
        if total > limits.per_message {
            return Err(ApiError::too_large_because(
                format!(
                    "These files add up to more than {}, the most one message may carry.",
                    size_words(limits.per_message)
                ),
                "files_too_large",
            ));
        }
        let media_type = upload
            .media_type
            .as_deref()
            .and_then(mime_type)
            .or_else(|| url_type.and_then(mime_type))
            .unwrap_or_else(|| media_type_for(&name).to_owned());
        files.push(FileBlob {
            name,
            media_type,
            data,
        });
    }
    Ok(files)
}

/// The pictures among `files`, as images the model sees.
pub(crate) fn images_of(files: &[FileBlob]) -> Vec<Image> {
    files
        .iter()
        .filter(|f| f.is_image())
        .map(|f| Image::Bytes {
            media_type: f.media_type.clone(),
            data: f.data.clone(),
        })
        .collect()
}

/// What a message that is only files says, for the conversation's record: the
/// engine takes no empty message.
pub(crate) fn files_only_text(files: &[FileBlob]) -> String {
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    match names.as_slice() {
        [one] => format!("(sent the file {one})"),
        many => format!("(sent {} files: {})", many.len(), many.join(", ")),
    }
}

/// A file's name: its last path segment, trimmed; not empty, not too long, no
/// control characters.
fn file_name(given: &str) -> Result<String, ApiError> {
    let name = given.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    if name.is_empty() || name == "." || name == ".." {
        return Err(ApiError::invalid("Each file needs a name."));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::invalid(format!(
            "A file name may be at most {MAX_NAME_CHARS} characters long."
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "A file name must not contain control characters.",
        ));
    }
    Ok(name.to_owned())
}

/// `data`'s type and base64 part when it is a `data:TYPE;base64,` URL, else
/// no type and `data` itself.
fn split_data_url(data: &str) -> (Option<&str>, &str) {
    if let Some(rest) = data.strip_prefix("data:")
        && let Some((meta, encoded)) = rest.split_once(',')
        && let Some(media_type) = meta.strip_suffix(";base64")
    {
        return (Some(media_type), encoded);
    }
    (None, data)
}

/// `given` as a bare, lower-case MIME type (`type/subtype`, parameters
/// dropped), if it is one.
fn mime_type(given: &str) -> Option<String> {
    let bare = given.split(';').next().unwrap_or_default().trim();
    let (kind, sub) = bare.split_once('/')?;
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
    };
    (token(kind) && token(sub)).then(|| bare.to_ascii_lowercase())
}

fn file_too_large(name: &str, size: usize, limit: usize) -> ApiError {
    let (size, limit) = (size_words(size), size_words(limit));
    let message = if size == limit {
        format!("{name:?} is larger than {limit}, the most a file may be.")
    } else {
        format!("{name:?} is {size}, and a file may be at most {limit}.")
    };
    ApiError::too_large_because(message, "file_too_large")
}

/// A size in the units people read: bytes, KiB or MiB.
pub(crate) fn size_words(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * 1024;
    if bytes < KIB {
        format!("{bytes} bytes")
    } else if bytes < MIB {
        format!("{} KiB", trim_tenths(bytes * 10 / KIB))
    } else {
        format!("{} MiB", trim_tenths(bytes * 10 / MIB))
    }
}

/// `tenths` / 10 with one decimal, or none when it is whole.
fn trim_tenths(tenths: usize) -> String {
    if tenths.is_multiple_of(10) {
        (tenths / 10).to_string()
    } else {
        format!("{}.{}", tenths / 10, tenths % 10)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const LIMITS: UploadLimits = UploadLimits {
        per_file: 10,
        per_message: 15,
    };

    fn upload(name: &str, media_type: Option<&str>, data: &[u8]) -> Upload {
        Upload {
            name: name.into(),
            media_type: media_type.map(str::to_owned),
            data: base64::engine::general_purpose::STANDARD.encode(data),
        }
    }

    #[test]
    fn files_are_decoded_named_and_typed() {
        let files = read_uploads(
            vec![
                upload("C:\\docs\\report.csv", Some(""), b"a,b\n"),
                upload("photo", Some("Image/PNG; x=y"), b"\x89PNG"),
            ],
            LIMITS,
        )
        .unwrap();
        assert_eq!(files[0].name, "report.csv");
        assert_eq!(files[0].media_type, "text/csv", "guessed from the name");
        assert_eq!(files[0].data, b"a,b\n");
        assert_eq!(files[1].media_type, "image/png");
        let images = images_of(&files);
        assert_eq!(
            images,
            vec![Image::Bytes {
                media_type: "image/png".into(),
                data: b"\x89PNG".to_vec()
            }]
        );
    }

    #[test]
    fn a_data_url_is_taken_with_its_type() {
        let files = read_uploads(
            vec![Upload {
                name: "x".into(),
                media_type: None,
                data: "data:image/gif;base64,R0lG".into(),
            }],
            LIMITS,
        )
        .unwrap();
        assert_eq!(files[0].media_type, "image/gif");
        assert_eq!(files[0].data, b"GIF");
    }

    #[test]
    fn limits_are_413s_that_say_which_file_and_how_much() {
        let e = read_uploads(vec![upload("big.bin", None, &[0; 11])], LIMITS).unwrap_err();
        assert_eq!(e.status.as_u16(), 413);
        assert_eq!(e.code, Some("file_too_large"));
        assert_eq!(
            e.message,
            "\"big.bin\" is 11 bytes, and a file may be at most 10 bytes."
        );
        // Plainly too large: refused before decoding.
        let huge = Upload {
            name: "huge.bin".into(),
            media_type: None,
            data: "A".repeat(400),
        };
        assert_eq!(read_uploads(vec![huge], LIMITS).unwrap_err().status, 413);
        let e = read_uploads(
            vec![upload("a", None, &[0; 8]), upload("b", None, &[0; 8])],
            LIMITS,
        )
        .unwrap_err();
        assert_eq!(e.status.as_u16(), 413);
        assert_eq!(e.code, Some("files_too_large"));
        assert!(e.message.contains("15 bytes"), "{}", e.message);
    }

    #[test]
    fn bad_files_are_400s_naming_the_field() {
        let bad = Upload {
            name: "a.txt".into(),
            media_type: None,
            data: "not base64!".into(),
        };
        let e = read_uploads(vec![upload("ok", None, b"1"), bad], LIMITS).unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        assert_eq!(e.param.as_deref(), Some("files[1].data"));
        for name in ["", "  ", "dir/", "..", "a\u{7}b"] {
            let e = read_uploads(vec![upload(name, None, b"1")], LIMITS).unwrap_err();
            assert_eq!(e.param.as_deref(), Some("files[0].name"), "{name:?}");
        }
        let many = (0..=MAX_FILES).map(|_| upload("a", None, b"")).collect();
        let e = read_uploads(many, LIMITS).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("files"));
    }

    #[test]
    fn sizes_read_like_people_say_them() {
        assert_eq!(size_words(512), "512 bytes");
        assert_eq!(size_words(1536), "1.5 KiB");
        assert_eq!(size_words(20 * 1024 * 1024), "20 MiB");
        assert_eq!(size_words(20 * 1024 * 1024 + 1), "20 MiB");
        assert_eq!(size_words(25 * 1024 * 1024 + 400_000), "25.3 MiB");
    }

    #[test]
    fn the_body_limit_fits_the_files_in_base64() {
        let limits = UploadLimits {
            per_file: 30,
            per_message: 30,
        };
        assert!(limits.body_bytes() >= 40 + SMALL_BODY);
        assert_eq!(limits.body_too_large().status.as_u16(), 413);
    }

    #[test]
    fn a_message_of_only_files_says_so() {
        let one = [FileBlob::new("a.csv", vec![])];
        assert_eq!(files_only_text(&one), "(sent the file a.csv)");
        let two = [
            FileBlob::new("a.csv", vec![]),
            FileBlob::new("b.png", vec![]),
        ];
        assert_eq!(files_only_text(&two), "(sent 2 files: a.csv, b.png)");
    }
}
