//! The client's address: the TCP peer, or, when the peer is a trusted
//! reverse proxy, the address the proxy reports. One rule for policies,
//! key address limits and logs.

use std::net::IpAddr;

use http::{HeaderMap, HeaderValue};

use crate::iam::Cidr;

fn trusted(address: IpAddr, proxies: &[Cidr]) -> bool {
    proxies.iter().any(|cidr| cidr.contains(address))
}

/// Addresses a proxy chain reports, nearest last: `X-Forwarded-For`, or
/// the `for=` parameters of `Forwarded` (RFC 7239).
fn forwarded_chain(headers: &HeaderMap) -> Vec<IpAddr> {
    let x_forwarded_for: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|item| item.trim().parse().ok())
        .collect();
    if !x_forwarded_for.is_empty() {
        return x_forwarded_for;
    }
    headers
        .get_all("forwarded")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split([',', ';']))
        .filter_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            if !name.trim().eq_ignore_ascii_case("for") {
                return None;
            }
            let value = value.trim().trim_matches('"');
            // `[v6]:port`, `[v6]`, `v4:port` or a bare address.
            let host = match value.strip_prefix('[') {
                Some(rest) => rest.split(']').next().unwrap_or_default(),
                None => value.split(':').next().unwrap_or_default(),
            };
            host.parse().ok()
        })
        .collect()
}

/// The host the client asked for, as a trusted reverse proxy that
/// rewrote `Host` reports it (`X-Forwarded-Host`, or `host=` in
/// `Forwarded`): what the client signed, so what SigV4 must canonicalise.
pub fn forwarded_host(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[Cidr]) -> Option<HeaderValue> {
    if !trusted(peer, trusted_proxies) {
        return None;
    }
    let first =
        |value: &str| value.split(',').next().map(str::trim).filter(|host| !host.is_empty()).map(str::to_string);
    let host = headers.get("x-forwarded-host").and_then(|value| value.to_str().ok()).and_then(first).or_else(|| {
        headers.get_all("forwarded").iter().filter_map(|value| value.to_str().ok()).find_map(|value| {
            value.split([',', ';']).find_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                name.trim().eq_ignore_ascii_case("host").then(|| value.trim().trim_matches('"').to_string())
            })
        })
    })?;
    HeaderValue::from_str(&host).ok()
}

/// Where a request comes from, as far as larder can tell.
#[derive(Debug, Clone, Copy)]
pub struct Origin {
    pub address: IpAddr,
    /// The connection's own address (a proxy's, when one is between).
    pub peer: IpAddr,
    /// Reached over TLS: only a trusted proxy can say so
    /// (`X-Forwarded-Proto: https` or `Forwarded: proto=https`).
    pub secure: bool,
}

impl Origin {
    pub fn of(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[Cidr]) -> Origin {
        let secure = trusted(peer, trusted_proxies)
            && (headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
                || headers
                    .get_all("forwarded")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .any(|v| v.to_ascii_lowercase().replace(' ', "").contains("proto=https")));
        Origin { address: client_address(peer, headers, trusted_proxies), peer, secure }
    }
}

/// The address a request comes from. Only a trusted proxy is believed,
/// and only as far as the chain stays within trusted proxies.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[Cidr]) -> IpAddr {
    if !trusted(peer, trusted_proxies) {
        return peer;
    }
    let chain = forwarded_chain(headers);
    for address in chain.iter().rev() {
        if !trusted(*address, trusted_proxies) {
            return *address;
        }
    }
    chain.first().copied().unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn only_trusted_proxies_are_believed() {
        let proxies: Vec<Cidr> = vec!["127.0.0.1".parse().unwrap(), "10.0.0.0/8".parse().unwrap()];
        let spoofed = headers(&[("x-forwarded-for", "6.6.6.6")]);
        let stranger: IpAddr = "192.168.1.9".parse().unwrap();
        assert_eq!(client_address(stranger, &spoofed, &proxies), stranger);
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let chain = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.1.1.1")]);
        assert_eq!(client_address(proxy, &chain, &proxies), "203.0.113.7".parse::<IpAddr>().unwrap());
        let forwarded = headers(&[("forwarded", "for=\"[2001:db8::1]:4711\";proto=https, for=10.0.0.2")]);
        assert_eq!(client_address(proxy, &forwarded, &proxies), "2001:db8::1".parse::<IpAddr>().unwrap());
        assert_eq!(client_address(proxy, &HeaderMap::new(), &proxies), proxy);
        assert_eq!(client_address(proxy, &spoofed, &[]), proxy);
    }
}
