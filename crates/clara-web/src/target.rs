//! The checks every URL passes before it is requested: the first one and
//! each redirect's.
//!
//! Only `http` and `https`, no user name or password in the URL (they would be
//! sent as credentials, and can disguise the real host to a person reading
//! it), and a host. A host written as an IP address is judged here, since no
//! DNS lookup happens for it; a host name is judged by the addresses it
//! resolves to, when the request is made ([`crate::resolve`]).

use crate::address::non_public_reason;
use crate::allow::AllowList;
use reqwest::Url;
use std::net::IpAddr;

/// Why a URL may not be fetched.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The text is not a URL.
    #[error("{0:?} is not a valid URL")]
    Invalid(String),
    /// A scheme other than http and https.
    #[error("only http and https URLs can be fetched, not {0}:")]
    Scheme(String),
    /// A user name or password in the URL.
    #[error("URLs with a user name or password in them are not fetched")]
    Credentials,
    /// No host.
    #[error("the URL has no host")]
    NoHost,
    /// The host is an address that is not public.
    #[error("{host} is {reason}, which Clara does not fetch")]
    Private {
        /// The host as written in the URL.
        host: String,
        /// What kind of address it is.
        reason: &'static str,
    },
}

/// Where a checked URL goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// An IP address, already judged.
    Address(IpAddr),
    /// A host name, to be judged by what it resolves to; `allowed` when the
    /// operator listed it (on this port).
    Name {
        /// The name, lowercase, without a trailing dot.
        name: String,
        /// Whether it may resolve to non-public addresses.
        allowed: bool,
    },
}

/// Parses `text` as a URL that may be fetched.
pub fn parse(text: &str) -> Result<Url, TargetError> {
    Url::parse(text.trim()).map_err(|_| TargetError::Invalid(text.trim().to_owned()))
}

/// Checks `url` against the rules above; where it goes, and its port.
pub fn check(url: &Url, allow: &AllowList) -> Result<(Target, u16), TargetError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TargetError::Scheme(url.scheme().to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Credentials);
    }
    let port = url.port_or_known_default().ok_or(TargetError::NoHost)?;
    let target = match url.host() {
        None => return Err(TargetError::NoHost),
        Some(url::Host::Ipv4(v4)) => Target::Address(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Target::Address(IpAddr::V6(v6)),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name.is_empty() {
                return Err(TargetError::NoHost);
            }
            Target::Name {
                allowed: allow.allows_name(&name, port),
                name,
            }
        }
    };
    if let Target::Address(ip) = target
        && let Some(reason) = non_public_reason(ip)
        && !allow.allows_address(ip, port)
    {
        return Err(TargetError::Private {
            host: url.host_str().unwrap_or_default().to_owned(),
            reason,
        });
    }
    Ok((target, port))
}

/// `url` without its query and fragment, for messages: a query can carry
/// tokens the model should not see echoed in an error.
pub fn display(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(text: &str, allow: &AllowList) -> Result<(Target, u16), TargetError> {
        check(&parse(text)?, allow)
    }

    #[test]
    fn http_and_https_to_public_hosts_pass() {
        let none = AllowList::default();
        assert_eq!(
            checked("https://Example.COM./a?b", &none).unwrap(),
            (
                Target::Name {
                    name: "example.com".into(),
                    allowed: false
                },
                443
            )
        );
        assert_eq!(
            checked("http://1.1.1.1:8080/", &none).unwrap(),
            (Target::Address("1.1.1.1".parse().unwrap()), 8080)
        );
    }

    #[test]
    fn other_schemes_and_credentials_are_refused() {
        let none = AllowList::default();
        for url in [
            "file:///etc/passwd",
            "ftp://example.com/",
            "gopher://example.com/",
            "data:text/html,hi",
        ] {
            assert!(
                matches!(checked(url, &none), Err(TargetError::Scheme(_))),
                "{url}"
            );
        }
        assert_eq!(
            checked("https://user:pw@example.com/", &none),
            Err(TargetError::Credentials)
        );
        assert_eq!(
            checked("https://example.com@evil.test/", &none),
            Err(TargetError::Credentials)
        );
        assert!(matches!(
            checked("not a url", &none),
            Err(TargetError::Invalid(_))
        ));
    }

    #[test]
    fn private_ip_literals_are_refused_in_every_spelling() {
        let none = AllowList::default();
        for url in [
            "http://127.0.0.1/",
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f.0.0.1/",
            "http://0177.0.0.1/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/",
            "http://0.0.0.0/",
            "http://[fe80::1]/",
        ] {
            let refused = checked(url, &none);
            assert!(
                matches!(refused, Err(TargetError::Private { .. })),
                "{url}: {refused:?}"
            );
        }
        let message = checked("http://169.254.169.254/", &none)
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            "169.254.169.254 is a link-local address, which Clara does not fetch"
        );
    }

    #[test]
    fn the_allow_list_opens_one_address_and_port_or_a_name() {
        let allow = AllowList::parse(["127.0.0.1:8080", "wiki.lan"]).unwrap();
        assert!(checked("http://127.0.0.1:8080/x", &allow).is_ok());
        assert!(checked("http://127.0.0.1:8081/x", &allow).is_err());
        assert_eq!(
            checked("http://wiki.lan/", &allow).unwrap().0,
            Target::Name {
                name: "wiki.lan".into(),
                allowed: true
            }
        );
    }

    #[test]
    fn display_drops_the_query() {
        let url = parse("https://example.com/a?token=secret#frag").unwrap();
        assert_eq!(display(&url), "https://example.com/a");
    }
}
