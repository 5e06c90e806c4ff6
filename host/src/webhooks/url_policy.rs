//! Which URLs webhooks may be sent to. Addresses on the host itself, on private networks and
//! link-local ones (cloud metadata services live there) are refused unless
//! `webhook-allow-private` is set: a tenant's operator must not be able to make the server
//! probe its own network. Checked when an endpoint is added (literal addresses, and host names
//! that resolve then) and again on every delivery on the addresses actually connected to
//! ([`PolicyResolver`]), so a name that later resolves elsewhere (DNS rebinding) gets nowhere.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use reqwest::Url;

/// Why a URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not an absolute http(s) URL with a host.
    #[error("webhook URL {0:?} must be an absolute http:// or https:// URL with a host")]
    Malformed(String),
    /// User name or password in the URL: they would be shown in listings.
    #[error("webhook URL must not carry a user name or password")]
    Credentials,
    /// The URL's host is (or resolves to) an address of a refused kind.
    #[error(
        "webhook URL host {host} is {kind} address {addr}: refused unless webhook-allow-private \
         is set"
    )]
    Private {
        /// The host as written.
        host: String,
        /// The address.
        addr: IpAddr,
        /// What kind of address.
        kind: &'static str,
    },
}

/// What kind of refused address `ip` is, `None` for a public one.
pub fn refused_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4_kind(v4);
            }
            let seg = v6.segments();
            // NAT64 (64:ff9b::/96) reaches the embedded IPv4 address.
            if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = seg[6].to_be_bytes();
                let [c, d] = seg[7].to_be_bytes();
                return v4_kind(Ipv4Addr::new(a, b, c, d));
            }
            if v6.is_loopback() {
                Some("a loopback")
            } else if v6.is_unspecified() {
                Some("an unspecified")
            } else if v6.is_multicast() {
                Some("a multicast")
            } else if seg[0] & 0xffc0 == 0xfe80 || seg[0] & 0xffc0 == 0xfec0 {
                Some("a link-local")
            } else if seg[0] & 0xfe00 == 0xfc00 {
                Some("a private (unique local)")
            } else if v6 == Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1) {
                Some("a loopback")
            } else {
                None
            }
        }
    }
}

fn v4_kind(v4: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = v4.octets();
    if v4.is_loopback() {
        Some("a loopback")
    } else if v4.is_private() {
        Some("a private")
    } else if v4.is_link_local() {
        Some("a link-local")
    } else if v4.is_unspecified() || a == 0 {
        Some("an unspecified")
    } else if v4.is_multicast() {
        Some("a multicast")
    } else if v4.is_broadcast() || a >= 240 {
        Some("a reserved")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a private (carrier-grade NAT)")
    } else if a == 198 && (b == 18 || b == 19) {
        Some("a private (benchmarking)")
    } else if a == 192 && b == 0 && c == 0 {
        Some("a reserved (IETF protocol)")
    } else {
        None
    }
}

/// Whether private addresses are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UrlPolicy {
    /// `webhook-allow-private`: allow every address (tests, receivers on the same host).
    pub allow_private: bool,
}

impl UrlPolicy {
    /// Checks an address about to be connected to.
    pub fn check_addr(&self, host: &str, addr: IpAddr) -> Result<(), UrlError> {
        match refused_kind(addr) {
            Some(kind) if !self.allow_private => Err(UrlError::Private {
                host: host.to_owned(),
                addr,
                kind,
            }),
            _ => Ok(()),
        }
    }

    /// Parses and checks a URL without resolving names: its shape, and its host if it is an
    /// address (reqwest connects to literal addresses without asking the resolver).
    pub fn check_shape(&self, url: &str) -> Result<Url, UrlError> {
        let parsed = Url::parse(url).map_err(|_| UrlError::Malformed(url.to_owned()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(UrlError::Malformed(url.to_owned()));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(UrlError::Credentials);
        }
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            Some(url::Host::Domain(_)) => None,
            None => return Err(UrlError::Malformed(url.to_owned())),
        };
        if let Some(ip) = literal {
            self.check_addr(parsed.host_str().unwrap_or_default(), ip)?;
        }
        Ok(parsed)
    }

    /// [`UrlPolicy::check_shape`], then every address the host name resolves to now (a name
    /// that does not resolve yet is accepted: delivery checks again). Blocking.
    pub fn check_at_add(&self, url: &str) -> Result<Url, UrlError> {
        let parsed = self.check_shape(url)?;
        if let (Some(url::Host::Domain(host)), false) = (parsed.host(), self.allow_private) {
            let port = parsed.port_or_known_default().unwrap_or(443);
            if let Ok(addrs) = (host, port).to_socket_addrs() {
                for addr in addrs {
                    self.check_addr(host, addr.ip())?;
                }
            }
        }
        Ok(parsed)
    }
}

/// reqwest's resolver for webhook deliveries: the system's answer, without the addresses the
/// policy refuses, so a connection can only go to an allowed address.
#[derive(Debug, Clone)]
pub struct PolicyResolver {
    /// The policy applied.
    pub policy: UrlPolicy,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match policy.check_addr(&host, a.ip()) {
                    Ok(()) => true,
                    Err(e) => {
                        refused = Some(e);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let why: Box<dyn std::error::Error + Send + Sync> = match refused {
                    Some(e) => Box::new(e),
                    None => format!("{host} does not resolve").into(),
                };
                return Err(why);
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_and_link_local_addresses_are_refused() {
        let refused = [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ];
        for a in refused {
            let ip: IpAddr = a.parse().unwrap();
            assert!(refused_kind(ip).is_some(), "{a}");
        }
        for a in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "172.32.0.1"] {
            let ip: IpAddr = a.parse().unwrap();
            assert_eq!(refused_kind(ip), None, "{a}");
        }
    }

    #[test]
    fn urls_are_checked_unless_private_addresses_are_allowed() {
        let strict = UrlPolicy::default();
        let open = UrlPolicy {
            allow_private: true,
        };
        for url in [
            "http://127.0.0.1:9000/hook",
            "http://[::1]/hook",
            "https://169.254.169.254/latest/meta-data",
            "http://localhost:8080/hook",
        ] {
            assert!(
                matches!(strict.check_at_add(url), Err(UrlError::Private { .. })),
                "{url}"
            );
            assert!(open.check_at_add(url).is_ok(), "{url}");
        }
        assert!(strict.check_at_add("https://203.0.113.9/hook").is_ok());
        for bad in [
            "ftp://example.com/x",
            "not a url",
            "/relative",
            "mailto:a@b",
        ] {
            assert!(
                matches!(open.check_at_add(bad), Err(UrlError::Malformed(_))),
                "{bad}"
            );
        }
        assert_eq!(
            open.check_at_add("https://u:p@example.com/"),
            Err(UrlError::Credentials)
        );
    }

    #[tokio::test]
    async fn the_resolver_drops_refused_addresses() {
        use reqwest::dns::Resolve as _;
        let strict = PolicyResolver {
            policy: UrlPolicy::default(),
        };
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let err = strict.resolve(name).await.err().expect("refused");
        assert!(err.to_string().contains("loopback"), "{err}");
        let open = PolicyResolver {
            policy: UrlPolicy {
                allow_private: true,
            },
        };
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        assert!(open.resolve(name).await.is_ok());
    }
}
