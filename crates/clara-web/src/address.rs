//! Which IP addresses a fetch may never reach: everything that is not the
//! public internet.
//!
//! A page the model asks for could name (or redirect to, or resolve to) the
//! machine Clara runs on, its local network or a cloud metadata service
//! (`169.254.169.254`). Those are refused unless the operator allowed them
//! ([`AllowList`](crate::AllowList)).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why `ip` is not a public address, or `None` when it is one.
pub fn non_public_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

/// Whether `ip` is on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    non_public_reason(ip).is_none()
}

/// Each IPv4 range that is not public, with the reason given for it.
const V4_RANGES: &[([u8; 4], u8, &str)] = &[
    ([0, 0, 0, 0], 8, "an unspecified (\"this network\") address"),
    ([10, 0, 0, 0], 8, "a private address"),
    ([100, 64, 0, 0], 10, "a shared (carrier-grade NAT) address"),
    ([127, 0, 0, 0], 8, "a loopback address"),
    ([169, 254, 0, 0], 16, "a link-local address"),
    ([172, 16, 0, 0], 12, "a private address"),
    ([192, 0, 0, 0], 24, "a reserved protocol address"),
    ([192, 0, 2, 0], 24, "a documentation address"),
    ([192, 88, 99, 0], 24, "a reserved relay address"),
    ([192, 168, 0, 0], 16, "a private address"),
    ([198, 18, 0, 0], 15, "a benchmarking address"),
    ([198, 51, 100, 0], 24, "a documentation address"),
    ([203, 0, 113, 0], 24, "a documentation address"),
    ([224, 0, 0, 0], 4, "a multicast address"),
    // 240/4 holds the broadcast address 255.255.255.255 too.
    ([240, 0, 0, 0], 4, "a reserved or broadcast address"),
];

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let bits = u32::from(ip);
    V4_RANGES
        .iter()
        .find(|(net, len, _)| prefix_matches_v4(bits, u32::from_be_bytes(*net), *len))
        .map(|(_, _, reason)| *reason)
}

fn prefix_matches_v4(bits: u32, net: u32, len: u8) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    bits & mask == net & mask
}

fn prefix_matches_v6(bits: u128, net: u128, len: u8) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    bits & mask == net & mask
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let bits = u128::from(ip);
    if ip.is_unspecified() {
        return Some("an unspecified address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    // An IPv4 address written as IPv6 reaches that IPv4 address: judge it as one.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_reason(v4);
    }
    // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
    if prefix_matches_v6(bits, 0x0064_ff9b_0000_0000_0000_0000_0000_0000, 96) {
        return v4_reason(Ipv4Addr::from(bits as u32));
    }
    // 6to4 (2002::/16) carries an IPv4 address in bits 16..48.
    if prefix_matches_v6(bits, 0x2002_0000_0000_0000_0000_0000_0000_0000, 16) {
        return v4_reason(Ipv4Addr::from((bits >> 80) as u32));
    }
    let ranges: &[(u128, u8, &str)] = &[
        // IPv4-compatible addresses (deprecated): nothing public uses them.
        (0, 96, "a deprecated IPv4-compatible address"),
        (
            0x0064_ff9b_0001_0000_0000_0000_0000_0000,
            48,
            "a local-use NAT64 address",
        ),
        (
            0x0100_0000_0000_0000_0000_0000_0000_0000,
            64,
            "a discard-only address",
        ),
        // Includes Teredo (2001::/32), whose IPv4 part is obscured.
        (
            0x2001_0000_0000_0000_0000_0000_0000_0000,
            23,
            "a reserved protocol address",
        ),
        (
            0x2001_0db8_0000_0000_0000_0000_0000_0000,
            32,
            "a documentation address",
        ),
        (
            0x3fff_0000_0000_0000_0000_0000_0000_0000,
            20,
            "a documentation address",
        ),
        (
            0xfc00_0000_0000_0000_0000_0000_0000_0000,
            7,
            "a unique-local (private) address",
        ),
        (
            0xfe80_0000_0000_0000_0000_0000_0000_0000,
            10,
            "a link-local address",
        ),
        (
            0xfec0_0000_0000_0000_0000_0000_0000_0000,
            10,
            "a site-local (private) address",
        ),
        (
            0xff00_0000_0000_0000_0000_0000_0000_0000,
            8,
            "a multicast address",
        ),
    ];
    ranges
        .iter()
        .find(|(net, len, _)| prefix_matches_v6(bits, *net, *len))
        .map(|(_, _, reason)| *reason)
}

/// A network: an address and how many leading bits of it count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `10.0.0.0/8`, `fd00::/8` or a single address (all its bits count).
    pub fn parse(text: &str) -> Option<Self> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr.parse::<IpAddr>().ok()?, Some(prefix.parse().ok()?)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { addr, prefix })
    }

    /// Whether `ip` is in it. An IPv4-mapped IPv6 address counts as its IPv4
    /// address, as it reaches the same host.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_matches_v4(u32::from(ip), u32::from(net), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_matches_v6(u128::from(ip), u128::from(net), self.prefix)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(text: &str) -> Option<&'static str> {
        non_public_reason(text.parse().unwrap())
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.215.14",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "2002:0808:0808::1",
            "64:ff9b::808:808",
        ] {
            assert_eq!(reason(ip), None, "{ip}");
        }
    }

    #[test]
    fn private_loopback_link_local_and_the_rest_are_refused() {
        let cases = [
            ("127.0.0.1", "loopback"),
            ("127.255.1.2", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "carrier-grade"),
            ("0.0.0.0", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("192.0.2.1", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.9", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("fe80::1", "link-local"),
            ("fc00::1", "unique-local"),
            ("fd12:3456::1", "unique-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "private"),
            ("::ffff:169.254.169.254", "link-local"),
            ("64:ff9b::7f00:1", "loopback"),
            ("2002:7f00:0001::1", "loopback"),
            ("2002:c0a8:0101::1", "private"),
            ("::127.0.0.1", "IPv4-compatible"),
            ("2001::1", "reserved"),
        ];
        for (ip, word) in cases {
            let why = reason(ip).unwrap_or_else(|| panic!("{ip} passed"));
            assert!(why.contains(word), "{ip}: {why}");
        }
    }

    #[test]
    fn networks_parse_and_contain() {
        let net = Network::parse("10.0.0.0/8").unwrap();
        assert!(net.contains("10.200.3.4".parse().unwrap()));
        assert!(net.contains("::ffff:10.0.0.9".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        let one = Network::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let v6 = Network::parse("fd00::/8").unwrap();
        assert!(v6.contains("fd00::5".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        assert_eq!(Network::parse("10.0.0.0/33"), None);
        assert_eq!(Network::parse("example.com"), None);
        assert!(
            Network::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
    }
}
