//! One refresh per link across all workers (`Store::take_refresh_lock`,
//! migration 0022_refresh_lock), on the engine the suite runs on: a second
//! worker waits while the first refreshes; a sync whose read of the tokens
//! is older than a rotation is stopped before it sends the old refresh
//! token; and a refresh whose lease was taken over still commits the pair
//! the provider rotated (no lost rotation), while a stale one cannot.

use crate::support::TestEnv;
use rxsync::store::{LinkSecrets, NewLink, NewPatient, RefreshTurn};
use rxsync::vault::VaultKey;
use secrecy::SecretString;

#[test]
fn one_refresh_per_link_across_workers_and_no_lost_rotation() {
    let env = TestEnv::new();
    let mut store = env.store();
    let (key, _) = VaultKey::generate();
    let patient = rxsync::domain::PatientId::parse("P1").expect("id");
    store
        .add_patient(&NewPatient::with_id(patient.clone()), "test")
        .expect("patient");
    let (id, _) = store
        .add_link(
            &NewLink {
                patient: &patient,
                provider: &rxsync::domain::ProviderId::parse("ehr").expect("provider id"),
                remote_patient: "r1",
                secrets: LinkSecrets::Oauth2 {
                    access_token: "a0".to_string().into(),
                    refresh_token: Some("r0".to_string().into()),
                },
                expires_at: None,
                scope: None,
                grant_expires_at: None,
            },
            &key,
            "test",
        )
        .expect("link");
    let ttl = chrono::Duration::minutes(2);
    let lease = chrono::Duration::minutes(15);
    // Worker A syncs the link and takes its refresh lock.
    let mut a = store.claim_link(id, "worker-a", lease).expect("A claims");
    assert_eq!(
        store
            .take_refresh_lock(id, "worker-a", a.sealed_refresh_token(), ttl)
            .expect("lock"),
        RefreshTurn::Taken
    );
    // A's lease is taken over (A froze): B claims, but must wait for A's refresh.
    store
        .release_link(id, "worker-a")
        .expect("A's lease runs out");
    let b = store.claim_link(id, "worker-b", lease).expect("B claims");
    assert!(matches!(
        store
            .take_refresh_lock(id, "worker-b", b.sealed_refresh_token(), ttl)
            .expect("lock"),
        RefreshTurn::Busy { holder, .. } if holder == "worker-a"
    ));
    // A's refresh answered: the provider rotated r0 → r1. A no longer holds
    // the lease, but the stored refresh token is still the one A sent, so
    // the rotated pair is stored (and the lock given back).
    store
        .store_refreshed_tokens(
            &mut a,
            &key,
            &SecretString::from("a1".to_string()),
            Some(&SecretString::from("r1".to_string())),
            None,
            None,
            &serde_json::json!({}),
        )
        .expect("the rotated pair is kept");
    // B read r0 before the rotation: sending it now would be a reuse.
    assert_eq!(
        store
            .take_refresh_lock(id, "worker-b", b.sealed_refresh_token(), ttl)
            .expect("lock"),
        RefreshTurn::Rotated
    );
    // And a stale commit (B's read, no lease of A's, r0 no longer stored) is refused.
    let mut stale = b.clone();
    store.release_link(id, "worker-b").expect("B gives back");
    let refused = store.store_refreshed_tokens(
        &mut stale,
        &key,
        &SecretString::from("a2".to_string()),
        Some(&SecretString::from("r2".to_string())),
        None,
        None,
        &serde_json::json!({}),
    );
    assert!(
        refused.is_err(),
        "a stale pair must not overwrite the rotation"
    );
    // The next sync reads r1 and may refresh.
    let c = store.claim_link(id, "worker-c", lease).expect("C claims");
    match c.secrets(&key).expect("opens") {
        LinkSecrets::Oauth2 { refresh_token, .. } => {
            use secrecy::ExposeSecret;
            assert_eq!(refresh_token.expect("kept").expose_secret(), "r1");
        }
        LinkSecrets::Oauth1 { .. } => panic!("an OAuth 2.0 link"),
    }
    assert_eq!(
        store
            .take_refresh_lock(id, "worker-c", c.sealed_refresh_token(), ttl)
            .expect("lock"),
        RefreshTurn::Taken
    );
    store
        .release_refresh_lock(id, "worker-c")
        .expect("gives back");
}
