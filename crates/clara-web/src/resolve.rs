//! DNS for fetching: every address a host name resolves to is judged before a
//! connection is made, so a name that points at `127.0.0.1` (or is changed to,
//! between two lookups: DNS rebinding) is refused.
//!
//! The fetcher builds one [`Guard`] per request, knowing the port, around the
//! resolver that does the lookups: the system's ([`SystemResolver`]) or one
//! given for tests and fixed setups ([`StaticResolver`]). The guard hands
//! reqwest only addresses it checked, so reqwest connects to exactly those.

use crate::address::non_public_reason;
use crate::allow::AllowList;
use parking_lot::Mutex;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The system's resolver (`getaddrinfo`, on a blocking thread).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Fixed answers: each name resolves to the addresses given, any other name
/// to nothing. For tests, and for setups that pin hosts.
#[derive(Clone, Debug, Default)]
pub struct StaticResolver {
    hosts: HashMap<String, Vec<IpAddr>>,
}

impl StaticResolver {
    /// No names.
    pub fn new() -> Self {
        Self::default()
    }

    /// `name` resolves to `addrs`.
    pub fn with(mut self, name: &str, addrs: impl IntoIterator<Item = IpAddr>) -> Self {
        self.hosts
            .insert(name.to_ascii_lowercase(), addrs.into_iter().collect());
        self
    }
}

impl Resolve for StaticResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let addrs: Vec<SocketAddr> = self
            .hosts
            .get(&name.as_str().to_ascii_lowercase())
            .into_iter()
            .flatten()
            .map(|ip| SocketAddr::new(*ip, 0))
            .collect();
        Box::pin(std::future::ready(Ok(Box::new(addrs.into_iter()) as Addrs)))
    }
}

/// Why a name was not used: set by the [`Guard`], read by the fetcher, which
/// thus tells "refused" apart from "could not connect" without digging
/// through reqwest's error chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The name resolved to an address that is not public.
    Private {
        /// The name.
        host: String,
        /// The address.
        ip: IpAddr,
        /// What kind of address it is.
        reason: &'static str,
    },
    /// The name resolved to nothing.
    Unresolved {
        /// The name.
        host: String,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Private { host, ip, reason } => write!(
                f,
                "{host} resolves to {ip}, {reason}, which Clara does not fetch"
            ),
            Refusal::Unresolved { host } => write!(f, "{host} could not be resolved"),
        }
    }
}

impl std::error::Error for Refusal {}

/// Judges every address of a name, for one request on one port.
pub struct Guard {
    inner: Arc<dyn Resolve>,
    allow: Arc<AllowList>,
    port: u16,
    name_allowed: bool,
    refusal: Arc<Mutex<Option<Refusal>>>,
}

impl Guard {
    /// A guard over `inner` for a request to `port`; `name_allowed` when the
    /// operator allowed the host name itself. Its refusal, if any, lands in
    /// the returned slot.
    pub fn new(
        inner: Arc<dyn Resolve>,
        allow: Arc<AllowList>,
        port: u16,
        name_allowed: bool,
    ) -> (Self, Arc<Mutex<Option<Refusal>>>) {
        let refusal = Arc::new(Mutex::new(None));
        let guard = Self {
            inner,
            allow,
            port,
            name_allowed,
            refusal: Arc::clone(&refusal),
        };
        (guard, refusal)
    }
}

impl Resolve for Guard {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let lookup = self.inner.resolve(name);
        let allow = Arc::clone(&self.allow);
        let (port, name_allowed) = (self.port, self.name_allowed);
        let slot = Arc::clone(&self.refusal);
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = lookup.await?.collect();
            match judge(&host, &addrs, &allow, port, name_allowed) {
                Ok(()) => Ok(Box::new(addrs.into_iter()) as Addrs),
                Err(refusal) => {
                    *slot.lock() = Some(refusal.clone());
                    Err(Box::new(refusal) as Box<dyn std::error::Error + Send + Sync>)
                }
            }
        })
    }
}

/// Accepts `addrs` for `host` only if there is one and every one is public or
/// allowed: refusing on any bad address (rather than skipping it) keeps a name
/// that mixes a public and a private address from reaching the private one.
pub fn judge(
    host: &str,
    addrs: &[SocketAddr],
    allow: &AllowList,
    port: u16,
    name_allowed: bool,
) -> Result<(), Refusal> {
    if addrs.is_empty() {
        return Err(Refusal::Unresolved {
            host: host.to_owned(),
        });
    }
    if name_allowed {
        return Ok(());
    }
    for addr in addrs {
        let ip = addr.ip();
        if let Some(reason) = non_public_reason(ip)
            && !allow.allows_address(ip, port)
        {
            return Err(Refusal::Private {
                host: host.to_owned(),
                ip,
                reason,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter()
            .map(|ip| SocketAddr::new(ip.parse().unwrap(), 0))
            .collect()
    }

    #[test]
    fn a_name_with_any_private_address_is_refused() {
        let none = AllowList::default();
        assert_eq!(
            judge("a.test", &addrs(&["1.1.1.1"]), &none, 80, false),
            Ok(())
        );
        let refused = judge(
            "evil.test",
            &addrs(&["1.1.1.1", "127.0.0.1"]),
            &none,
            80,
            false,
        )
        .unwrap_err();
        assert_eq!(
            refused.to_string(),
            "evil.test resolves to 127.0.0.1, a loopback address, which Clara does not fetch"
        );
        assert!(matches!(
            judge("none.test", &[], &none, 80, false),
            Err(Refusal::Unresolved { .. })
        ));
    }

    #[test]
    fn allowed_addresses_and_names_pass() {
        let allow = AllowList::parse(["127.0.0.1:8080"]).unwrap();
        assert_eq!(
            judge("site.test", &addrs(&["127.0.0.1"]), &allow, 8080, false),
            Ok(())
        );
        assert!(judge("site.test", &addrs(&["127.0.0.1"]), &allow, 22, false).is_err());
        assert_eq!(
            judge("wiki.lan", &addrs(&["10.0.0.5"]), &allow, 80, true),
            Ok(())
        );
    }
}
