//! FHIR paging: what a pull requests next and what a search page says.
//!
//! A search is a cursor (`Search`): it gives the URL to request next and
//! reads each page the pull fetched — its media type, its entries, its
//! `next` link — into the entries gathered so far (`Gathered`), within the
//! provider's limits (`max_pages`, `max_document_bytes`). It sends nothing
//! itself: the pull's request loop (credentials, the 401 policy of
//! `fetch::policy`, the journal) fetches each page. A `next` link that
//! leaves the provider's origins, or goes from https down to http, ends the
//! pull: a page from elsewhere would put someone else's content in the
//! regimen.

use super::auth::{Credential, redact};
use super::http::{Fetched, HttpClient};
use super::refusal::Refusal;
use super::settings::ProviderKind;
use url::Url;

/// What a FHIR request accepts.
pub const FHIR_JSON: &str = "application/fhir+json, application/json;q=0.9";

/// Applies a remembered permanent redirect (`moves`: from, to, as the
/// store remembers them, the `from` redacted).
pub fn moved(moves: &[(String, String)], url: Url) -> Url {
    let key = redact(&url);
    moves
        .iter()
        .find(|(from, _)| *from == key)
        .and_then(|(_, to)| Url::parse(to).ok())
        .unwrap_or(url)
}

/// Refuses a body whose media type does not fit the provider's kind (an
/// HTML login page is the usual suspect).
pub fn check_media_type(kind: ProviderKind, f: &Fetched) -> Result<(), Refusal> {
    let mt = f.media_type.as_deref().unwrap_or("");
    let ok = match kind {
        ProviderKind::Ccr => matches!(mt, "application/xml" | "text/xml") || mt.ends_with("+xml"),
        ProviderKind::Fhir => matches!(
            mt,
            "application/fhir+json" | "application/json" | "application/json+fhir"
        ),
    };
    if ok {
        Ok(())
    } else {
        Err(Refusal::Failed(format!(
            "{}: the provider answered {}, not a {} document; nothing stored",
            redact(&f.url),
            if mt.is_empty() {
                "without a Content-Type".to_string()
            } else {
                format!("with media type {mt}")
            },
            kind.as_str()
        )))
    }
}

/// The entries of a pull's search pages (and the Medications read for
/// them), gathered across resource types, with what they weigh together.
#[derive(Debug)]
pub struct Gathered {
    /// Each entry's JSON, as the provider sent it.
    pub entries: Vec<Vec<u8>>,
    /// Where the first page was read from (redacted): the document's origin.
    pub origin: Option<String>,
    /// The bodies' bytes so far, checked against `max_document_bytes`.
    total_bytes: u64,
    max_document_bytes: u64,
}

impl Gathered {
    /// Nothing gathered yet; the bodies together may weigh `max_document_bytes`.
    pub fn new(max_document_bytes: u64) -> Gathered {
        Gathered {
            entries: Vec::new(),
            origin: None,
            total_bytes: 0,
            max_document_bytes,
        }
    }

    /// Counts a body read from `url`; fails when everything fetched
    /// together passes the limit.
    pub fn count(&mut self, bytes: usize, url: &Url) -> Result<(), Refusal> {
        self.total_bytes += bytes as u64;
        let limit = self.max_document_bytes;
        if self.total_bytes > limit {
            return Err(Refusal::Failed(format!(
                "{}: the pages together are over max_document_bytes = {limit}; nothing stored",
                redact(url)
            )));
        }
        Ok(())
    }
}

/// Whose search it is, for the limits and the words of a refusal.
#[derive(Debug, Clone, Copy)]
pub struct SearchOf<'a> {
    pub provider: &'a str,
    pub kind: ProviderKind,
    pub resource: &'a str,
    pub max_pages: u32,
}

/// One resource type's search: the page to request next.
#[derive(Debug)]
pub struct Search<'a> {
    of: SearchOf<'a>,
    next: Option<Url>,
    pages: u32,
}

impl<'a> Search<'a> {
    /// A search whose first page is `first` (remembered moves applied).
    pub fn new(first: Url, of: SearchOf<'a>) -> Search<'a> {
        Search {
            of,
            next: Some(first),
            pages: 0,
        }
    }

    /// The URL of the next page to request, or `None` when the last page
    /// had no `next` link; more than `max_pages` pages fail the pull.
    pub fn next_url(&mut self) -> Result<Option<Url>, Refusal> {
        let Some(url) = self.next.take() else {
            return Ok(None);
        };
        self.pages += 1;
        if self.pages > self.of.max_pages {
            return Err(Refusal::Failed(format!(
                "{}: more than max_pages = {} pages of {}; nothing stored (raise max_pages for provider {})",
                redact(&url),
                self.of.max_pages,
                self.of.resource,
                self.of.provider
            )));
        }
        Ok(Some(url))
    }

    /// Reads a fetched page into `gathered` and takes its `next` link, which
    /// must stay on an origin `client` trusts (and on https, when the page
    /// was); `credential`'s parameters are stripped from it.
    pub fn read(
        &mut self,
        page: &Fetched,
        gathered: &mut Gathered,
        client: &HttpClient,
        credential: &dyn Credential,
    ) -> Result<(), Refusal> {
        check_media_type(self.of.kind, page)?;
        gathered.count(page.body.len(), &page.url)?;
        gathered.origin.get_or_insert_with(|| redact(&page.url));
        let Some(n) = read_page(page, &mut gathered.entries)? else {
            return Ok(());
        };
        let next = page.url.join(&n).map_err(|e| {
            Refusal::Failed(format!(
                "{}: the next link is not a URL: {e}",
                redact(&page.url)
            ))
        })?;
        // A page from elsewhere would put someone else's content in the
        // regimen.
        if page.url.scheme() == "https" && next.scheme() != "https" {
            return Err(Refusal::Failed(format!(
                "{}: the next page link goes from https down to {}; nothing stored",
                redact(&page.url),
                redact(&next)
            )));
        }
        if !client.trusts(&next) {
            return Err(Refusal::Failed(format!(
                "{}: the next page link points outside the provider's origins ({}); nothing stored (list its origin in trusted_origins if it belongs to provider {})",
                redact(&page.url),
                redact(&next),
                self.of.provider
            )));
        }
        self.next = Some(credential.strip(&next));
        Ok(())
    }
}

/// Collects a search page's entries and returns its `next` link.
fn read_page(f: &Fetched, entries: &mut Vec<Vec<u8>>) -> Result<Option<String>, Refusal> {
    #[derive(serde::Deserialize)]
    struct Link {
        relation: Option<String>,
        url: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Page<'a> {
        #[serde(rename = "resourceType")]
        resource_type: Option<String>,
        #[serde(default, borrow)]
        entry: Vec<&'a serde_json::value::RawValue>,
        #[serde(default)]
        link: Vec<Link>,
        #[serde(default)]
        issue: Vec<serde_json::Value>,
    }
    let page: Page<'_> = serde_json::from_slice(&f.body).map_err(|e| {
        Refusal::Failed(format!(
            "{}: the search page is not FHIR JSON (line {}, column {}): {e}",
            redact(&f.url),
            e.line(),
            e.column()
        ))
    })?;
    match page.resource_type.as_deref() {
        Some("Bundle") => {}
        Some("OperationOutcome") => {
            let said: Vec<String> = page
                .issue
                .iter()
                .filter_map(|i| {
                    i.get("diagnostics")
                        .or_else(|| i.pointer("/details/text"))
                        .and_then(|v| v.as_str())
                        .map(str::to_string)
                })
                .collect();
            return Err(Refusal::Failed(format!(
                "{}: the provider answered an OperationOutcome: {}",
                redact(&f.url),
                said.join("; ")
            )));
        }
        other => {
            return Err(Refusal::Failed(format!(
                "{}: a search answers with a Bundle, not {}",
                redact(&f.url),
                other.unwrap_or("a JSON value without resourceType")
            )));
        }
    }
    entries.extend(page.entry.iter().map(|e| e.get().as_bytes().to_vec()));
    Ok(page
        .link
        .into_iter()
        .find(|l| l.relation.as_deref() == Some("next"))
        .and_then(|l| l.url))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::auth::{Anonymous, Bearer};
    use crate::fetch::oauth1::Placement;
    use crate::fetch::settings::FetchLimits;
    use std::time::Duration;

    fn page(url: &str, media_type: Option<&str>, body: &str) -> Fetched {
        Fetched {
            status: 200,
            url: Url::parse(url).expect("url"),
            media_type: media_type.map(str::to_string),
            headers: Default::default(),
            body: body.as_bytes().to_vec(),
            moves: Vec::new(),
            hops: 0,
            credentials: true,
        }
    }

    fn client(trusted: &str) -> HttpClient {
        let limits = FetchLimits {
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            max_redirects: 1,
            max_document_bytes: 1 << 20,
            max_pages: 5,
            retries: 0,
            max_retry_after: Duration::from_secs(1),
            rate: None,
        };
        let origin = Url::parse(trusted).expect("url").origin();
        HttpClient::new(limits, vec![origin], None).expect("client")
    }

    fn of(max_pages: u32) -> SearchOf<'static> {
        SearchOf {
            provider: "acme",
            kind: ProviderKind::Fhir,
            resource: "MedicationRequest",
            max_pages,
        }
    }

    fn failed(r: Result<impl std::fmt::Debug, Refusal>) -> String {
        match r {
            Err(Refusal::Failed(e)) => e,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn media_types_fit_the_provider_kind() {
        let rows: &[(ProviderKind, Option<&str>, bool)] = &[
            (ProviderKind::Fhir, Some("application/fhir+json"), true),
            (ProviderKind::Fhir, Some("application/json"), true),
            (ProviderKind::Fhir, Some("application/json+fhir"), true),
            (ProviderKind::Fhir, Some("text/html"), false),
            (ProviderKind::Fhir, None, false),
            (ProviderKind::Ccr, Some("application/xml"), true),
            (ProviderKind::Ccr, Some("text/xml"), true),
            (ProviderKind::Ccr, Some("application/ccr+xml"), true),
            (ProviderKind::Ccr, Some("application/json"), false),
        ];
        for (kind, mt, ok) in rows {
            let f = page("https://p.example/doc", *mt, "");
            assert_eq!(check_media_type(*kind, &f).is_ok(), *ok, "{kind:?} {mt:?}");
        }
        let said = failed(check_media_type(
            ProviderKind::Fhir,
            &page("https://p.example/doc", None, ""),
        ));
        assert!(said.contains("without a Content-Type"), "{said}");
    }

    #[test]
    fn a_page_gives_its_entries_and_its_next_link() {
        let f = page(
            "https://p.example/fhir/MedicationRequest?patient=1",
            Some("application/fhir+json"),
            r#"{"resourceType":"Bundle","entry":[{"a":1},{"b":2}],
               "link":[{"relation":"self","url":"x"},{"relation":"next","url":"?page=2"}]}"#,
        );
        let mut entries = Vec::new();
        let next = read_page(&f, &mut entries).expect("page");
        assert_eq!(next.as_deref(), Some("?page=2"));
        assert_eq!(
            entries,
            vec![br#"{"a":1}"#.to_vec(), br#"{"b":2}"#.to_vec()]
        );
    }

    #[test]
    fn a_page_that_is_not_a_bundle_is_refused_with_what_it_was() {
        let rows: &[(&str, &str)] = &[
            (
                r#"{"resourceType":"OperationOutcome","issue":[{"diagnostics":"too busy"},{"details":{"text":"later"}}]}"#,
                "an OperationOutcome: too busy; later",
            ),
            (
                r#"{"resourceType":"Patient"}"#,
                "a search answers with a Bundle, not Patient",
            ),
            (r#"[]"#, "not FHIR JSON"),
            (r#"{"a":1}"#, "not a JSON value without resourceType"),
            ("<html>", "not FHIR JSON (line 1, column 1)"),
        ];
        for (body, says) in rows {
            let f = page("https://p.example/fhir/x", Some("application/json"), body);
            let said = failed(read_page(&f, &mut Vec::new()));
            assert!(said.contains(says), "{body}: {said}");
        }
    }

    #[test]
    fn a_search_follows_next_links_within_its_limits() {
        let http = client("https://p.example");
        let bearer = Bearer {
            token: secrecy::SecretString::from("tok-123".to_string()),
            placement: Placement::Query,
        };
        let first = Url::parse("https://p.example/fhir/MedicationRequest?patient=1").expect("url");
        let mut search = Search::new(first.clone(), of(2));
        let mut gathered = Gathered::new(1 << 20);
        assert_eq!(search.next_url().expect("first"), Some(first));
        let one = page(
            "https://p.example/fhir/MedicationRequest?patient=1",
            Some("application/fhir+json"),
            r#"{"resourceType":"Bundle","entry":[{"a":1}],
               "link":[{"relation":"next","url":"/fhir/next?page=2&access_token=tok-123"}]}"#,
        );
        search
            .read(&one, &mut gathered, &http, &bearer)
            .expect("page 1");
        // The credential's own parameter never travels in a next link.
        let second = search.next_url().expect("second").expect("a next page");
        assert_eq!(second.as_str(), "https://p.example/fhir/next?page=2");
        search
            .read(&one, &mut gathered, &http, &bearer)
            .expect("page 2");
        let said = failed(search.next_url());
        assert!(
            said.contains("more than max_pages = 2 pages of MedicationRequest")
                && said.contains("provider acme"),
            "{said}"
        );
        assert_eq!(gathered.entries.len(), 2);
        assert_eq!(
            gathered.origin.as_deref(),
            Some("https://p.example/fhir/MedicationRequest?patient=1")
        );
    }

    #[test]
    fn a_next_link_elsewhere_or_down_to_http_ends_the_search() {
        let http = client("https://p.example");
        let rows: &[(&str, &str)] = &[
            (
                "https://evil.example/fhir?page=2",
                "outside the provider's origins",
            ),
            ("http://p.example/fhir?page=2", "from https down to http"),
            ("http://[::1", "the next link is not a URL"),
        ];
        for (next, says) in rows {
            let body = format!(
                r#"{{"resourceType":"Bundle","link":[{{"relation":"next","url":"{next}"}}]}}"#
            );
            let f = page(
                "https://p.example/fhir/x",
                Some("application/fhir+json"),
                &body,
            );
            let mut search = Search::new(f.url.clone(), of(5));
            let _ = search.next_url();
            let said = failed(search.read(&f, &mut Gathered::new(1 << 20), &http, &Anonymous));
            assert!(said.contains(says), "{next}: {said}");
        }
    }

    #[test]
    fn pages_together_stay_under_max_document_bytes() {
        let url = Url::parse("https://p.example/fhir/x").expect("url");
        let mut gathered = Gathered::new(10);
        gathered.count(6, &url).expect("under");
        let said = failed(gathered.count(5, &url));
        assert!(said.contains("over max_document_bytes = 10"), "{said}");
    }

    #[test]
    fn a_remembered_move_is_applied() {
        let moves = vec![(
            "https://p.example/old".to_string(),
            "https://p.example/new".to_string(),
        )];
        let url = |s: &str| Url::parse(s).expect("url");
        assert_eq!(
            moved(&moves, url("https://p.example/old")),
            url("https://p.example/new")
        );
        assert_eq!(
            moved(&moves, url("https://p.example/other")),
            url("https://p.example/other")
        );
    }
}
