//! The demo's links made by consent, the way a patient makes one: an
//! invitation (made as `rxsync link invite` makes it) opened by a browser
//! at the review app, which sends it to the sandbox's authorization
//! endpoint; the sandbox consents without a person and sends the browser
//! back to the review app's `/oauth/callback`, where the consent engine
//! exchanges the code, validates the ID token, compares the identity,
//! stores the link and runs the first pull, and the patient is shown the
//! result.
//!
//! The demo plays only the patient's browser — plain HTTP over loopback,
//! one hop at a time, following what each answer says — and the patient's
//! sign-in at the sandbox (`login_hint`, the account the sandbox's
//! non-interactive consent signs in as). Everything else is the review
//! app's and the consent engine's own code; nothing here writes a link.

use crate::cli::Failure;
use anyhow::anyhow;
use rxsync::config::PublicUrl;
use rxsync::consent::invite;
use rxsync::domain::{PatientId, ProviderId};
use rxsync::store::{NewInvitation, Writer};
use serde_json::json;
use url::Url;

/// The provider the demo links by consent (OpenID Connect at the sandbox,
/// with the wrong-patient guard: `[providers.identity]`).
pub const PROVIDER: &str = "demo-fhir-consent";

/// A demo patient who links by an invitation, and who they are at the
/// sandbox when they sign in there.
pub struct Invited {
    pub patient: &'static str,
    /// The sandbox account the patient signs in with.
    pub account: &'static str,
    /// The account's holder at the sandbox: given name, family name, birth
    /// date (set through the sandbox's admin API at each start; its MRN is
    /// the sandbox's `MRN-{account}`).
    pub holder: (&'static str, &'static str, &'static str),
    /// What it shows.
    pub about: &'static str,
}

pub const INVITED: [Invited; 2] = [
    Invited {
        patient: "demo-6",
        account: "demo-6",
        holder: ("Katherine", "Specimen", "1958-08-26"),
        about: "her own account: the identity matches, the link is made and the first pull imports",
    },
    Invited {
        patient: "demo-7",
        account: "demo-7-spouse",
        holder: ("Howard", "Testcase", "1941-02-17"),
        about: "she signs in with her husband's account: the identity does not match, the link is held",
    },
];

/// What one consent did, as the browser saw it.
pub struct Outcome {
    pub patient: &'static str,
    pub account: &'static str,
    /// Each answer on the way: status and where it came from (paths only:
    /// the URLs carry the invitation token, the state and the code).
    pub hops: Vec<String>,
    /// The last page's `data-outcome` (`linked`, `held`, …).
    pub outcome: String,
    /// The last page as text, a line per paragraph or table row.
    pub page: Vec<String>,
}

/// Gives the sandbox accounts of `INVITED` their holders (the sandbox
/// keeps identities in memory only, so at every start).
pub async fn set_identities(http: &reqwest::Client, sandbox: &str) -> Result<(), Failure> {
    for i in &INVITED {
        let (given, family, birth) = i.holder;
        let body = json!({
            "patient": i.account,
            "given_name": given,
            "family_name": family,
            "birth_date": birth,
        });
        let answer = http
            .post(format!("{sandbox}/admin/identities"))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| anyhow!("the sandbox did not answer: {e}"))?;
        if !answer.status().is_success() {
            return Err(Failure::Failed(anyhow!(
                "the sandbox refused the identity of {}: {}",
                i.account,
                answer.status()
            )));
        }
    }
    Ok(())
}

/// Makes an invitation for `i` (through the review app's writer, as the
/// patient page's "Make an invitation" does) and opens it in a browser.
pub async fn link(
    writer: &Writer,
    public: &PublicUrl,
    sandbox: &Url,
    i: &Invited,
) -> Result<Outcome, Failure> {
    let patient = PatientId::parse(i.patient).map_err(|e| anyhow!("{e}"))?;
    let provider = ProviderId::parse(PROVIDER).map_err(|e| anyhow!("{e}"))?;
    let fresh = invite::fresh(public, invite::DEFAULT_LIFETIME);
    let expires_at = rxsync::store::rfc3339_at(fresh.expires_at);
    let (id, hash) = (fresh.id.clone(), fresh.token_sha256.clone());
    writer
        .run(move |s| {
            s.make_invitation(
                &NewInvitation {
                    id: &id,
                    token_sha256: &hash,
                    patient: &patient,
                    provider: &provider,
                    expires_at: &expires_at,
                },
                "demo",
            )
        })
        .await?;
    let url = Url::parse(invite::reveal(&fresh)).map_err(|e| anyhow!("{e}"))?;
    let (hops, outcome, page) = browse(url, sandbox, i.account).await?;
    Ok(Outcome {
        patient: i.patient,
        account: i.account,
        hops,
        outcome,
        page,
    })
}

/// The patient's browser: opens `url` and follows redirects (and, once, a
/// page whose form posts onward, such as an invitation's "Continue"
/// button), keeping each origin's cookies, until a page that is the end.
/// At the sandbox's authorization endpoint it signs in as `account`.
async fn browse(
    mut url: Url,
    sandbox: &Url,
    account: &str,
) -> Result<(Vec<String>, String, Vec<String>), Failure> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| anyhow!("{e}"))?;
    let mut hops = Vec::new();
    // The cookies each origin set (name=value), sent back to it as a
    // browser would: a page may tie its form to one.
    let mut cookies: Vec<(url::Origin, String)> = Vec::new();
    let mut form: Option<Vec<(String, String)>> = None;
    let mut posted = false;
    for _ in 0..10 {
        if url.origin() == sandbox.origin() && url.path() == "/oauth2/authorize" {
            url.query_pairs_mut().append_pair("login_hint", account);
        }
        let request = match form.take() {
            Some(fields) => http
                .post(url.clone())
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(
                    url::form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(fields)
                        .finish(),
                ),
            None => http.get(url.clone()),
        };
        let jar: Vec<&str> = cookies
            .iter()
            .filter(|(o, _)| *o == url.origin())
            .map(|(_, c)| c.as_str())
            .collect();
        let request = if jar.is_empty() {
            request
        } else {
            request.header(reqwest::header::COOKIE, jar.join("; "))
        };
        let answer = request
            .send()
            .await
            // Without the URL: it holds the token, the state or the code.
            .map_err(|e| {
                anyhow!(
                    "the browser could not open {}: {}",
                    place(&url, sandbox),
                    e.without_url()
                )
            })?;
        let status = answer.status();
        for set in answer.headers().get_all(reqwest::header::SET_COOKIE) {
            let Some(pair) = set.to_str().ok().and_then(|v| v.split(';').next()) else {
                continue;
            };
            let name = pair.split('=').next().unwrap_or_default();
            cookies.retain(|(o, c)| !(*o == url.origin() && c.split('=').next() == Some(name)));
            cookies.push((url.origin(), pair.trim().to_string()));
        }
        hops.push(format!("{} {}", place(&url, sandbox), status.as_u16()));
        if status.is_redirection() {
            let location = answer
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| anyhow!("{} redirected nowhere", place(&url, sandbox)))?;
            url = url
                .join(location)
                .map_err(|e| anyhow!("{} redirected to a bad URL: {e}", place(&url, sandbox)))?;
            continue;
        }
        let body = answer.text().await.map_err(|e| {
            anyhow!(
                "the page at {} was cut: {}",
                place(&url, sandbox),
                e.without_url()
            )
        })?;
        if status.is_success()
            && !posted
            && let Some((action, fields)) = post_form(&body)
        {
            posted = true;
            url = url.join(&action).map_err(|e| anyhow!("{e}"))?;
            form = Some(fields);
            continue;
        }
        let outcome = attribute(&body, "data-outcome").unwrap_or_default();
        return Ok((hops, outcome, page_text(&body)));
    }
    Err(Failure::Failed(anyhow!(
        "the browser gave up after 10 pages: {}",
        hops.join(" → ")
    )))
}

/// Where a URL points, for people: whose it is and its path (never its
/// query, which carries the token, the state or the code).
fn place(url: &Url, sandbox: &Url) -> String {
    let whose = if url.origin() == sandbox.origin() {
        "sandbox"
    } else {
        "review app"
    };
    let path = url.path();
    // An invitation's path is its token.
    let path = if path.starts_with("/invite/") {
        "/invite/…"
    } else {
        path
    };
    format!("{whose} {path}")
}

/// The first form of a page that posts, with its hidden fields.
fn post_form(html: &str) -> Option<(String, Vec<(String, String)>)> {
    let start = html.find("<form")?;
    let end = start + html[start..].find("</form>")?;
    let form = &html[start..end];
    let tag = &form[..form.find('>')?];
    if !attribute(tag, "method").is_some_and(|m| m.eq_ignore_ascii_case("post")) {
        return None;
    }
    let action = attribute(tag, "action")?;
    let fields = form
        .split("<input")
        .skip(1)
        .filter_map(|input| {
            let tag = &input[..input.find('>')?];
            Some((attribute(tag, "name")?, attribute(tag, "value")?))
        })
        .collect();
    Some((action, fields))
}

/// The (unescaped) value of the first `name="…"` attribute in `html`.
fn attribute(html: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let at = html.find(&needle)? + needle.len();
    let len = html[at..].find('"')?;
    Some(unescape(&html[at..at + len]))
}

/// A page's `<main>` as text: a line per heading, paragraph and table row
/// (cells joined by " · "), tags dropped, entities read.
pub fn page_text(html: &str) -> Vec<String> {
    let main = html
        .find("<main")
        .and_then(|s| html[s..].find("</main>").map(|e| &html[s..s + e]))
        .unwrap_or(html);
    let mut text = String::new();
    let mut rest = main;
    while let Some(open) = rest.find('<') {
        text.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let tag = &rest[open + 1..open + close];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let closing = tag.starts_with('/');
        match name.as_str() {
            "p" | "h1" | "h2" | "tr" | "li" if closing => text.push('\n'),
            "br" => text.push('\n'),
            "td" | "th" if closing => text.push_str(" · "),
            _ => {}
        }
        rest = &rest[open + close + 1..];
    }
    text.push_str(rest);
    unescape(&text)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .map(|l| l.trim_end_matches(" ·").to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_reads_as_lines_of_text() {
        let html = r#"<html><head><title>T</title></head><body><header>nav</header><main><h1>Your account at X is linked</h1><p id="outcome" data-outcome="linked">Thank you &amp; welcome.</p><table><thead><tr><th>Medicine</th><th>Status</th></tr></thead><tbody><tr class="medication"><td class="drug">Lisinopril 10 mg</td><td>Taking</td></tr></tbody></table></main></body></html>"#;
        assert_eq!(
            page_text(html),
            vec![
                "Your account at X is linked",
                "Thank you & welcome.",
                "Medicine · Status",
                "Lisinopril 10 mg · Taking",
            ]
        );
        assert_eq!(attribute(html, "data-outcome").as_deref(), Some("linked"));
    }

    #[test]
    fn a_posting_form_is_found_with_its_hidden_fields() {
        let html = r#"<main><form class="inline" method="post" action="/invite/abc"><input type="hidden" name="go" value="1"><button>Continue</button></form></main>"#;
        assert_eq!(
            post_form(html),
            Some(("/invite/abc".into(), vec![("go".into(), "1".into())]))
        );
        assert_eq!(post_form(r#"<form method="get" action="/x"></form>"#), None);
    }
}
