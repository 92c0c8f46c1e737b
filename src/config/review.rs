//! `[review]`: the clinician review web application.
//!
//! The server listens on loopback unless told otherwise. A non-loopback
//! address needs TLS (`tls_cert` and `tls_key`), or
//! `allow_plain_http = true` for a deployment that terminates TLS in front
//! of rxsync: session cookies and passwords must not cross a network in
//! clear text by accident.

use super::ConfigError;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `[review]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReview {
    /// The address to listen on (default `127.0.0.1:8080`).
    pub listen: Option<String>,
    /// PEM certificate chain; with `tls_key`, the server speaks HTTPS only.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<PathBuf>,
    /// Minutes a login session lasts (default 480).
    pub session_minutes: Option<u64>,
    /// Allow a non-loopback `listen` without TLS (TLS ends in a proxy in front).
    pub allow_plain_http: Option<bool>,
    /// Proxies (addresses or CIDR ranges) whose `X-Forwarded-For` names the
    /// client; from any other peer the header is ignored.
    pub trusted_proxies: Option<Vec<String>>,
    /// Where patients' browsers reach the review app (`https://rxsync.example.org`):
    /// invitation URLs and the consent callback (`/oauth/callback`) are under it.
    pub public_url: Option<String>,
}

/// The review server's settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewConfig {
    pub listen: SocketAddr,
    /// Certificate chain and key files (absolute), when serving HTTPS.
    pub tls: Option<TlsFiles>,
    /// How long a login session lasts.
    pub session_lifetime: Duration,
    /// A non-loopback `listen` without TLS was allowed.
    pub allow_plain_http: bool,
    /// `trusted_proxies`: only these peers' `X-Forwarded-For` is believed
    /// (for the login throttle's per-address count).
    pub trusted_proxies: Vec<IpRange>,
    /// `public_url`: the app's address as patients' browsers reach it; none,
    /// no invitation or browser consent can be made.
    pub public_url: Option<PublicUrl>,
}

/// The review app's public address: http(s), a host, no user info, query
/// or fragment; kept without a trailing slash so paths are appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(url::Url);

impl PublicUrl {
    pub fn parse(text: &str) -> Result<PublicUrl, String> {
        let url = url::Url::parse(text.trim())
            .map_err(|e| format!("{text:?} is not an absolute URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!(
                "{text:?} must be an http(s) URL with a host, such as https://rxsync.example.org"
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry a user name or password".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("{text:?} must have no query and no fragment"));
        }
        Ok(PublicUrl(url))
    }

    /// `path` (starting with `/`) under the public URL.
    pub fn join(&self, path: &str) -> url::Url {
        let mut url = self.0.clone();
        let base = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{base}{path}"));
        url
    }

    /// Where providers send the browser back after a consent.
    pub fn callback(&self) -> url::Url {
        self.join("/oauth/callback")
    }
}

/// An address range (`10.0.0.0/8`, `::1/128`; a bare address is one host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Reads `ADDRESS` or `ADDRESS/PREFIX`.
    pub fn parse(text: &str) -> Result<IpRange, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR range"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix must be 0 to {max}"))?,
        };
        Ok(IpRange { network, prefix })
    }

    /// Whether `addr` is in the range (an IPv4-mapped IPv6 peer counts as IPv4).
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        let (a, n, bits) = match (addr, self.network) {
            (IpAddr::V4(a), IpAddr::V4(n)) => {
                (u128::from(u32::from(a)), u128::from(u32::from(n)), 32)
            }
            (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
            _ => return false,
        };
        let host_bits = bits - u32::from(self.prefix);
        if host_bits >= 128 {
            return true;
        }
        (a >> host_bits) == (n >> host_bits)
    }
}

impl ReviewConfig {
    /// The same settings on another address (`--listen`), checked by the
    /// same rule as the file's `listen`.
    pub fn with_listen(&self, listen: SocketAddr) -> Result<ReviewConfig, String> {
        check_plain(listen, self.tls.is_some(), self.allow_plain_http)?;
        Ok(ReviewConfig {
            listen,
            ..self.clone()
        })
    }
}

/// A non-loopback address needs TLS, unless plain HTTP was allowed.
fn check_plain(listen: SocketAddr, tls: bool, allowed: bool) -> Result<(), String> {
    if tls || allowed || listen.ip().is_loopback() {
        return Ok(());
    }
    Err(format!(
        "{listen} is not a loopback address: set tls_cert and tls_key, or allow_plain_http = true when TLS ends in a proxy in front of rxsync"
    ))
}

/// Where the TLS certificate chain and key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_SESSION_MINUTES: u64 = 480;

impl Default for ReviewConfig {
    fn default() -> ReviewConfig {
        ReviewConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls: None,
            session_lifetime: Duration::from_secs(DEFAULT_SESSION_MINUTES * 60),
            allow_plain_http: false,
            trusted_proxies: Vec::new(),
            public_url: None,
        }
    }
}

/// Resolves `[review]` (`RXSYNC_REVIEW_LISTEN` overrides `listen`).
pub fn resolve_review(
    raw: RawReview,
    origin: &str,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ReviewConfig, ConfigError> {
    let value = |key: &'static str, problem: String| ConfigError::Value {
        origin: origin.to_string(),
        key,
        problem,
    };
    let (listen_text, listen_origin) = match env("RXSYNC_REVIEW_LISTEN").filter(|v| !v.is_empty()) {
        Some(v) => (v, "environment RXSYNC_REVIEW_LISTEN".to_string()),
        None => (
            raw.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string()),
            origin.to_string(),
        ),
    };
    let listen = parse_listen(&listen_text).map_err(|problem| ConfigError::Value {
        origin: listen_origin,
        key: "review.listen",
        problem,
    })?;
    let tls = match (raw.tls_cert, raw.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: base.join(cert),
            key: base.join(key),
        }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(value(
                "review.tls_key",
                "is missing (tls_cert is set)".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(value(
                "review.tls_cert",
                "is missing (tls_key is set)".into(),
            ));
        }
    };
    let allow_plain_http = raw.allow_plain_http == Some(true);
    check_plain(listen, tls.is_some(), allow_plain_http)
        .map_err(|problem| value("review.listen", problem))?;
    let minutes = raw.session_minutes.unwrap_or(DEFAULT_SESSION_MINUTES);
    if minutes == 0 || minutes > 60 * 24 * 30 {
        return Err(value(
            "review.session_minutes",
            "must be between 1 and 43200 (30 days)".into(),
        ));
    }
    Ok(ReviewConfig {
        listen,
        tls,
        session_lifetime: Duration::from_secs(minutes * 60),
        allow_plain_http,
        trusted_proxies: raw
            .trusted_proxies
            .unwrap_or_default()
            .iter()
            .map(|t| IpRange::parse(t))
            .collect::<Result<_, _>>()
            .map_err(|problem| value("review.trusted_proxies", problem))?,
        public_url: raw
            .public_url
            .as_deref()
            .map(PublicUrl::parse)
            .transpose()
            .map_err(|problem| value("review.public_url", problem))?,
    })
}

/// `HOST:PORT` with an IP address (`[::1]:8080` for IPv6).
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.trim()
        .parse::<SocketAddr>()
        .map_err(|_| format!("{text:?} is not an IP address and port (such as 127.0.0.1:8080)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn raw(text: &str) -> RawReview {
        toml::from_str(text).expect("valid [review]")
    }

    #[test]
    fn public_url_is_an_http_address_and_names_its_callback() {
        let ok = |text: &str| {
            resolve_review(raw(text), "f", Path::new("/srv"), &no_env)
                .unwrap_or_else(|e| panic!("{text}: {e}"))
                .public_url
                .expect("set")
        };
        let u = ok("public_url = \"https://rxsync.example.org\"\n");
        assert_eq!(
            u.callback().as_str(),
            "https://rxsync.example.org/oauth/callback"
        );
        let u = ok("public_url = \"http://127.0.0.1:8080/rx/\"\n");
        assert_eq!(
            u.join("/invite/x").as_str(),
            "http://127.0.0.1:8080/rx/invite/x"
        );
        for bad in [
            "rxsync.example.org",
            "ftp://rxsync.example.org",
            "https://user:pw@rxsync.example.org",
            "https://rxsync.example.org/?a=b",
        ] {
            let e = resolve_review(
                raw(&format!("public_url = \"{bad}\"\n")),
                "f",
                Path::new("/srv"),
                &no_env,
            )
            .expect_err(bad);
            assert!(e.to_string().contains("review.public_url"), "{e}");
            assert!(!e.to_string().contains("pw"), "{e}");
        }
    }

    #[test]
    fn trusted_proxies_are_addresses_or_ranges() {
        let rows: &[(&str, &str, bool)] = &[
            ("127.0.0.1", "127.0.0.1", true),
            ("127.0.0.1", "127.0.0.2", false),
            ("10.0.0.0/8", "10.20.30.40", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("0.0.0.0/0", "203.0.113.9", true),
            ("::1", "::1", true),
            ("fd00::/8", "fd12::1", true),
            ("fd00::/8", "fe80::1", false),
            // An IPv4 peer seen on a dual-stack socket.
            ("192.168.1.0/24", "::ffff:192.168.1.7", true),
            ("192.168.1.0/24", "::1", false),
        ];
        for (range, addr, inside) in rows {
            let r = IpRange::parse(range).unwrap_or_else(|e| panic!("{e}"));
            let a: IpAddr = addr.parse().unwrap_or_else(|e| panic!("{addr}: {e}"));
            assert_eq!(r.contains(a), *inside, "{range} ∋ {addr}");
        }
        for bad in ["proxy.example", "10.0.0.0/33", "::/129", "10.0.0.0/x"] {
            assert!(IpRange::parse(bad).is_err(), "{bad}");
        }
        let e = resolve_review(
            raw("trusted_proxies = [\"10.0.0.0/99\"]\n"),
            "f",
            Path::new("/srv"),
            &no_env,
        )
        .expect_err("bad range");
        assert!(e.to_string().contains("review.trusted_proxies"), "{e}");
    }

    #[test]
    fn loopback_by_default_and_tls_paths_resolve_against_the_file() {
        let c = resolve_review(RawReview::default(), "f", Path::new("/srv"), &no_env)
            .expect("defaults");
        assert_eq!(c, ReviewConfig::default());
        let c = resolve_review(
            raw("listen = \"0.0.0.0:8443\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\nsession_minutes = 30\n"),
            "f",
            Path::new("/srv"),
            &no_env,
        )
        .expect("tls");
        assert_eq!(c.listen.port(), 8443);
        assert_eq!(
            c.tls,
            Some(TlsFiles {
                cert: PathBuf::from("/srv/c.pem"),
                key: PathBuf::from("/srv/k.pem"),
            })
        );
        assert_eq!(c.session_lifetime, Duration::from_secs(1800));
    }

    #[test]
    fn a_network_address_without_tls_is_refused_unless_allowed() {
        let rows = [
            ("listen = \"0.0.0.0:8080\"\n", Some("not a loopback")),
            ("listen = \"192.0.2.1:80\"\n", Some("not a loopback")),
            ("listen = \"0.0.0.0:8080\"\nallow_plain_http = true\n", None),
            ("listen = \"[::1]:8080\"\n", None),
            ("listen = \"localhost:8080\"\n", Some("not an IP address")),
            ("tls_cert = \"c.pem\"\n", Some("tls_key is missing")),
            ("session_minutes = 0\n", Some("session_minutes")),
        ];
        for (text, expected) in rows {
            let got = resolve_review(raw(text), "/etc/rx.toml", Path::new("/"), &no_env);
            match expected {
                None => assert!(got.is_ok(), "{text}: {got:?}"),
                Some(needle) => {
                    let err = got.expect_err(text).to_string();
                    assert!(err.contains(needle), "{text}: {err}");
                    assert!(err.contains("review."), "{text}: names the key: {err}");
                }
            }
        }
        let env = |k: &str| (k == "RXSYNC_REVIEW_LISTEN").then(|| "127.0.0.1:9".to_string());
        let c = resolve_review(RawReview::default(), "f", Path::new("/"), &env).expect("env");
        assert_eq!(c.listen.port(), 9);
    }
}
