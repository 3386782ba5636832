//! Turning a Discord message Clara should answer into an [`Inbound`]: its reply
//! chain fetched as context, its images and files downloaded.

use super::PLATFORM;
use super::addressing::{Me, readable_text};
use super::files;
use super::rest::Rest;
use super::wire::{Attachment, Message};
use clara_core::file::media_type_for;
use clara_core::{Author, ChannelKind, ConversationRef, EventId, FileBlob, Image, Inbound, Quoted};

/// Images passed to the model from one message, at most.
pub const MAX_IMAGES: usize = 4;
/// The largest image downloaded, in bytes (Discord's free upload limit).
pub const MAX_IMAGE_BYTES: u64 = 10 * 1024 * 1024;

/// Where a Discord message was said, in Clara's terms.
pub fn conversation_of(guild: Option<u64>, channel: u64) -> ConversationRef {
    ConversationRef {
        platform: PLATFORM.to_owned(),
        channel: channel.to_string(),
        kind: if guild.is_some() {
            ChannelKind::Group
        } else {
            ChannelKind::Direct
        },
    }
}

/// Who wrote a Discord message, in Clara's terms.
pub fn author_of(message: &Message) -> Author {
    Author {
        platform_user_id: message.author.id.to_string(),
        display_name: message.author_name().to_owned(),
    }
}

/// The [`Inbound`] for `message`, whose readable text is `text`. Fetching the
/// chain, an image or a file may fail; what could be fetched is kept, and the
/// message still goes through. A file over `max_file_bytes` is not downloaded:
/// a line in the text says so, for the model to pass on.
pub async fn inbound_for(
    rest: &Rest,
    message: &Message,
    text: String,
    me: &Me,
    max_chain: usize,
    max_file_bytes: u64,
) -> Inbound {
    let replying_to = reply_chain(rest, message, me, max_chain).await;
    let Attached {
        images,
        files,
        notes,
    } = attachments_of(rest, &message.attachments, max_file_bytes).await;
    let mut text = if !text.trim().is_empty() {
        text
    } else if !images.is_empty() {
        // An image without a caption still asks for an answer.
        "[image]".to_owned()
    } else {
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        files::described(&names).unwrap_or(text)
    };
    for note in notes {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&note);
    }
    Inbound {
        event_id: EventId(format!("{PLATFORM}:{}", message.id)),
        conversation: conversation_of(message.guild_id, message.channel_id),
        author: author_of(message),
        text,
        sent_at_ms: message.sent_at_ms(),
        tier: None,
        images,
        files,
        replying_to,
    }
}

/// The messages `message` replies to, oldest first, at most `max` of them.
/// Discord includes the replied-to message in the event; each older link is one
/// `GET` (which again includes the message it replies to).
async fn reply_chain(rest: &Rest, message: &Message, me: &Me, max: usize) -> Vec<Quoted> {
    let mut chain = Vec::new();
    let mut embedded = message.referenced_message.clone();
    let mut pointer = message.replied_to();
    while chain.len() < max {
        let link = match (embedded.take(), pointer) {
            (Some(m), _) => *m,
            (None, Some((channel, id))) => match rest.message(channel, id).await {
                Ok(m) => m,
                Err(e) if e.is_not_found() => break,
                Err(e) => {
                    tracing::warn!(error = %e, "a message of a Discord reply chain could not be fetched; the chain stops there");
                    break;
                }
            },
            (None, None) => break,
        };
        chain.push(quote(&link, me));
        pointer = link.replied_to();
        embedded = link.referenced_message;
    }
    chain.reverse();
    chain
}

fn quote(message: &Message, me: &Me) -> Quoted {
    let mut text = readable_text(message, me);
    let files: Vec<&str> = message
        .attachments
        .iter()
        .map(|a| a.filename.as_str())
        .collect();
    if !files.is_empty() {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&format!("[attached: {}]", files.join(", ")));
    }
    Quoted {
        author: message.author_name().to_owned(),
        text,
        from_clara: message.author.id == me.id,
    }
}

/// Whether an attachment is an image the model can look at.
fn image_type(attachment: &Attachment) -> Option<String> {
    if let Some(t) = attachment.content_type.as_deref() {
        let t = t.split(';').next().unwrap_or(t).trim().to_ascii_lowercase();
        return t.starts_with("image/").then_some(t);
    }
    let name = attachment.filename.to_ascii_lowercase();
    let ext = name.rsplit('.').next()?;
    let t = match ext {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        _ => return None,
    };
    Some(t.to_owned())
}

/// What a message's attachments became.
#[derive(Default)]
struct Attached {
    /// Pictures for the model.
    images: Vec<Image>,
    /// Files to keep.
    files: Vec<FileBlob>,
    /// Lines about files not kept.
    notes: Vec<String>,
}

/// Downloads a message's attachments: pictures for the model (at most
/// [`MAX_IMAGES`] of at most [`MAX_IMAGE_BYTES`]), everything else — and
/// pictures past those limits — as files of at most `max_file_bytes`.
async fn attachments_of(rest: &Rest, attachments: &[Attachment], max_file_bytes: u64) -> Attached {
    let mut attached = Attached::default();
    for attachment in attachments {
        let name = attachment.filename.as_str();
        if let Some(media_type) = image_type(attachment)
            && attached.images.len() < MAX_IMAGES
            && attachment.size <= MAX_IMAGE_BYTES
        {
            match rest.download(&attachment.url, MAX_IMAGE_BYTES).await {
                Ok(data) => attached.images.push(Image::Bytes { media_type, data }),
                Err(e) => {
                    tracing::warn!(file = %name, error = %e, "an image attachment could not be downloaded; left out");
                    attached.notes.push(files::not_loaded(name));
                }
            }
            continue;
        }
        if attachment.size > max_file_bytes {
            tracing::info!(file = %name, size = attachment.size, limit = max_file_bytes, "an attachment over the limit was not downloaded");
            attached
                .notes
                .push(files::not_kept(name, attachment.size, max_file_bytes));
            continue;
        }
        match rest.download(&attachment.url, max_file_bytes).await {
            Ok(data) => attached.files.push(FileBlob {
                name: name.to_owned(),
                media_type: file_type(attachment),
                data,
            }),
            Err(e) => {
                tracing::warn!(file = %name, error = %e, "an attachment could not be downloaded; left out");
                attached.notes.push(files::not_loaded(name));
            }
        }
    }
    attached
}

/// An attachment's MIME type: Discord's, else the one its name suggests.
fn file_type(attachment: &Attachment) -> String {
    attachment
        .content_type
        .as_deref()
        .map(|t| t.split(';').next().unwrap_or(t).trim().to_ascii_lowercase())
        .filter(|t| t.contains('/'))
        .unwrap_or_else(|| media_type_for(&attachment.filename).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attachment(name: &str, content_type: Option<&str>) -> Attachment {
        Attachment {
            filename: name.into(),
            content_type: content_type.map(str::to_owned),
            size: 1,
            url: "http://x/y".into(),
        }
    }

    #[test]
    fn images_are_told_by_type_or_else_by_extension() {
        assert_eq!(
            image_type(&attachment("a.bin", Some("image/PNG"))).as_deref(),
            Some("image/png")
        );
        assert_eq!(
            image_type(&attachment("a.png", Some("application/pdf"))),
            None
        );
        assert_eq!(
            image_type(&attachment("photo.JPG", None)).as_deref(),
            Some("image/jpeg")
        );
        assert_eq!(image_type(&attachment("notes.txt", None)), None);
    }

    #[test]
    fn file_types_come_from_discord_or_the_name() {
        assert_eq!(
            file_type(&attachment("a.bin", Some("text/plain; charset=utf-8"))),
            "text/plain"
        );
        assert_eq!(
            file_type(&attachment("report.PDF", None)),
            "application/pdf"
        );
        assert_eq!(
            file_type(&attachment("x", None)),
            "application/octet-stream"
        );
    }

    #[test]
    fn conversations_are_direct_without_a_server() {
        assert_eq!(conversation_of(None, 5).kind, ChannelKind::Direct);
        let group = conversation_of(Some(1), 5);
        assert_eq!(group.kind, ChannelKind::Group);
        assert_eq!(group.channel, "5");
        assert_eq!(group.platform, "discord");
    }
}
