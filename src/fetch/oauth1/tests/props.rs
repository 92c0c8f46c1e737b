//! Property tests: round trips over arbitrary parameters and secrets.

use proptest::prelude::*;

use super::fixtures::*;
use super::*;

fn any_text() -> impl Strategy<Value = String> {
    // Unicode, the form-encoding specials and the characters signers
    // mis-encode, in any mix.
    proptest::collection::vec(
        prop_oneof![
            any::<char>().prop_filter("no NUL", |c| *c != '\0'),
            proptest::sample::select(vec![
                ' ', '+', '%', '&', '=', '~', '*', '!', '\'', '"', '#', '?', '/'
            ]),
        ],
        0..12,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn prop_signed_requests_verify_and_a_changed_value_does_not(
        pairs in proptest::collection::vec((any_text(), any_text()), 0..5),
        consumer_secret in any_text(),
        token_secret in any_text(),
        method_index in 0usize..3,
        query_placement in any::<bool>(),
    ) {
        let method = [SignatureMethod::HmacSha1, SignatureMethod::HmacSha256, SignatureMethod::RsaSha1][method_index];
        let placement = if query_placement { Placement::Query } else { Placement::Header };
        let mut u = url("https://example.com/r");
        if !pairs.is_empty() {
            u.query_pairs_mut().extend_pairs(pairs.iter().filter(|(n, _)| !n.starts_with("oauth_")));
        }
        let creds = Credentials::new("ck", secret(&consumer_secret))
            .with_token("tk", secret(&token_secret))
            .with_rsa_key(RsaSigningKey::from_pem(OAUTHLIB_RSA_KEY).expect("key"));
        let signed = sign(&get(&u), &creds, &signing(method, placement)).expect("signs");
        let keys = |_: &str, _: Option<&str>| Some(VerifierKeys {
            consumer_secret: Some(secret(&consumer_secret)),
            token_secret: Some(secret(&token_secret)),
            rsa_public_key: rsa_public_key_from_pem(OAUTHLIB_RSA_PUBLIC).ok(),
        });
        let r = received(&signed, "GET", None);
        prop_assert!(verify(&r, keys, NOW, SKEW).is_ok());

        let mut tampered = signed.url().clone();
        let extra = format!("{}&tampered=1", tampered.query().unwrap_or_default());
        tampered.set_query(Some(&extra));
        let t = ReceivedRequest { url: &tampered, ..r };
        prop_assert_eq!(verify(&t, keys, NOW, SKEW), Err(VerifyError::BadSignature));
    }

    #[test]
    fn prop_percent_encoding_round_trips_and_uses_only_unreserved(s in any_text()) {
        let encoded = percent_encode(&s);
        prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
        let decoded = percent_encoding::percent_decode_str(&encoded).decode_utf8().expect("UTF-8");
        prop_assert_eq!(decoded, s);
    }

    #[test]
    fn prop_header_written_is_header_read(
        pairs in proptest::collection::btree_map(any_text().prop_filter("name", |n| !n.is_empty()), any_text(), 0..6),
    ) {
        let params: Vec<(String, String)> = pairs.into_iter().filter(|(n, _)| n != "realm").collect();
        let written = crate::fetch::oauth1::header::write(Some("R, x"), &params);
        let parsed = crate::fetch::oauth1::header::parse(&written).expect("parses");
        prop_assert_eq!(parsed.realm.as_deref(), Some("R, x"));
        prop_assert_eq!(parsed.params, params);
    }
}
