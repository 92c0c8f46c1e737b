//! `rxsync provider discover|register`

use super::context::{Global, runtime};
use super::{CliResult, Failure, usage};
use anyhow::anyhow;
use rxsync::config::{ClientAuth, ProviderAuth};
use rxsync::domain::ProviderId;
use rxsync::fetch::discover;
use rxsync::fetch::http::HttpClient;
use rxsync::fetch::register::{self, ClientMetadata};
use rxsync::store::{NewRegistration, Writer};
use std::path::PathBuf;
use url::Url;

/// `--format toml|json` for `provider discover`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DiscoverFormat {
    #[default]
    Toml,
    Json,
}

/// `--format text|json` for `provider register`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum RegisterFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Read a FHIR server's discovery documents and print a [[providers]] block.
    ///
    /// Reads URL/.well-known/smart-configuration, else the oauth-uris
    /// extension of URL/metadata, else URL/.well-known/openid-configuration
    /// (https only; plain http only to a loopback address), and prints a
    /// ready [[providers]] TOML block: endpoints, scopes, client
    /// authentication, with what was not found as comments (also on
    /// stderr). Keys this build does not accept yet are printed as comments.
    Discover {
        /// The FHIR base URL
        #[arg(value_name = "URL")]
        url: String,
        /// The provider id to print [default: from the host name]
        #[arg(long, value_name = "ID")]
        id: Option<String>,
        /// PEM file with extra CA certificates to trust
        #[arg(long, value_name = "PATH")]
        ca_file: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = DiscoverFormat::Toml)]
        format: DiscoverFormat,
    },
    /// Register rxsync as an OAuth 2.0 client at a provider (RFC 7591).
    ///
    /// Posts rxsync's client metadata (redirect_uri, scopes, client_auth of
    /// the provider's config) to auth.registration_url, or to the
    /// registration endpoint discovery finds (discover = true). The issued
    /// client id and secret are sealed in the database, never written to a
    /// file or printed (only the client id is shown). A provider whose
    /// config names a client_id uses that client: it takes precedence.
    Register {
        #[arg(long, value_name = "ID")]
        provider: String,
        /// Where the provider fetches rxsync's public keys
        /// (client_auth = "private_key_jwt" only)
        #[arg(long, value_name = "URL")]
        jwks_uri: Option<String>,
        #[arg(long, value_enum, default_value_t = RegisterFormat::Text)]
        format: RegisterFormat,
    },
}

pub fn run(global: &Global, c: Command) -> CliResult {
    match c {
        Command::Discover {
            url,
            id,
            ca_file,
            format,
        } => discover_cmd(&url, id, ca_file, format),
        Command::Register {
            provider,
            jwks_uri,
            format,
        } => register_cmd(global, &provider, jwks_uri, format),
    }
}

/// A provider id from a host name: `ehr.example.org` → `ehr.example.org`,
/// other characters folded to `-`.
fn id_from(url: &Url) -> String {
    let host = url.host_str().unwrap_or("provider");
    let id: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let id = id.trim_matches('-').to_string();
    if id.is_empty() {
        "provider".to_string()
    } else {
        id
    }
}

fn discover_cmd(
    url: &str,
    id: Option<String>,
    ca_file: Option<PathBuf>,
    format: DiscoverFormat,
) -> CliResult {
    let base = Url::parse(url).map_err(|e| usage(format!("{url:?} is not a URL: {e}")))?;
    discover::check_url(&base).map_err(usage)?;
    let id = id.unwrap_or_else(|| id_from(&base));
    ProviderId::parse(&id).map_err(|e| usage(format!("--id {id:?}: {e}")))?;
    let http = HttpClient::new(discover::limits(), Vec::new(), ca_file.as_deref())
        .map_err(|e| Failure::Failed(e.into()))?;
    let found = runtime()?
        .block_on(async {
            let mut trail = Vec::new();
            discover::discover(&http, &base, &mut trail).await
        })
        .map_err(|e| Failure::Failed(e.into()))?;
    let d = &found.discovered;
    for m in &d.missing {
        eprintln!("note: not found: {m}");
    }
    let toml = rxsync::discovery::toml::render(&id, &base, &found.document_url, d);
    match format {
        DiscoverFormat::Toml => print!("{toml}"),
        DiscoverFormat::Json => super::output::json(&serde_json::json!({
            "id": id,
            "base_url": base.as_str(),
            "document_url": found.document_url.as_str(),
            "max_age_secs": found.max_age.as_secs(),
            "discovered": d,
            "toml": toml,
        }))?,
    }
    Ok(())
}

fn register_cmd(
    global: &Global,
    provider_id: &str,
    jwks_uri: Option<String>,
    format: RegisterFormat,
) -> CliResult {
    let ctx = global.open()?;
    let file = ctx.config.file.as_ref().map_or_else(
        || "(no config file)".to_string(),
        |f| f.display().to_string(),
    );
    let p = ctx
        .config
        .provider(provider_id)
        .cloned()
        .ok_or_else(|| usage(format!("no provider {provider_id:?} in {file}")))?;
    let ProviderAuth::Oauth2(o) = &p.auth else {
        return Err(usage(format!(
            "provider {provider_id} ({file}): auth.scheme is \"oauth1\"; dynamic registration is OAuth 2.0"
        )));
    };
    if o.client_id.is_some() {
        return Err(usage(format!(
            "provider {provider_id} ({file}): auth.client_id is set, and a configured client takes precedence over a registered one; remove auth.client_id (and its secret) to register"
        )));
    }
    let redirect = o.redirect_uri.as_ref().ok_or_else(|| {
        usage(format!(
            "provider {provider_id} ({file}): auth.redirect_uri is missing; registration sends it as the client's redirect URI"
        ))
    })?;
    let auth_method = match (&o.private_key_jwt, o.client_auth) {
        (Some(_), _) => "private_key_jwt",
        (None, ClientAuth::Basic) => "client_secret_basic",
        (None, ClientAuth::Post) => "client_secret_post",
        // A public client (RFC 8252 native app): registered without a secret.
        (None, ClientAuth::None) => "none",
    };
    let jwks_uri = match (auth_method, jwks_uri) {
        ("private_key_jwt", None) => {
            return Err(usage(format!(
                "provider {provider_id} ({file}): client_auth = \"private_key_jwt\" needs --jwks-uri (where the provider fetches rxsync's public keys)"
            )));
        }
        ("private_key_jwt", Some(u)) => Some(
            Url::parse(&u)
                .map_err(|e| usage(format!("--jwks-uri {u:?}: {e}")))?
                .to_string(),
        ),
        (_, Some(_)) => {
            return Err(usage(
                "--jwks-uri is only for client_auth = \"private_key_jwt\"",
            ));
        }
        (_, None) => None,
    };
    let metadata = ClientMetadata {
        client_name: "rxsync".into(),
        redirect_uris: vec![redirect.to_string()],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        response_types: vec!["code".into()],
        token_endpoint_auth_method: auth_method.into(),
        scope: (!o.scopes.is_empty()).then(|| o.scopes.join(" ")),
        jwks_uri,
    };
    let key = std::sync::Arc::new(ctx.vault_key()?);
    let http = HttpClient::for_provider(&p).map_err(|e| Failure::Failed(e.into()))?;
    let writer = Writer::start(ctx.store)?;
    let rt = runtime()?;
    let outcome = rt.block_on(async {
        let url = match &o.registration_url {
            Some(u) => u.clone(),
            None => {
                let mut trail = Vec::new();
                let d = rxsync::pull::client::endpoints(&writer, &http, &p, &mut trail)
                    .await
                    .map_err(|e| Failure::Failed(anyhow!(e)))?;
                d.and_then(|d| d.registration_endpoint).ok_or_else(|| {
                    Failure::Failed(anyhow!(
                        "provider {provider_id} ({file}): no registration endpoint: auth.registration_url is not set{}",
                        if p.discover {
                            " and discovery found none (the server offers no dynamic registration)"
                        } else {
                            " and discover is not true"
                        }
                    ))
                })?
            }
        };
        if let Err(e) = discover::check_url(&url) {
            return Err(Failure::Failed(anyhow!(
                "provider {provider_id}: registration endpoint {e}"
            )));
        }
        let issued = register::register(http.inner(), &url, &metadata, http.limits().timeout)
            .await
            .map_err(|e| Failure::Failed(anyhow!("provider {provider_id}: {e}")))?;
        let expires = issued.client_secret_expires_at.and_then(|t| {
            chrono::DateTime::from_timestamp(t, 0).map(rxsync::store::rfc3339_at)
        });
        let saved = {
            let key = std::sync::Arc::clone(&key);
            let provider = provider_id.to_string();
            let url = url.to_string();
            let id = issued.client_id.clone();
            let secret = issued.client_secret.clone();
            let token = issued.registration_access_token.clone();
            let uri = issued.registration_client_uri.clone();
            let method = issued.token_endpoint_auth_method.clone();
            let expires = expires.clone();
            writer
                .run(move |s| {
                    s.save_registration(
                        &key,
                        &NewRegistration {
                            provider: &provider,
                            registration_url: &url,
                            client_id: &id,
                            client_secret: secret.as_ref(),
                            registration_access_token: token.as_ref(),
                            registration_client_uri: uri.as_deref(),
                            auth_method: &method,
                            client_secret_expires_at: expires,
                        },
                        "cli",
                    )
                })
                .await
        };
        saved.map_err(|e| Failure::Failed(e.into()))?;
        Ok((url, issued, expires))
    });
    rt.block_on(writer.close());
    let (url, issued, expires) = outcome?;
    match format {
        RegisterFormat::Text => {
            println!(
                "registered at {}: client_id {} ({}{}); its credentials are sealed in the database",
                rxsync::fetch::auth::redact(&url),
                issued.client_id,
                issued.token_endpoint_auth_method,
                if issued.client_secret.is_some() {
                    ", with a client secret"
                } else {
                    ""
                }
            );
            if issued.token_endpoint_auth_method != auth_method {
                eprintln!(
                    "note: asked for {auth_method}, the server registered {}; rxsync uses what it registered",
                    issued.token_endpoint_auth_method
                );
            }
        }
        RegisterFormat::Json => super::output::json(&serde_json::json!({
            "provider": provider_id,
            "registration_url": rxsync::fetch::auth::redact(&url),
            "client_id": issued.client_id,
            "token_endpoint_auth_method": issued.token_endpoint_auth_method,
            "client_secret": issued.client_secret.is_some(),
            "client_secret_expires_at": expires,
            "registration_access_token": issued.registration_access_token.is_some(),
        }))?,
    }
    Ok(())
}
