//! What happens to the files people send: the engine hands each to the
//! [`Uploads`] the binary set (the file store plus the person's sandbox
//! workspace), and the person's message tells the model where it is.
//!
//! The bytes never reach the conversation's history: the stored message holds
//! the note, the file lives where `Uploads` put it.

use async_trait::async_trait;
use clara_core::{FileBlob, Image, UserId};

/// Where files people send are kept.
#[async_trait]
pub trait Uploads: Send + Sync + 'static {
    /// Keeps `file`, sent by `user`; returns where the person's tools find it
    /// (`/workspace/uploads/report.csv`), or one sentence saying why it was
    /// not kept (too large, storage failing).
    async fn keep(&self, user: UserId, file: &FileBlob) -> Result<String, String>;
}

/// The most files of one message that are kept; the rest are named as left out.
pub const MAX_FILES_PER_MESSAGE: usize = 10;

/// The files (and images) of a message handed to `uploads`, and the text the
/// model reads: the person's text, then one line per file saying where it
/// is or why it is not there. Without `uploads`, the lines say files are not
/// kept here. Images stay on the message (the model looks at them) and are
/// kept as files too.
pub async fn keep_files(
    uploads: Option<&dyn Uploads>,
    user: Option<UserId>,
    text: &str,
    files: Vec<FileBlob>,
    images: &[Image],
) -> String {
    let from_images = images
        .iter()
        .enumerate()
        .filter_map(|(n, image)| match image {
            // A picture sent as a file is on the message twice: keep it once.
            Image::Bytes { data, .. } if files.iter().any(|f| f.data == *data) => None,
            Image::Bytes { media_type, data } => {
                let extension = media_type.strip_prefix("image/").unwrap_or("img");
                let extension = if extension == "jpeg" {
                    "jpg"
                } else {
                    extension
                };
                Some(FileBlob {
                    name: format!("image-{}.{extension}", n + 1),
                    media_type: media_type.clone(),
                    data: data.clone(),
                })
            }
            Image::Url { .. } => None,
        });
    // Without storage an image is still seen by the model; only the files it
    // cannot see need a word.
    let from_images = from_images.filter(|_| uploads.is_some() && user.is_some());
    let from_images: Vec<FileBlob> = from_images.collect();
    let all: Vec<FileBlob> = files.into_iter().chain(from_images).collect();
    if all.is_empty() {
        return text.to_owned();
    }
    let mut lines = Vec::new();
    for (n, file) in all.iter().enumerate() {
        let what = format!(
            "{} ({}, {})",
            file.name,
            file.media_type,
            size(file.data.len())
        );
        let line = if n >= MAX_FILES_PER_MESSAGE {
            format!(
                "[Attached {what}: not kept, at most {MAX_FILES_PER_MESSAGE} files per message.]"
            )
        } else {
            match (uploads, user) {
                (Some(uploads), Some(user)) => match uploads.keep(user, file).await {
                    Ok(path) => format!("[Attached {what}: saved as {path}]"),
                    Err(why) => {
                        tracing::warn!(file = %file.name, %why, "an attachment was not kept");
                        format!("[Attached {what}: not kept. {why}]")
                    }
                },
                _ => format!("[Attached {what}: not kept, this Clara keeps no files.]"),
            }
        };
        lines.push(line);
    }
    if text.trim().is_empty() {
        lines.join("\n")
    } else {
        format!("{text}\n{}", lines.join("\n"))
    }
}

/// `12345` → `12.1 KB`.
fn size(bytes: usize) -> String {
    #[allow(clippy::cast_precision_loss)] // a size for people, not for sums
    let b = bytes as f64;
    if bytes < 1024 {
        format!("{bytes} B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.1} KB", b / 1024.0)
    } else {
        format!("{:.1} MB", b / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    #[derive(Default)]
    struct Kept(Mutex<Vec<(UserId, String, usize)>>);

    #[async_trait]
    impl Uploads for Kept {
        async fn keep(&self, user: UserId, file: &FileBlob) -> Result<String, String> {
            if file.data.len() > 10 {
                return Err("It is larger than the 10 B limit.".into());
            }
            self.0
                .lock()
                .push((user, file.name.clone(), file.data.len()));
            Ok(format!("/workspace/uploads/{}", file.name))
        }
    }

    #[tokio::test]
    async fn files_and_images_are_kept_and_the_model_is_told_where() {
        let kept = Kept::default();
        let user = UserId::new();
        let text = keep_files(
            Some(&kept),
            Some(user),
            "plot this",
            vec![FileBlob::new("data.csv", b"a,b\n1,2\n".to_vec())],
            &[Image::Bytes {
                media_type: "image/jpeg".into(),
                data: vec![1, 2, 3],
            }],
        )
        .await;
        assert_eq!(
            text,
            "plot this\n[Attached data.csv (text/csv, 8 B): saved as /workspace/uploads/data.csv]\n\
             [Attached image-1.jpg (image/jpeg, 3 B): saved as /workspace/uploads/image-1.jpg]"
        );
        assert_eq!(kept.0.lock().len(), 2);
    }

    #[tokio::test]
    async fn a_picture_sent_as_a_file_is_kept_once() {
        let kept = Kept::default();
        let png = vec![0x89, b'P', b'N', b'G'];
        let text = keep_files(
            Some(&kept),
            Some(UserId::new()),
            "",
            vec![FileBlob::new("plot.png", png.clone())],
            &[Image::Bytes {
                media_type: "image/png".into(),
                data: png,
            }],
        )
        .await;
        assert_eq!(
            text,
            "[Attached plot.png (image/png, 4 B): saved as /workspace/uploads/plot.png]"
        );
        assert_eq!(kept.0.lock().len(), 1);
    }

    #[tokio::test]
    async fn a_refused_file_is_named_with_the_reason_and_the_text_is_kept() {
        let kept = Kept::default();
        let text = keep_files(
            Some(&kept),
            Some(UserId::new()),
            "",
            vec![FileBlob::new("big.pdf", vec![0; 2048])],
            &[],
        )
        .await;
        assert_eq!(
            text,
            "[Attached big.pdf (application/pdf, 2.0 KB): not kept. It is larger than the 10 B limit.]"
        );
    }

    #[tokio::test]
    async fn without_storage_the_model_hears_the_files_were_not_kept() {
        let text = keep_files(None, None, "hi", vec![FileBlob::new("a.txt", vec![1])], &[]).await;
        assert_eq!(
            text,
            "hi\n[Attached a.txt (text/plain, 1 B): not kept, this Clara keeps no files.]"
        );
        assert_eq!(keep_files(None, None, "hi", vec![], &[]).await, "hi");
        let photo = Image::Bytes {
            media_type: "image/png".into(),
            data: vec![1],
        };
        assert_eq!(
            keep_files(None, None, "look", vec![], &[photo]).await,
            "look",
            "the model sees the picture; nothing to say about storage"
        );
    }
}
