//! `rxsync link invite`: a single-use invitation URL for the browser path.
//! The arguments and the configuration are checked before anything is
//! stored; the URL is printed once (alone on the first line of stdout, or
//! as `url` in JSON) and only its token's hash is kept.

use super::context::Global;
use super::link::configured;
use super::output::{self, Format};
use super::{CliResult, Failure, usage};
use anyhow::anyhow;
use rxsync::consent::{self, invite};
use rxsync::domain::PatientId;
use rxsync::store::{NewInvitation, StoreError};

pub fn run(
    global: &Global,
    patient: &str,
    provider_id: &str,
    expires: &str,
    format: Format,
) -> CliResult {
    let patient = PatientId::parse(patient).map_err(|e| usage(format!("--patient: {e}")))?;
    let lifetime = invite::parse_lifetime(expires).map_err(|e| usage(format!("--expires: {e}")))?;
    let mut ctx = global.open()?;
    let file = ctx
        .config
        .file
        .as_ref()
        .map_or("the defaults".to_string(), |f| f.display().to_string());
    let public = ctx.config.review.public_url.clone().ok_or_else(|| {
        usage(format!(
            "review.public_url is not set in {file}: an invitation is a URL of the review app as patients reach it (such as https://rxsync.example.org)"
        ))
    })?;
    let provider = configured(&ctx.config, provider_id)?;
    consent::can_consent(provider).map_err(|e| usage(format!("{e} (in {file})")))?;
    let fresh = invite::fresh(&public, lifetime);
    let expires_at = rxsync::store::rfc3339_at(fresh.expires_at);
    let made = ctx.store.make_invitation(
        &NewInvitation {
            id: &fresh.id,
            token_sha256: &fresh.token_sha256,
            patient: &patient,
            provider: &provider.id,
            expires_at: &expires_at,
        },
        "cli",
    );
    match made {
        Ok(()) => {}
        Err(StoreError::NotFound {
            what: "patient", ..
        }) => {
            return Err(Failure::Failed(anyhow!(
                "patient {patient} does not exist (add it: rxsync patient add --id {patient}); nothing stored"
            )));
        }
        Err(e) => return Err(e.into()),
    }
    match format {
        Format::Json => output::json(&serde_json::json!({
            "invitation": fresh.id,
            "url": invite::reveal(&fresh),
            "patient": patient.as_str(),
            "provider": provider.id.as_str(),
            "expires_at": expires_at,
        }))?,
        Format::Table => {
            println!("{}", invite::reveal(&fresh));
            eprintln!(
                "invitation {} for patient {patient} at {}: works once, until {expires_at}",
                fresh.id, provider.id
            );
        }
    }
    Ok(())
}
