//! The loopback redirect of a native client (RFC 8252 §7.3): a listener on
//! the provider's configured `redirect_uri` (an IP literal of the loopback
//! interface, its port included) that reads one HTTP/1.1 GET on the
//! redirect path and answers it with a small page.
//!
//! Only requests on the redirect path count; anything else (a browser's
//! `/favicon.ico`) gets a 404 and the wait goes on. It never logs or echoes
//! the query it received: the code and the state stay between the provider,
//! this listener and `consent::complete`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

/// A request head longer than this is refused.
const MAX_HEAD: usize = 16 * 1024;
/// A connection that sends no full request head in this time is dropped.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the loopback listener cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LoopbackError {
    /// The redirect URI is not an `http://` loopback IP literal.
    #[error(
        "redirect_uri {uri} is not a loopback redirect: `link start` needs http:// with a loopback IP literal (127.0.0.1 or [::1]) and a port (RFC 8252 §7.3){}",
        .why.as_deref().map(|w| format!(": {w}")).unwrap_or_default()
    )]
    NotLoopback { uri: String, why: Option<String> },
    #[error("cannot listen on {addr} (the redirect_uri's address): {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the loopback listener failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Where a loopback redirect URI listens and which path is the callback.
pub fn loopback_target(uri: &Url) -> Result<(SocketAddr, String), LoopbackError> {
    let not = |why: &str| LoopbackError::NotLoopback {
        uri: uri.to_string(),
        why: Some(why.to_string()),
    };
    if uri.scheme() != "http" {
        return Err(not(
            "the scheme must be http (the listener speaks plain HTTP on loopback)",
        ));
    }
    let ip: IpAddr = match uri.host() {
        Some(url::Host::Ipv4(a)) => IpAddr::V4(a),
        Some(url::Host::Ipv6(a)) => IpAddr::V6(a),
        Some(url::Host::Domain(d)) => {
            return Err(not(&format!(
                "{d:?} is a name, not an IP literal (RFC 8252 §8.3: use 127.0.0.1)"
            )));
        }
        None => return Err(not("it has no host")),
    };
    if !ip.is_loopback() {
        return Err(not(&format!("{ip} is not a loopback address")));
    }
    let port = uri
        .port()
        .ok_or_else(|| not("it names no port; the provider registered one"))?;
    Ok((SocketAddr::new(ip, port), uri.path().to_string()))
}

/// A bound loopback redirect.
pub struct Listener {
    listener: TcpListener,
    path: String,
}

/// The connection a callback arrived on, to be answered once.
pub struct Responder {
    stream: TcpStream,
}

impl Listener {
    /// Binds the redirect URI's address (refusing anything but a loopback IP literal).
    pub async fn bind(uri: &Url) -> Result<Listener, LoopbackError> {
        let (addr, path) = loopback_target(uri)?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| LoopbackError::Bind { addr, source })?;
        Ok(Listener { listener, path })
    }

    /// Waits for a GET on the redirect path; returns its query (empty when
    /// none) and the connection to answer. Other requests are answered 404.
    pub async fn callback(&self) -> Result<(String, Responder), LoopbackError> {
        loop {
            let (mut stream, _) = self.listener.accept().await?;
            let head = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await {
                Ok(Ok(Some(head))) => head,
                _ => {
                    let _ = respond(
                        &mut stream,
                        400,
                        "Bad request",
                        "The request cannot be read.",
                    )
                    .await;
                    continue;
                }
            };
            let mut words = head.split(' ');
            let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            if method != "GET" || path != self.path {
                let _ = respond(
                    &mut stream,
                    404,
                    "Not found",
                    "This is rxsync's consent callback; nothing else is here.",
                )
                .await;
                continue;
            }
            return Ok((query.to_string(), Responder { stream }));
        }
    }
}

impl Responder {
    /// Answers the browser: the consent's outcome in words, then closes.
    pub async fn answer(mut self, ok: bool, message: &str) {
        let (status, title) = if ok {
            (200, "Account linked")
        } else {
            (400, "The account was not linked")
        };
        let _ = respond(&mut self.stream, status, title, message).await;
    }
}

/// The request line of a request, once its head has arrived.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
    }
    let text = String::from_utf8_lossy(&buf);
    Ok(text.lines().next().map(str::to_string))
}

async fn respond(
    stream: &mut TcpStream,
    status: u16,
    title: &str,
    message: &str,
) -> std::io::Result<()> {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head><body><h1>{t}</h1><p>{m}</p><p>You can close this window.</p></body></html>",
        t = escape(title),
        m = escape(message)
    );
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        _ => "Not Found",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nContent-Security-Policy: default-src 'none'\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_ip_literals_with_a_port_are_listened_on() {
        let ok = |u: &str| loopback_target(&Url::parse(u).expect("url"));
        let (addr, path) = ok("http://127.0.0.1:8765/callback").expect("v4");
        assert_eq!(addr.to_string(), "127.0.0.1:8765");
        assert_eq!(path, "/callback");
        assert!(ok("http://[::1]:9000/cb").is_ok());
        for bad in [
            "http://localhost:8765/callback",
            "https://127.0.0.1:8765/callback",
            "http://10.0.0.1:8765/callback",
            "http://127.0.0.1/callback",
            "http://example.com:8765/callback",
        ] {
            let msg = ok(bad).expect_err(bad).to_string();
            assert!(msg.contains("loopback"), "{bad}: {msg}");
        }
    }
}
