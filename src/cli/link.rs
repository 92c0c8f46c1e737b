//! `rxsync link add|start|invite|list|revoke|confirm|reject`

use super::context::{Global, runtime};
use super::output::{self, Format, cell};
use super::table::{Column, Table};
use super::{CliResult, Failure, usage};
use anyhow::anyhow;
use chrono::{DateTime, Utc};
use rxsync::config::ProviderAuth;
use rxsync::domain::{LinkId, LinkState, PatientId, ProviderId, SyncOutcome};
use rxsync::store::{LinkSecrets, NewLink};
use secrecy::SecretString;
use serde::Serialize;
use std::io::Read;

/// Tokens larger than this on stdin are refused.
const MAX_TOKEN_INPUT: u64 = 64 * 1024;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Link a patient to a provider account with tokens read as JSON on stdin.
    ///
    /// OAuth 1.0a: {"token", "token_secret"}. OAuth 2.0: a token response as
    /// the provider gave it — {"access_token", "refresh_token", "expires_in"
    /// or "expires_at", "scope", "patient"}; other fields are ignored. An
    /// existing link of the same patient and provider is re-linked.
    Add {
        #[arg(long, value_name = "ID")]
        patient: String,
        #[arg(long, value_name = "ID")]
        provider: String,
        /// The patient's id at the provider [default: "patient" in the
        /// tokens, else the local id]
        #[arg(long, value_name = "ID")]
        remote_patient: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Link a patient by consent at the provider (OAuth 2.0 authorization
    /// code + PKCE, or the OAuth 1.0a three-legged flow for an oauth1
    /// provider with request_token_url, authorize_url, access_token_url).
    ///
    /// Listens on the provider's loopback `redirect_uri` ([providers.auth],
    /// e.g. http://127.0.0.1:8765/callback), prints the URL to open as the
    /// first line of stdout, waits for the provider to send the browser
    /// back, exchanges the code and stores the link (a `needs_relink` link
    /// keeps its id). A denial, a wrong or replayed state, an expired
    /// consent, a failed exchange or the timeout: exit 1, nothing stored.
    Start {
        #[arg(long, value_name = "ID")]
        patient: String,
        #[arg(long, value_name = "ID")]
        provider: String,
        /// Seconds to wait for the provider's redirect
        #[arg(long, value_name = "SECS", default_value_t = 300)]
        timeout: u64,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Make a single-use invitation URL for a patient to link an account
    /// at a provider in the browser.
    ///
    /// Prints `[review] public_url` + `/invite/TOKEN`. The patient opens it
    /// (no rxsync account needed; opening it spends nothing), presses
    /// Continue there, consents at the provider and comes back
    /// to the review app's `/oauth/callback`, which stores the link and
    /// runs its first pull. It works once and expires; only its hash is
    /// stored.
    Invite {
        #[arg(long, value_name = "ID")]
        patient: String,
        #[arg(long, value_name = "ID")]
        provider: String,
        /// How long it stays valid: 90s, 30m, 72h, 7d (at most 30d)
        #[arg(long, value_name = "DURATION", default_value = "72h")]
        expires: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// List links (never a secret)
    List {
        #[arg(long, value_name = "ID")]
        patient: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Revoke a link: at the provider's revocation endpoint when configured, then here
    Revoke {
        #[arg(value_name = "LINK")]
        id: LinkId,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Confirm a held link: its remote identity is this patient's. The link
    /// is active again (due now) and that identity is remembered as accepted.
    Confirm {
        #[arg(value_name = "LINK")]
        id: LinkId,
        /// Who confirms (recorded in the audit)
        #[arg(long, value_name = "NAME")]
        by: String,
        /// Why (recorded with the decision)
        #[arg(long, value_name = "TEXT")]
        note: String,
    },
    /// Reject a held link: the account is not this patient's. The link is
    /// revoked and its tokens dropped.
    Reject {
        #[arg(value_name = "LINK")]
        id: LinkId,
        #[arg(long, value_name = "NAME")]
        by: String,
        #[arg(long, value_name = "TEXT")]
        note: String,
    },
}

pub fn run(global: &Global, c: Command) -> CliResult {
    match c {
        Command::Add {
            patient,
            provider,
            remote_patient,
            format,
        } => add(global, &patient, &provider, remote_patient, format),
        Command::Start {
            patient,
            provider,
            timeout,
            format,
        } => super::link_start::run(global, &patient, &provider, timeout, format),
        Command::Invite {
            patient,
            provider,
            expires,
            format,
        } => super::link_invite::run(global, &patient, &provider, &expires, format),
        Command::List { patient, format } => list(global, patient, format),
        Command::Revoke { id, format } => revoke(global, id, format),
        Command::Confirm { id, by, note } => decide(global, id, &by, &note, true),
        Command::Reject { id, by, note } => decide(global, id, &by, &note, false),
    }
}

/// The token JSON as handed over; every field optional, checked per scheme.
#[derive(serde::Deserialize)]
struct TokenInput {
    token: Option<String>,
    token_secret: Option<String>,
    access_token: Option<String>,
    refresh_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<serde_json::Value>,
    expires_at: Option<serde_json::Value>,
    scope: Option<String>,
    patient: Option<String>,
    /// When the grant itself ends (`fetch::grant`).
    access_grant_expiration: Option<serde_json::Value>,
}

fn add(
    global: &Global,
    patient: &str,
    provider_id: &str,
    remote_patient: Option<String>,
    format: Format,
) -> CliResult {
    let patient = PatientId::parse(patient).map_err(|e| usage(format!("--patient: {e}")))?;
    let ctx = global.open()?;
    let provider = configured(&ctx.config, provider_id)?;
    let mut text = String::new();
    std::io::stdin()
        .take(MAX_TOKEN_INPUT + 1)
        .read_to_string(&mut text)
        .map_err(|e| Failure::Failed(anyhow!("cannot read the tokens from stdin: {e}")))?;
    if text.len() as u64 > MAX_TOKEN_INPUT {
        return Err(Failure::Failed(anyhow!(
            "the tokens on stdin are over {MAX_TOKEN_INPUT} bytes; nothing stored"
        )));
    }
    // serde_json's message names line and column, never the value.
    let input: TokenInput = serde_json::from_str(&text).map_err(|e| {
        Failure::Failed(anyhow!(
            "the tokens on stdin are not a JSON object as expected (line {}, column {}): {}; nothing stored",
            e.line(),
            e.column(),
            match e.classify() {
                serde_json::error::Category::Data => "a field has the wrong type",
                serde_json::error::Category::Syntax => "not valid JSON",
                serde_json::error::Category::Eof => "the JSON ends too early",
                serde_json::error::Category::Io => "read error",
            }
        ))
    })?;
    let fail = |m: String| Failure::Failed(anyhow!("tokens on stdin: {m}; nothing stored"));
    let (secrets, expires_at, scope) = match &provider.auth {
        ProviderAuth::Oauth1(_) => {
            let token = required(&input.token, "token", printable).map_err(fail)?;
            let token_secret =
                required(&input.token_secret, "token_secret", printable).map_err(fail)?;
            (
                LinkSecrets::Oauth1 {
                    token,
                    token_secret,
                },
                None,
                None,
            )
        }
        ProviderAuth::Oauth2(_) => {
            if let Some(t) = &input.token_type
                && !t.eq_ignore_ascii_case("bearer")
            {
                return Err(fail(format!(
                    "token_type is {t:?}; only Bearer tokens are supported"
                )));
            }
            let access_token =
                required(&input.access_token, "access_token", b64token).map_err(fail)?;
            let refresh_token = match &input.refresh_token {
                Some(_) => {
                    Some(required(&input.refresh_token, "refresh_token", printable).map_err(fail)?)
                }
                None => None,
            };
            let expires_at = expiry(&input).map_err(fail)?;
            (
                LinkSecrets::Oauth2 {
                    access_token,
                    refresh_token,
                },
                expires_at,
                input.scope.clone(),
            )
        }
    };
    let remote = remote_patient
        .or(input.patient.clone())
        .unwrap_or_else(|| patient.to_string());
    if remote.is_empty() || remote.len() > 256 || remote.chars().any(char::is_control) {
        return Err(usage(
            "the remote patient id must be 1 to 256 printable characters",
        ));
    }
    let grant_expires_at = {
        let mut fields = serde_json::Map::new();
        if let Some(v) = &input.access_grant_expiration {
            fields.insert("access_grant_expiration".into(), v.clone());
        }
        rxsync::fetch::grant::grant_expiry(&fields, input.refresh_token.as_deref())
    };
    let key = ctx.vault_key()?;
    let mut store = ctx.store;
    let (id, relinked) = store.add_link(
        &NewLink {
            patient: &patient,
            provider: &provider.id,
            remote_patient: &remote,
            secrets,
            expires_at,
            scope,
            grant_expires_at,
        },
        &key,
        "cli",
    )?;
    print_link(&store, id, relinked, format)
}

/// The provider `--provider` names, or a usage error listing the configured ones.
pub(super) fn configured<'c>(
    config: &'c rxsync::config::Config,
    provider_id: &str,
) -> Result<&'c rxsync::config::Provider, Failure> {
    let id = ProviderId::parse(provider_id)
        .map_err(|e| usage(format!("--provider {provider_id:?}: {e}")))?;
    config.provider(id.as_str()).ok_or_else(|| {
        usage(format!(
            "--provider {provider_id}: no such provider in {} (configured: {})",
            config
                .file
                .as_ref()
                .map_or("the defaults".to_string(), |f| f.display().to_string()),
            if config.providers.is_empty() {
                "none".to_string()
            } else {
                config
                    .providers
                    .iter()
                    .map(|p| p.id.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ))
    })
}

/// Prints a link just made (`link add`, `link start`).
pub(super) fn print_link(
    store: &rxsync::store::Store,
    id: LinkId,
    relinked: bool,
    format: Format,
) -> CliResult {
    let view = store
        .link(id)?
        .ok_or_else(|| Failure::Failed(anyhow!("link {id} vanished")))?;
    if format == Format::Json {
        output::json(&Listed::from(&view))?;
    } else {
        println!(
            "{} {id}: patient {} ↔ provider {} ({}, remote patient {}), {}",
            if relinked { "re-linked" } else { "link" },
            view.patient,
            view.provider,
            view.scheme,
            view.remote_patient,
            view.state
        );
    }
    Ok(())
}

fn required(
    v: &Option<String>,
    name: &str,
    check: fn(&str) -> bool,
) -> Result<SecretString, String> {
    match v.as_deref() {
        None | Some("") => Err(format!("{name} is missing")),
        Some(t) if t.len() > 8192 => Err(format!("{name} is longer than 8192 characters")),
        Some(t) if !check(t) => Err(format!(
            "{name} holds characters a token cannot have (whitespace, control or non-ASCII characters)"
        )),
        Some(t) => Ok(SecretString::from(t.to_string())),
    }
}

/// Visible ASCII, no spaces.
fn printable(t: &str) -> bool {
    t.chars().all(|c| c.is_ascii_graphic())
}

/// RFC 6750 §2.1 b64token: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn b64token(t: &str) -> bool {
    let body = t.trim_end_matches('=');
    !body.is_empty()
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '+' | '/'))
}

/// `expires_at` (RFC 3339 or epoch seconds) or `expires_in` (seconds from now).
fn expiry(input: &TokenInput) -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
    let at = match (&input.expires_at, &input.expires_in) {
        (Some(serde_json::Value::String(s)), _) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|_| "expires_at is not an RFC 3339 time".to_string())?,
        (Some(serde_json::Value::Number(n)), _) => n
            .as_i64()
            .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
            .ok_or("expires_at is not epoch seconds")?,
        (Some(_), _) => return Err("expires_at must be a string or a number".into()),
        (None, Some(v)) => {
            let secs = v
                .as_i64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or("expires_in is not a number of seconds")?;
            if !(0..=10 * 365 * 86_400).contains(&secs) {
                return Err("expires_in is out of range".into());
            }
            chrono::Utc::now() + chrono::Duration::seconds(secs)
        }
        (None, None) => return Ok(None),
    };
    Ok(Some(at))
}

/// The listing shape: ids and states, never a secret.
#[derive(Serialize)]
struct Listed<'a> {
    id: LinkId,
    patient: &'a str,
    provider: &'a str,
    state: LinkState,
    #[serde(serialize_with = "rxsync::store::as_rfc3339_opt")]
    last_sync: Option<DateTime<Utc>>,
    scheme: &'a str,
    remote_patient: &'a str,
    state_reason: Option<&'a str>,
    last_outcome: Option<SyncOutcome>,
    last_error: Option<&'a str>,
    failures: i64,
    #[serde(serialize_with = "rxsync::store::as_rfc3339_opt")]
    expires_at: Option<DateTime<Utc>>,
    /// When the patient's grant at the provider ends (null: not said).
    #[serde(serialize_with = "rxsync::store::as_rfc3339_opt")]
    grant_expires_at: Option<DateTime<Utc>>,
    /// Who the patient is at the provider, as last read (null: never read).
    remote_identity: Option<&'a rxsync::store::RemoteIdentityView>,
}

impl<'a> From<&'a rxsync::store::LinkView> for Listed<'a> {
    fn from(v: &'a rxsync::store::LinkView) -> Listed<'a> {
        Listed {
            id: v.id,
            patient: &v.patient,
            provider: v.provider.as_str(),
            state: v.state,
            last_sync: v.last_sync,
            scheme: &v.scheme,
            remote_patient: &v.remote_patient,
            state_reason: v.state_reason.as_deref(),
            last_outcome: v.last_outcome,
            last_error: v.last_error.as_deref(),
            failures: v.failures,
            expires_at: v.expires_at,
            grant_expires_at: v.grant_expires_at,
            remote_identity: v.remote_identity.as_ref(),
        }
    }
}

/// `link list`'s columns: which link, whose, and its state stay longest.
const LIST_COLUMNS: &[Column] = &[
    Column::whole("link", 0),
    Column::cut("patient", 1, 12),
    Column::cut("provider", 2, 16),
    Column::whole("scheme", 6),
    Column::whole("state", 0),
    Column::whole("last sync", 5),
    Column::whole("grant ends", 8),
    Column::whole("outcome", 4),
    Column::cut("remote identity", 7, 14),
    Column::cut("note", 3, 20),
];

fn list(global: &Global, patient: Option<String>, format: Format) -> CliResult {
    let patient = patient
        .map(|p| PatientId::parse(&p).map_err(|e| usage(format!("--patient: {e}"))))
        .transpose()?;
    let ctx = global.open_existing()?;
    let links = ctx.store.links(patient.as_ref())?;
    if format == Format::Json {
        let listed: Vec<Listed<'_>> = links.iter().map(Listed::from).collect();
        output::json(&listed)?;
        return Ok(());
    }
    if links.is_empty() {
        println!("no links (add one: rxsync link add --patient ID --provider ID < tokens.json)");
        return Ok(());
    }
    let mut t = Table::new(LIST_COLUMNS);
    for l in &links {
        let by_consent = ctx
            .config
            .provider(l.provider.as_str())
            .is_some_and(|p| rxsync::consent::can_consent(p).is_ok());
        let note = match l.state {
            LinkState::NeedsRelink if by_consent => format!(
                "re-link: rxsync link start --patient {} --provider {}",
                l.patient, l.provider
            ),
            LinkState::NeedsRelink => format!(
                "re-link: rxsync link add --patient {} --provider {} < tokens.json",
                l.patient, l.provider
            ),
            LinkState::Held => format!(
                "identity not confirmed: rxsync link confirm {} --by NAME --note TEXT (or link reject)",
                l.id
            ),
            _ => cell(&l.last_error),
        };
        let identity = l.remote_identity.as_ref().map_or("—".to_string(), |r| {
            let ids: Vec<String> = r
                .identity
                .identifiers
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!(
                "{} {}",
                r.identity.subject.as_deref().unwrap_or("—"),
                ids.join(" ")
            )
        });
        t.row(vec![
            l.id.to_string(),
            l.patient.clone(),
            l.provider.to_string(),
            l.scheme.clone(),
            l.state.as_str().to_string(),
            l.last_sync
                .map(rxsync::store::rfc3339_at)
                .unwrap_or_default(),
            l.grant_expires_at
                .map_or("—".to_string(), |t| t.format("%Y-%m-%d").to_string()),
            l.last_outcome
                .map(|o| o.as_str().to_string())
                .unwrap_or_default(),
            identity,
            note,
        ]);
    }
    t.print();
    Ok(())
}

fn revoke(global: &Global, id: LinkId, format: Format) -> CliResult {
    let ctx = global.open()?;
    let (puller, store) = ctx.puller()?;
    let writer = rxsync::store::Writer::start(store)?;
    let rt = runtime()?;
    let (view, note) = rt.block_on(async {
        let revoked = puller.revoke(&writer, id, "cli").await;
        writer.close().await;
        revoked
    })?;
    if format == Format::Json {
        #[derive(Serialize)]
        struct Revoked<'a> {
            #[serde(flatten)]
            link: Listed<'a>,
            provider_revocation: Option<&'a str>,
        }
        output::json(&Revoked {
            link: Listed::from(&view),
            provider_revocation: note.as_deref(),
        })?;
    } else {
        println!(
            "link {id} revoked{}",
            note.map(|n| format!(" ({n})")).unwrap_or_default()
        );
    }
    Ok(())
}

/// `link confirm` / `link reject`: a clinician's decision on a held link.
fn decide(global: &Global, id: LinkId, by: &str, note: &str, confirm: bool) -> CliResult {
    if by.trim().is_empty() {
        return Err(usage("--by must name who decides"));
    }
    if note.trim().is_empty() {
        return Err(usage("--note must say why"));
    }
    if confirm {
        let ctx = global.open_existing()?;
        let mut store = ctx.store;
        store.confirm_link(id, by, note)?;
        println!("link {id} confirmed by {by}: active, due now");
        return Ok(());
    }
    // A rejection ends the grant at the provider too, as `link revoke` does.
    let ctx = global.open_existing()?;
    let (puller, store) = ctx.puller()?;
    let writer = rxsync::store::Writer::start(store)?;
    let rt = runtime()?;
    let told = rt.block_on(async {
        let told = puller.reject(&writer, id, by, note).await;
        writer.close().await;
        told
    })?;
    println!("link {id} rejected by {by}: revoked, its tokens dropped here ({told})");
    Ok(())
}
