//! OAuth 2.0 against the sandbox: grants, refresh with rotation, reuse
//! detection, omission, revocation, introspection, bearer placement.

use serde_json::{Value, json};

use super::{Client, bearer};
use crate::support::Sandbox;

const CLIENT: (&str, &str) = ("demo-client", "demo-client-secret");

fn refresh(sandbox: &Sandbox, client: &Client, refresh_token: &str) -> super::Reply {
    client.post_form(
        &sandbox.url("/oauth2/token"),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
        Some(CLIENT),
    )
}

fn ccr_status(sandbox: &Sandbox, client: &Client, grant: &Value, patient: &str) -> u16 {
    client
        .get(
            &sandbox.url(&format!("/ccr/{patient}")),
            &[("authorization", &bearer(grant))],
        )
        .status
}

fn stats(sandbox: &Sandbox) -> Value {
    sandbox.admin("/admin/stats", None).1
}

#[test]
fn an_admin_grant_is_a_real_token_response() {
    let sandbox = Sandbox::start();
    let grant = sandbox.grant("demo-client", "p1");
    assert_eq!(grant["token_type"], "Bearer");
    assert_eq!(grant["patient"], "p1");
    assert_eq!(grant["expires_in"], 3600);
    assert!(
        grant["scope"]
            .as_str()
            .is_some_and(|s| s.contains("offline_access"))
    );
    let access = grant["access_token"].as_str().expect("access token");
    let refresh = grant["refresh_token"].as_str().expect("refresh token");
    assert!(access.len() >= 40 && refresh.len() >= 40 && access != refresh);
    assert_ne!(
        sandbox.grant("demo-client", "p1")["access_token"],
        grant["access_token"]
    );

    let (status, _) = sandbox.admin(
        "/admin/oauth2/grants",
        Some(&json!({"client_id": "nobody", "patient": "p1"})),
    );
    assert_eq!(status, 400);
    let (status, _) = sandbox.admin(
        "/admin/oauth2/grants",
        Some(&json!({"client_id": "demo-client", "patient": "../etc"})),
    );
    assert_eq!(status, 400);
}

#[test]
fn refresh_rotates_and_reusing_the_old_refresh_token_revokes_the_grant() {
    let sandbox = Sandbox::start();
    let client = Client::new();
    let first = sandbox.grant("demo-client", "p1");
    let first_refresh = first["refresh_token"].as_str().expect("refresh token");

    let reply = refresh(&sandbox, &client, first_refresh);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let second = reply.json();
    assert_eq!(second["patient"], "p1");
    assert_eq!(second["token_type"], "Bearer");
    assert_eq!(second["expires_in"], 3600);
    assert!(second["scope"].is_string());
    let second_refresh = second["refresh_token"]
        .as_str()
        .expect("a new refresh token");
    assert_ne!(second_refresh, first_refresh);
    assert_eq!(ccr_status(&sandbox, &client, &second, "p1"), 200);

    // The consumed token comes back: the whole grant is revoked.
    let reuse = refresh(&sandbox, &client, first_refresh);
    assert_eq!(reuse.status, 400);
    assert_eq!(reuse.json()["error"], "invalid_grant");
    assert_eq!(ccr_status(&sandbox, &client, &second, "p1"), 401);
    assert_eq!(ccr_status(&sandbox, &client, &first, "p1"), 401);
    let after = refresh(&sandbox, &client, second_refresh);
    assert_eq!(after.json()["error"], "invalid_grant");

    let counters = stats(&sandbox);
    assert_eq!(counters["refreshes"], 1);
    assert_eq!(counters["refresh_reuse_revocations"], 1);
}

#[test]
fn refresh_authenticates_clients_by_basic_by_form_and_public_clients_by_id() {
    let sandbox = Sandbox::start();
    let client = Client::new();
    let token = sandbox.url("/oauth2/token");

    let grant = sandbox.grant("demo-client", "p1");
    let form = client.post_form(
        &token,
        &[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                grant["refresh_token"].as_str().expect("rt"),
            ),
            ("client_id", "demo-client"),
            ("client_secret", "demo-client-secret"),
        ],
        None,
    );
    assert_eq!(form.status, 200, "{}", form.body);

    let public = sandbox.grant("demo-public", "p2");
    let reply = client.post_form(
        &token,
        &[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                public["refresh_token"].as_str().expect("rt"),
            ),
            ("client_id", "demo-public"),
        ],
        None,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["patient"], "p2");

    let grant = sandbox.grant("demo-client", "p1");
    let rt = grant["refresh_token"].as_str().expect("rt");
    let refused = [
        // A wrong secret, an unknown client, no authentication at all.
        (
            vec![("grant_type", "refresh_token"), ("refresh_token", rt)],
            Some(("demo-client", "wrong")),
            401,
            "invalid_client",
        ),
        (
            vec![("grant_type", "refresh_token"), ("refresh_token", rt)],
            Some(("nobody", "x")),
            401,
            "invalid_client",
        ),
        (
            vec![("grant_type", "refresh_token"), ("refresh_token", rt)],
            None,
            401,
            "invalid_client",
        ),
        // A confidential client pretending to be public.
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("client_id", "demo-client"),
            ],
            None,
            401,
            "invalid_client",
        ),
        // Another client's refresh token.
        (
            vec![("grant_type", "refresh_token"), ("refresh_token", rt)],
            Some(("demo-norotate", "demo-norotate-secret")),
            400,
            "invalid_grant",
        ),
        (
            vec![("grant_type", "authorization_code"), ("code", "x")],
            Some(CLIENT),
            400,
            "invalid_grant",
        ),
        (
            vec![("grant_type", "password"), ("username", "x")],
            Some(CLIENT),
            400,
            "unsupported_grant_type",
        ),
        (
            vec![("grant_type", "refresh_token")],
            Some(CLIENT),
            400,
            "invalid_request",
        ),
    ];
    for (form, basic, status, error) in refused {
        let reply = client.post_form(&token, &form, basic);
        assert_eq!(reply.status, status, "{form:?}: {}", reply.body);
        assert_eq!(reply.json()["error"], error, "{form:?}");
        if status == 401 {
            assert_eq!(
                reply.header("www-authenticate"),
                Some("Basic realm=\"sandbox\"")
            );
        }
    }
    // The refused attempts did not consume the token.
    assert_eq!(refresh(&sandbox, &client, rt).status, 200);
}

#[test]
fn a_client_that_omits_refresh_tokens_keeps_the_old_one_valid() {
    let sandbox = Sandbox::start();
    let client = Client::new();
    let grant = sandbox.grant("demo-norotate", "p1");
    let rt = grant["refresh_token"].as_str().expect("refresh token");
    for _ in 0..3 {
        let reply = client.post_form(
            &sandbox.url("/oauth2/token"),
            &[("grant_type", "refresh_token"), ("refresh_token", rt)],
            Some(("demo-norotate", "demo-norotate-secret")),
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        let json = reply.json();
        assert!(json.get("refresh_token").is_none(), "{json}");
        assert_eq!(ccr_status(&sandbox, &client, &json, "p1"), 200);
    }
}

#[test]
fn an_access_token_issued_invalid_is_refused_until_refreshed() {
    let sandbox = Sandbox::start();
    let client = Client::new();
    let (_, grant) = sandbox.admin(
        "/admin/oauth2/grants",
        Some(&json!({"client_id": "demo-client", "patient": "p1", "access_token_valid": false, "expires_in": 120, "scope": "patient/MedicationRequest.rs"})),
    );
    assert_eq!(grant["expires_in"], 120);
    assert_eq!(grant["scope"], "patient/MedicationRequest.rs");
    assert_eq!(ccr_status(&sandbox, &client, &grant, "p1"), 401);
    let fresh = refresh(
        &sandbox,
        &client,
        grant["refresh_token"].as_str().expect("rt"),
    )
    .json();
    assert_eq!(ccr_status(&sandbox, &client, &fresh, "p1"), 200);
}

#[test]
fn revocation_ends_the_grant_and_introspection_tells() {
    let sandbox = Sandbox::start();
    let client = Client::new();
    let grant = sandbox.grant("demo-client", "p1");
    let access = grant["access_token"].as_str().expect("access token");
    let introspect = |token: &str, basic| {
        client.post_form(
            &sandbox.url("/oauth2/introspect"),
            &[("token", token)],
            Some(basic),
        )
    };

    let active = introspect(access, CLIENT).json();
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], "demo-client");
    assert_eq!(active["patient"], "p1");
    assert!(active["exp"].as_u64().is_some());
    assert!(active["scope"].is_string());
    let refresh_token = grant["refresh_token"].as_str().expect("rt");
    let refresh_info = introspect(refresh_token, CLIENT).json();
    assert_eq!(refresh_info["active"], true);
    assert!(refresh_info.get("exp").is_none(), "{refresh_info}");
    // Another client learns nothing.
    let other = introspect(access, ("demo-norotate", "demo-norotate-secret")).json();
    assert_eq!(other, json!({"active": false}));

    let revoke = |form: &[(&str, &str)], basic| {
        client.post_form(&sandbox.url("/oauth2/revoke"), form, basic)
    };
    assert_eq!(
        revoke(&[("token", "no-such-token")], Some(CLIENT)).status,
        200
    );
    assert_eq!(
        revoke(&[("token", access)], Some(("demo-client", "bad"))).status,
        401
    );
    assert_eq!(ccr_status(&sandbox, &client, &grant, "p1"), 200);
    let revoked = revoke(
        &[("token", access), ("token_type_hint", "access_token")],
        Some(CLIENT),
    );
    assert_eq!(revoked.status, 200);
    assert_eq!(ccr_status(&sandbox, &client, &grant, "p1"), 401);
    assert_eq!(introspect(access, CLIENT).json(), json!({"active": false}));
    // The grant's refresh token died with it.
    let rt = grant["refresh_token"].as_str().expect("rt");
    assert_eq!(
        refresh(&sandbox, &client, rt).json()["error"],
        "invalid_grant"
    );

    // Revoking by the refresh token ends the grant too.
    let second = sandbox.grant("demo-client", "p1");
    revoke(
        &[("token", second["refresh_token"].as_str().expect("rt"))],
        Some(CLIENT),
    );
    assert_eq!(ccr_status(&sandbox, &client, &second, "p1"), 401);
    assert_eq!(stats(&sandbox)["revocations"], 2);
}

#[test]
fn bearer_tokens_travel_in_one_place_only() {
    let sandbox = Sandbox::start();
    let client = Client::new();
    let grant = sandbox.grant("demo-client", "p1");
    let token = grant["access_token"].as_str().expect("token");
    let both = client.get(
        &sandbox.url(&format!("/ccr/p1?access_token={token}")),
        &[("authorization", &bearer(&grant))],
    );
    assert_eq!(both.status, 400);
    assert_eq!(both.json()["error"], "invalid_request");

    let query = client.get(&sandbox.url(&format!("/ccr/p1?access_token={token}")), &[]);
    assert_eq!(query.status, 200);

    let unknown = client.get(
        &sandbox.url("/ccr/p1"),
        &[("authorization", "Bearer not-a-token")],
    );
    assert_eq!(unknown.status, 401);
    let challenge = unknown.header("www-authenticate").expect("a challenge");
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""),
        "{challenge}"
    );

    let expired = sandbox
        .admin(
            "/admin/oauth2/grants",
            Some(&json!({"client_id": "demo-client", "patient": "p1", "expires_in": 0})),
        )
        .1;
    assert_eq!(ccr_status(&sandbox, &client, &expired, "p1"), 401);

    let counters = stats(&sandbox);
    assert_eq!(counters["bearer_ok"], 1);
    assert_eq!(counters["bearer_refused"], 3);
}
