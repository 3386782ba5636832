//! Fetching one page as readable text, without reaching anything private.
//!
//! Each request, the first and every redirect's, goes through the same steps:
//! 1. the URL is [checked](crate::target::check) (scheme, credentials, an IP
//!    literal judged by address);
//! 2. a client is built for it whose DNS resolver is a [`Guard`]: the name's
//!    addresses are judged before reqwest connects to exactly those;
//! 3. redirects are never followed by reqwest (`Policy::none()`): a `3xx`
//!    answer's `Location` starts the next round, at most `max_redirects` times.
//!
//! No proxy is used, even one set in the environment: a proxy resolves names
//! itself, out of the guard's sight. The body is read in chunks and reading
//! stops at `max_bytes`; the whole fetch, redirects and body included, is
//! bounded by `timeout`.

use crate::allow::AllowList;
use crate::content::{ContentType, Kind, decode, sniff};
use crate::readable;
use crate::resolve::{Guard, Refusal, SystemResolver};
use crate::target::{self, Target, TargetError};
use reqwest::dns::Resolve;
use reqwest::header::{ACCEPT, CONTENT_ENCODING, CONTENT_TYPE, LOCATION};
use reqwest::{StatusCode, Url, redirect};
use std::sync::Arc;
use std::time::Duration;

/// What a fetch may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchLimits {
    /// Bytes of body read at most; the rest is not downloaded.
    pub max_bytes: usize,
    /// The whole fetch, redirects and body included.
    pub timeout: Duration,
    /// Redirects followed at most.
    pub max_redirects: usize,
}

impl Default for FetchLimits {
    fn default() -> Self {
        Self {
            max_bytes: 2 * 1024 * 1024,
            timeout: Duration::from_secs(20),
            max_redirects: 5,
        }
    }
}

/// A fetched page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// The URL asked for.
    pub requested: Url,
    /// The URL the page came from, after redirects.
    pub url: Url,
    /// Its title, for an HTML page that has one.
    pub title: Option<String>,
    /// Its readable text (an HTML page) or its text as served.
    pub text: String,
    /// Whether the body was longer than `max_bytes` and only its start was read.
    pub cut: bool,
    /// How it was read.
    pub kind: Kind,
}

/// Why a page was not fetched: one sentence for the model.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL (the first or a redirect's) may not be fetched.
    #[error("{0}")]
    Target(#[from] TargetError),
    /// A host name resolved to a private address, or to nothing.
    #[error("{0}")]
    Refused(Refusal),
    /// Too many redirects.
    #[error("{url} redirected more than {max} times")]
    TooManyRedirects {
        /// The first URL, without its query.
        url: String,
        /// The limit.
        max: usize,
    },
    /// A redirect without a usable `Location`.
    #[error("{url} answered a redirect without a usable Location")]
    BadRedirect {
        /// The URL that redirected, without its query.
        url: String,
    },
    /// An error status.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The URL, without its query.
        url: String,
        /// The status.
        status: u16,
    },
    /// Not a web page or text.
    #[error("{url} is {content_type}, which Clara does not read (only web pages and text)")]
    Unsupported {
        /// The URL, without its query.
        url: String,
        /// Its type (`image/png`, `application/pdf`).
        content_type: String,
    },
    /// The time limit passed.
    #[error("fetching {url} did not finish within {}", crate::seconds(*secs))]
    Timeout {
        /// The URL asked for, without its query.
        url: String,
        /// The limit.
        secs: u64,
    },
    /// The connection failed.
    #[error("{url} could not be reached ({cause})")]
    Unreachable {
        /// The URL, without its query.
        url: String,
        /// The innermost error, such as `Connection refused (os error 111)`.
        cause: String,
    },
    /// The HTTP client could not be built.
    #[error("the HTTP client could not be set up")]
    Client,
}

/// What `Accept` says: pages and text first, anything else last (and refused
/// by type when it comes).
const ACCEPTED: &str = "text/html,application/xhtml+xml,text/plain;q=0.9,application/json;q=0.8,text/*;q=0.7,*/*;q=0.1";

/// Fetches pages under the rules in the module's doc.
#[derive(Clone)]
pub struct Fetcher {
    limits: FetchLimits,
    allow: Arc<AllowList>,
    resolver: Arc<dyn Resolve>,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("limits", &self.limits)
            .field("allow", &self.allow)
            .finish_non_exhaustive()
    }
}

impl Fetcher {
    /// A fetcher with these limits and exceptions, resolving names with the
    /// system's resolver.
    pub fn new(limits: FetchLimits, allow: AllowList) -> Self {
        Self::with_resolver(limits, allow, Arc::new(SystemResolver))
    }

    /// The same, resolving names with `resolver` (a [`StaticResolver`] in
    /// tests). Its answers are judged like the system's.
    ///
    /// [`StaticResolver`]: crate::StaticResolver
    pub fn with_resolver(
        limits: FetchLimits,
        allow: AllowList,
        resolver: Arc<dyn Resolve>,
    ) -> Self {
        Self {
            limits,
            allow: Arc::new(allow),
            resolver,
        }
    }

    /// Its limits.
    pub fn limits(&self) -> FetchLimits {
        self.limits
    }

    /// Fetches `url` and reads it as text.
    pub async fn fetch(&self, url: &str) -> Result<Page, FetchError> {
        let requested = target::parse(url)?;
        match tokio::time::timeout(self.limits.timeout, self.follow(requested.clone())).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout {
                url: target::display(&requested),
                secs: self.limits.timeout.as_secs(),
            }),
        }
    }

    async fn follow(&self, requested: Url) -> Result<Page, FetchError> {
        let mut url = requested.clone();
        let mut redirects = 0;
        loop {
            let (target, port) = target::check(&url, &self.allow)?;
            let name_allowed = matches!(target, Target::Name { allowed: true, .. });
            let (guard, refusal) = Guard::new(
                Arc::clone(&self.resolver),
                Arc::clone(&self.allow),
                port,
                name_allowed,
            );
            let client = reqwest::Client::builder()
                .redirect(redirect::Policy::none())
                .no_proxy()
                .dns_resolver(guard)
                .timeout(self.limits.timeout)
                .user_agent(crate::USER_AGENT)
                .referer(false)
                .build()
                .map_err(|_| FetchError::Client)?;
            let response = match client
                .get(url.clone())
                .header(ACCEPT, ACCEPTED)
                .send()
                .await
            {
                Ok(response) => response,
                Err(error) => {
                    if let Some(refused) = refusal.lock().take() {
                        tracing::info!(%refused, "web fetch refused");
                        return Err(FetchError::Refused(refused));
                    }
                    return Err(self.transport(&url, &error));
                }
            };
            let status = response.status();
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                if redirects >= self.limits.max_redirects {
                    return Err(FetchError::TooManyRedirects {
                        url: target::display(&requested),
                        max: self.limits.max_redirects,
                    });
                }
                let bad = || FetchError::BadRedirect {
                    url: target::display(&url),
                };
                let location = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|value| value.to_str().ok())
                    .ok_or_else(bad)?;
                url = url.join(location.trim()).map_err(|_| bad())?;
                redirects += 1;
                continue;
            }
            if !status.is_success() {
                return Err(FetchError::Status {
                    url: target::display(&url),
                    status: status.as_u16(),
                });
            }
            return self.read(requested, url, response).await;
        }
    }

    async fn read(
        &self,
        requested: Url,
        url: Url,
        mut response: reqwest::Response,
    ) -> Result<Page, FetchError> {
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(ContentType::parse)
            .unwrap_or_default();
        // No decompression is built in and none is asked for (no
        // `Accept-Encoding`), so a compressed body would read as garbage.
        let encoding = response
            .headers()
            .get(CONTENT_ENCODING)
            .and_then(|value| value.to_str().ok())
            .map(|value| value.trim().to_ascii_lowercase())
            .filter(|value| !value.is_empty() && value != "identity");
        if let Some(encoding) = encoding {
            return Err(FetchError::Unsupported {
                url: target::display(&url),
                content_type: format!("compressed ({encoding})"),
            });
        }
        let declared = content_type.kind();
        if declared.is_none() && !content_type.essence.is_empty() {
            return Err(FetchError::Unsupported {
                url: target::display(&url),
                content_type: content_type.essence,
            });
        }
        let max = self.limits.max_bytes;
        let mut body = Vec::new();
        let mut cut = false;
        // Chunk by chunk, so a page of any size costs at most `max` bytes.
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| self.transport(&url, &error))?
        {
            let room = max - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                cut = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        drop(response);
        let kind = match declared {
            Some(kind) => kind,
            None => sniff(&body).ok_or_else(|| FetchError::Unsupported {
                url: target::display(&url),
                content_type: "binary data of no stated type".into(),
            })?,
        };
        let text = decode(&body, content_type.charset.as_deref(), kind);
        let (title, text) = match kind {
            Kind::Html => {
                let page = readable::extract(&text, Some(&url));
                (page.title, page.text)
            }
            Kind::Text => (None, text),
        };
        Ok(Page {
            requested,
            url,
            title,
            text,
            cut,
            kind,
        })
    }

    fn transport(&self, url: &Url, error: &reqwest::Error) -> FetchError {
        if error.is_timeout() {
            return FetchError::Timeout {
                url: target::display(url),
                secs: self.limits.timeout.as_secs(),
            };
        }
        let mut cause: &dyn std::error::Error = error;
        while let Some(source) = cause.source() {
            cause = source;
        }
        FetchError::Unreachable {
            url: target::display(url),
            cause: cause.to_string(),
        }
    }
}

/// Where a window into a page's text starts and how long it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Characters skipped.
    pub offset: usize,
    /// Characters shown at most.
    pub max_chars: usize,
}

/// `page` as the model reads it: where it came from, its title, notes on what
/// was left out, then the window of its text.
pub fn render(page: &Page, window: Window) -> String {
    let mut out = format!("URL: {}", page.url);
    if page.url != page.requested {
        out.push_str(&format!(" (redirected from {})", page.requested));
    }
    out.push('\n');
    if let Some(title) = &page.title {
        out.push_str(&format!("Title: {title}\n"));
    }
    let total = page.text.chars().count();
    let start = window.offset.min(total);
    let shown: String = page
        .text
        .chars()
        .skip(start)
        .take(window.max_chars)
        .collect();
    let end = start + shown.chars().count();
    if page.cut {
        out.push_str(
            "Note: the page is larger than the download limit; only its beginning was read.\n",
        );
    }
    if start > 0 || end < total {
        out.push_str(&format!("Showing characters {start}–{end} of {total}."));
        if end < total {
            out.push_str(&format!(" Call again with offset {end} to read on."));
        }
        out.push('\n');
    }
    out.push('\n');
    if shown.trim().is_empty() {
        out.push_str(if total == 0 {
            "(The page has no readable text.)"
        } else {
            "(Nothing past this offset.)"
        });
    } else {
        out.push_str(&shown);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(text: &str) -> Page {
        Page {
            requested: Url::parse("https://a.example/start?token=x").unwrap(),
            url: Url::parse("https://a.example/final").unwrap(),
            title: Some("A title".into()),
            text: text.into(),
            cut: false,
            kind: Kind::Html,
        }
    }

    #[test]
    fn a_short_page_renders_whole() {
        let text = render(
            &page("Hello."),
            Window {
                offset: 0,
                max_chars: 100,
            },
        );
        assert_eq!(
            text,
            "URL: https://a.example/final (redirected from https://a.example/start?token=x)\nTitle: A title\n\nHello."
        );
    }

    #[test]
    fn a_long_page_is_shown_in_windows() {
        let long = page(&"é".repeat(25));
        let first = render(
            &long,
            Window {
                offset: 0,
                max_chars: 10,
            },
        );
        assert!(
            first.contains(
                "Showing characters 0–10 of 25. Call again with offset 10 to read on.\n\néééééééééé"
            ),
            "{first}"
        );
        let last = render(
            &long,
            Window {
                offset: 20,
                max_chars: 10,
            },
        );
        assert!(
            last.contains("Showing characters 20–25 of 25.\n\nééééé"),
            "{last}"
        );
        let past = render(
            &long,
            Window {
                offset: 99,
                max_chars: 10,
            },
        );
        assert!(past.ends_with("(Nothing past this offset.)"), "{past}");
    }

    #[test]
    fn a_cut_or_empty_page_says_so() {
        let mut cut = page("");
        cut.cut = true;
        let text = render(
            &cut,
            Window {
                offset: 0,
                max_chars: 10,
            },
        );
        assert!(text.contains("only its beginning was read"));
        assert!(text.ends_with("(The page has no readable text.)"));
    }
}
