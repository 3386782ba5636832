//! clara-web against fakes of the services it talks to, served by axum on
//! 127.0.0.1: Tavily, Brave Search and SearXNG speaking their real JSON, and
//! a website with pages, redirects, a huge and a slow page and non-HTML
//! types — including the SSRF cases (a redirect to 127.0.0.1, a name that
//! resolves to a private address).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod fakes;
mod fetch;
mod search;
