//! The operator's exceptions to the private-address rule (`allow_private`).
//!
//! An entry is one of:
//! - an address or network, any port: `192.168.1.20`, `10.0.0.0/8`, `fd00::/8`;
//! - an address and one port: `127.0.0.1:8080`, `[::1]:8080`;
//! - a host name, any port or one: `wiki.lan`, `wiki.lan:8080` — that name may
//!   resolve to private addresses (its IP literal is still judged by address).
//!
//! A model can only reach what is listed here, so an entry should name the one
//! service meant, with its port.

use crate::address::Network;
use std::net::{IpAddr, SocketAddr};

/// One exception.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    /// Addresses in a network, on one port or any.
    Net { net: Network, port: Option<u16> },
    /// A host name, on one port or any.
    Name { name: String, port: Option<u16> },
}

/// The exceptions, parsed. Empty by default: nothing private is reachable.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<Entry>,
}

impl AllowList {
    /// Parses the entries; the error is the first entry that is none of the
    /// forms above, quoted.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        entries
            .into_iter()
            .map(|text| parse_entry(text.trim()).ok_or_else(|| text.to_owned()))
            .collect::<Result<Vec<_>, _>>()
            .map(|entries| Self { entries })
    }

    /// Whether nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `ip` may be reached on `port` although it is not public.
    pub fn allows_address(&self, ip: IpAddr, port: u16) -> bool {
        self.entries.iter().any(|entry| match entry {
            Entry::Net { net, port: p } => net.contains(ip) && p.is_none_or(|p| p == port),
            Entry::Name { .. } => false,
        })
    }

    /// Whether host name `host` may resolve to non-public addresses when
    /// reached on `port`.
    pub fn allows_name(&self, host: &str, port: u16) -> bool {
        let host = host.trim_end_matches('.');
        self.entries.iter().any(|entry| match entry {
            Entry::Name { name, port: p } => {
                name.eq_ignore_ascii_case(host) && p.is_none_or(|p| p == port)
            }
            Entry::Net { .. } => false,
        })
    }
}

fn parse_entry(text: &str) -> Option<Entry> {
    if text.is_empty() {
        return None;
    }
    if let Some(net) = Network::parse(text) {
        return Some(Entry::Net { net, port: None });
    }
    if let Ok(socket) = text.parse::<SocketAddr>() {
        return Some(Entry::Net {
            net: Network::parse(&socket.ip().to_string())?,
            port: Some(socket.port()),
        });
    }
    let (name, port) = match text.rsplit_once(':') {
        Some((name, port)) => (name, Some(port.parse::<u16>().ok()?)),
        None => (text, None),
    };
    let name = name.trim_end_matches('.');
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    valid.then(|| Entry::Name {
        name: name.to_ascii_lowercase(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn addresses_networks_and_ports() {
        let list = AllowList::parse([
            "127.0.0.1:8080",
            "10.0.0.0/8",
            " 192.168.1.20 ",
            "[::1]:9000",
        ])
        .unwrap();
        assert!(list.allows_address(ip("127.0.0.1"), 8080));
        assert!(!list.allows_address(ip("127.0.0.1"), 8081));
        assert!(!list.allows_address(ip("127.0.0.2"), 8080));
        assert!(list.allows_address(ip("10.9.8.7"), 22));
        assert!(list.allows_address(ip("192.168.1.20"), 443));
        assert!(!list.allows_address(ip("192.168.1.21"), 443));
        assert!(list.allows_address(ip("::1"), 9000));
        assert!(!list.allows_address(ip("::1"), 9001));
        assert!(!list.allows_name("localhost", 8080));
    }

    #[test]
    fn names_with_and_without_a_port() {
        let list = AllowList::parse(["wiki.lan", "Intranet.Example:8443"]).unwrap();
        assert!(list.allows_name("wiki.lan", 80));
        assert!(list.allows_name("WIKI.lan.", 8080));
        assert!(list.allows_name("intranet.example", 8443));
        assert!(!list.allows_name("intranet.example", 443));
        assert!(!list.allows_name("evil.lan", 80));
        assert!(!list.allows_address(ip("10.0.0.1"), 80));
    }

    #[test]
    fn a_malformed_entry_is_named() {
        assert_eq!(
            AllowList::parse(["10.0.0.0/8", "http://x/"]),
            Err("http://x/".to_owned())
        );
        assert!(AllowList::parse(["host:99999"]).is_err());
        assert!(AllowList::parse(["10.0.0.0/40"]).is_err());
        assert!(AllowList::parse([""]).is_err());
        assert!(AllowList::parse(Vec::<&str>::new()).unwrap().is_empty());
    }
}
