//! The published vectors: RFC 5849 §1.2 and §3.4.1.1, and oauthlib's
//! RSA-SHA1 result for the §3.4.1.1 base string.

use super::*;
use crate::fetch::oauth1::sign::request_params;

fn photos_consumer() -> Credentials {
    Credentials::new("dpf43f3p2l4k3l03", secret("kd94hf93k423kf44"))
}

struct Rfc12Case {
    name: &'static str,
    method: &'static str,
    url: &'static str,
    token: Option<(&'static str, &'static str)>,
    timestamp: u64,
    nonce: &'static str,
    callback: Option<&'static str>,
    verifier: Option<&'static str>,
    include_version: bool,
    placement: Placement,
    signature: &'static str,
}

const RFC_1_2: &[Rfc12Case] = &[
    Rfc12Case {
        name: "temporary credentials (§1.2 initiate)",
        method: "POST",
        url: "https://photos.example.net/initiate",
        token: None,
        timestamp: 137131200,
        nonce: "wIjqoS",
        callback: Some("http://printer.example.com/ready"),
        verifier: None,
        include_version: false,
        placement: Placement::Header,
        signature: "74KNZJeDHnMBp0EMJ9ZHt/XKycU=",
    },
    Rfc12Case {
        name: "token credentials (§1.2 token)",
        method: "POST",
        url: "https://photos.example.net/token",
        token: Some(("hh5s93j4hdidpola", "hdhd0244k9j7ao03")),
        timestamp: 137131201,
        nonce: "walatlh",
        callback: None,
        verifier: Some("hfdp7dh39dks9884"),
        include_version: false,
        placement: Placement::Header,
        signature: "gKgrFCywp7rO0OXSjdot/IHF7IU=",
    },
    Rfc12Case {
        name: "protected resource (§1.2 photos)",
        method: "GET",
        url: "http://photos.example.net/photos?file=vacation.jpg&size=original",
        token: Some(("nnch734d00sl2jdk", "pfkkdhi9sl3r4s00")),
        timestamp: 137131202,
        nonce: "chapoH",
        callback: None,
        verifier: None,
        include_version: false,
        placement: Placement::Header,
        signature: "MdpQcU8iPSUjWoN/UDMsK2sui9I=",
    },
    Rfc12Case {
        name: "protected resource with oauth_version, header",
        method: "GET",
        url: "http://photos.example.net/photos?file=vacation.jpg&size=original",
        token: Some(("nnch734d00sl2jdk", "pfkkdhi9sl3r4s00")),
        timestamp: 137131202,
        nonce: "chapoH",
        callback: None,
        verifier: None,
        include_version: true,
        placement: Placement::Header,
        signature: "1IAE9RzK+DqSqVTdQ/0zWANXVzs=",
    },
    Rfc12Case {
        name: "protected resource with oauth_version, query",
        method: "GET",
        url: "http://photos.example.net/photos?file=vacation.jpg&size=original",
        token: Some(("nnch734d00sl2jdk", "pfkkdhi9sl3r4s00")),
        timestamp: 137131202,
        nonce: "chapoH",
        callback: None,
        verifier: None,
        include_version: true,
        placement: Placement::Query,
        signature: "1IAE9RzK+DqSqVTdQ/0zWANXVzs=",
    },
];

#[test]
fn rfc5849_section_1_2_requests_sign_as_published() {
    for case in RFC_1_2 {
        let mut creds = photos_consumer();
        if let Some((token, token_secret)) = case.token {
            creds = creds.with_token(token, secret(token_secret));
        }
        let u = url(case.url);
        let request = Oauth1Request {
            method: case.method,
            url: &u,
            body: None,
        };
        let p = SignParams {
            placement: case.placement,
            include_version: case.include_version,
            callback: case.callback,
            verifier: case.verifier,
            realm: (case.placement == Placement::Header).then_some("Photos"),
            ..params(case.nonce, case.timestamp)
        };
        let signed = sign(&request, &creds, &p).expect(case.name);
        assert_eq!(
            signed.oauth_param("oauth_signature"),
            Some(case.signature),
            "{}",
            case.name
        );
        match case.placement {
            Placement::Header => {
                let header = signed.authorization().expect("header placement");
                assert!(
                    header.starts_with("OAuth realm=\"Photos\", "),
                    "{}",
                    case.name
                );
                let encoded = percent_encode(case.signature);
                assert!(
                    header.contains(&format!("oauth_signature=\"{encoded}\"")),
                    "{}",
                    case.name
                );
                assert_eq!(
                    signed.url(),
                    &u,
                    "{}: header placement leaves the URL alone",
                    case.name
                );
            }
            Placement::Query => {
                assert_eq!(signed.authorization(), None, "{}", case.name);
                let query = signed.url().query().unwrap_or_default();
                assert!(
                    query.starts_with("file=vacation.jpg&size=original&"),
                    "{}",
                    case.name
                );
                let encoded = percent_encode(case.signature);
                assert!(
                    query.contains(&format!("oauth_signature={encoded}")),
                    "{}",
                    case.name
                );
            }
        }
    }
}

#[test]
fn rfc5849_section_1_2_photos_base_string() {
    let u = url("http://photos.example.net/photos?file=vacation.jpg&size=original");
    let mut all = request_params(&u, None).expect("params");
    for (n, v) in [
        ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
        ("oauth_token", "nnch734d00sl2jdk"),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", "137131202"),
        ("oauth_nonce", "chapoH"),
    ] {
        all.push((n.to_string(), v.to_string()));
    }
    assert_eq!(
        signature_base_string("GET", &u, &all),
        "GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oauth_nonce%3DchapoH%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131202%26oauth_token%3Dnnch734d00sl2jdk%26size%3Doriginal"
    );
}

const RFC_3_4_1_1_BASE: &str = "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7";

const RFC_3_4_1_1_URL: &str = "http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b";
const RFC_3_4_1_1_BODY: &[u8] = b"c2&a3=2+q";
const FORM: &str = "application/x-www-form-urlencoded";

fn example_credentials() -> Credentials {
    Credentials::new(
        "9djdj82h48djs9d2",
        secret("ECrDNoq1VYzzzzzzzzzyAK7TwZNtPnkqatqZZZZ"),
    )
    .with_token("kkk9d7dh3k39sjv7", secret("just-a-string    asdasd"))
}

#[test]
fn rfc5849_section_3_4_1_1_base_string_is_exact() {
    let u = url(RFC_3_4_1_1_URL);
    let body = Body {
        content_type: Some(FORM),
        bytes: RFC_3_4_1_1_BODY,
    };
    let mut all = request_params(&u, Some(&body)).expect("params");
    for (n, v) in [
        ("oauth_consumer_key", "9djdj82h48djs9d2"),
        ("oauth_token", "kkk9d7dh3k39sjv7"),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", "137131201"),
        ("oauth_nonce", "7d8f3e4a"),
    ] {
        all.push((n.to_string(), v.to_string()));
    }
    assert_eq!(signature_base_string("POST", &u, &all), RFC_3_4_1_1_BASE);
    // The method is upper-cased whatever the caller passed.
    assert_eq!(signature_base_string("post", &u, &all), RFC_3_4_1_1_BASE);
}

/// The §3.4.1.1 request signed with each method. The signature method name
/// is part of the base string, so for the methods other than HMAC-SHA1 the
/// published value is checked on the published base string directly.
#[test]
fn rfc5849_section_3_4_1_1_signatures_for_every_method() {
    use crate::fetch::oauth1::sign::compute_signature;
    let creds = example_credentials();
    let token_secret = creds.token.as_ref().map(|t| &t.secret);
    let rsa = RsaSigningKey::from_pem(OAUTHLIB_RSA_KEY).expect("oauthlib key parses");
    let table: &[(SignatureMethod, &str)] = &[
        (SignatureMethod::HmacSha1, "wsdNmjGB7lvis0UJuPAmjvX/PXw="),
        (
            SignatureMethod::HmacSha256,
            "wdfdHUKXHbOnOGZP8WFAWMSAmWzN3EVBWWgXGlC/Eo4=",
        ),
        (
            SignatureMethod::Plaintext,
            "ECrDNoq1VYzzzzzzzzzyAK7TwZNtPnkqatqZZZZ&just-a-string%20%20%20%20asdasd",
        ),
        (
            SignatureMethod::RsaSha1,
            "mFY2KOEnlYWsTvUA+5kxuBIcvBYXu+ljw9ttVJQxKduMueGSVPCB1tK1PlqVLK738HK0t19ecBJfb6rMxUwrriw+MlBO+jpojkZIWccw1J4cAb4qu4M81DbpUAq4j/1w/QyTR4TWCODlEfN7Zfgy8+pf+TjiXfIwRC1jEWbuL1E=",
        ),
    ];
    for (method, expected) in table {
        let got = compute_signature(
            *method,
            RFC_3_4_1_1_BASE,
            &creds.consumer_secret,
            token_secret,
            Some(rsa.key()),
        )
        .expect("signs");
        assert_eq!(&got, expected, "{method}");
    }
    // And RSA-SHA1 verifies with the public key oauthlib publishes.
    let public = rsa_public_key_from_pem(OAUTHLIB_RSA_PUBLIC).expect("public key parses");
    assert_eq!(public, rsa.public_key());
    assert!(crate::fetch::oauth1::sign::rsa_sha1_verifies(
        &public,
        RFC_3_4_1_1_BASE,
        table[3].1
    ));
}

/// The whole §3.4.1.1 request through `sign`, realm and form body included.
#[test]
fn rfc5849_section_3_4_1_1_through_sign() {
    let u = url(RFC_3_4_1_1_URL);
    let request = Oauth1Request {
        method: "POST",
        url: &u,
        body: Some(Body {
            content_type: Some(FORM),
            bytes: RFC_3_4_1_1_BODY,
        }),
    };
    let p = SignParams {
        realm: Some("Example"),
        ..params("7d8f3e4a", 137131201)
    };
    let signed = sign(&request, &example_credentials(), &p).expect("signs");
    assert_eq!(
        signed.oauth_param("oauth_signature"),
        Some("wsdNmjGB7lvis0UJuPAmjvX/PXw=")
    );
    let header = signed.authorization().expect("header");
    assert!(header.starts_with("OAuth realm=\"Example\", oauth_consumer_key=\"9djdj82h48djs9d2\""));
}

#[test]
fn rsa_key_in_pkcs8_form_signs_the_same() {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let pkcs1 = RsaSigningKey::from_pem(OAUTHLIB_RSA_KEY).expect("pkcs1");
    let pem = pkcs1.key().to_pkcs8_pem(LineEnding::LF).expect("to pkcs8");
    let pkcs8 = RsaSigningKey::from_pem(&pem).expect("pkcs8 parses");
    assert_eq!(pkcs1.public_key(), pkcs8.public_key());
    assert_eq!(
        RsaSigningKey::from_pem("not a key").err(),
        Some(Oauth1Error::InvalidRsaKey)
    );
}

#[test]
fn base_string_uri_follows_section_3_4_1_2() {
    let table = [
        (
            "http://EXAMPLE.COM:80/r%20v/X?id=123",
            "http://example.com/r%20v/X",
        ),
        (
            "http://EXAMPLE.COM:80/r v/X?id=123",
            "http://example.com/r%20v/X",
        ),
        (
            "https://www.example.net:8080/?q=1",
            "https://www.example.net:8080/",
        ),
        ("HTTP://www.example.com:443/", "http://www.example.com:443/"),
        ("HTTPS://www.example.com:80/", "https://www.example.com:80/"),
        ("https://www.example.com:443/a", "https://www.example.com/a"),
        ("http://www.example.com", "http://www.example.com/"),
        (
            "http://www.example.com/path#fragment",
            "http://www.example.com/path",
        ),
        (
            "http://www.example.com/foo/bar/",
            "http://www.example.com/foo/bar/",
        ),
        (
            "http://user:pw@www.example.com/p",
            "http://www.example.com/p",
        ),
        (
            "https://[123:db8:fd00:1000::5]:13000",
            "https://[123:db8:fd00:1000::5]:13000/",
        ),
        ("http://127.0.0.1:8080/x?y", "http://127.0.0.1:8080/x"),
    ];
    for (input, expected) in table {
        assert_eq!(base_string_uri(&url(input)), expected, "{input}");
    }
}
