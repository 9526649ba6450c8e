//! Twilio's request signature (`X-Twilio-Signature`).
//!
//! Twilio signs the exact URL it called followed by every POST parameter,
//! sorted by name, each name immediately followed by its value, with
//! HMAC-SHA1 keyed by the account's auth token, base64-encoded.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

/// The header Twilio puts its signature in.
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// The header naming one webhook delivery: Twilio's retries of a request
/// carry the same token.
pub const IDEMPOTENCY_TOKEN_HEADER: &str = "i-twilio-idempotency-token";

/// The URLs Twilio may have signed for a request that `arrived` (the URL
/// rebuilt from the request): that one, and the configured `public` URL
/// (a custom domain or CloudFront in front) with the same query; each with
/// and without a trailing slash on its path, as Twilio signs the URL as it
/// was configured and a function URL's root arrives as `/`.
pub fn urls_to_try(arrived: &str, public: Option<&str>) -> Vec<String> {
    let query = arrived.split_once('?').map(|(_, q)| q);
    let mut bases = vec![
        arrived
            .split_once('?')
            .map_or(arrived, |(b, _)| b)
            .to_owned(),
    ];
    if let Some(public) = public {
        bases.push(public.to_owned());
    }
    let mut urls = Vec::new();
    for base in bases {
        let other = match base.strip_suffix('/') {
            Some(trimmed) => trimmed.to_owned(),
            None => format!("{base}/"),
        };
        for path in [base, other] {
            let url = match query {
                Some(q) => format!("{path}?{q}"),
                None => path,
            };
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
    }
    urls
}

/// Whether `signature` is Twilio's signature of this request at any of `urls`.
pub fn verify_any(
    auth_token: &str,
    urls: &[String],
    params: &[(String, String)],
    signature: &str,
) -> bool {
    urls.iter()
        .any(|url| verify(auth_token, url, params, signature))
}

/// One delivery of one request: Twilio's token with the request's signature,
/// so a token replayed on another request names a different delivery.
pub fn delivery(token: &str, signature: &str) -> String {
    use sha1::Digest as _;
    let digest = Sha1::digest(format!("{token}\n{signature}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn mac(auth_token: &str, url: &str, params: &[(String, String)]) -> HmacSha1 {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // Stable sort by name keeps repeated names in the order they were sent.
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut mac =
        HmacSha1::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// The signature Twilio would send for a POST of `params` to `url`.
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(mac(auth_token, url, params).finalize().into_bytes())
}

/// Whether `signature` is Twilio's signature of this request; compared in constant time.
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let Ok(given) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    mac(auth_token, url, params).verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn tries_the_arrival_and_the_public_url_each_with_and_without_the_slash() {
        assert_eq!(
            urls_to_try(
                "https://abc.lambda-url.eu-west-1.on.aws/?invitation_id=i&attempt=1",
                Some("https://hooks.example.com/twilio"),
            ),
            [
                "https://abc.lambda-url.eu-west-1.on.aws/?invitation_id=i&attempt=1",
                "https://abc.lambda-url.eu-west-1.on.aws?invitation_id=i&attempt=1",
                "https://hooks.example.com/twilio?invitation_id=i&attempt=1",
                "https://hooks.example.com/twilio/?invitation_id=i&attempt=1",
            ]
        );
        assert_eq!(
            urls_to_try("http://127.0.0.1:3000/api/whatsapp/webhook", None),
            [
                "http://127.0.0.1:3000/api/whatsapp/webhook",
                "http://127.0.0.1:3000/api/whatsapp/webhook/",
            ]
        );
    }

    #[test]
    fn a_delivery_is_the_token_with_the_signature() {
        assert_eq!(delivery("t1", "sig"), delivery("t1", "sig"));
        assert_ne!(delivery("t1", "sig"), delivery("t1", "other"));
        assert_ne!(delivery("t1", "sig"), delivery("t2", "sig"));
        assert_eq!(delivery("t1", "sig").len(), 40);
    }

    /// Twilio's documented example (computed by Twilio, not by this code).
    #[test]
    fn matches_twilios_published_vector() {
        let params = pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(sign("12345", url, &params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert!(verify(
            "12345",
            url,
            &params,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
    }

    /// Computed with Python's hmac module; parameters deliberately unsorted.
    #[test]
    fn matches_an_independent_vector_with_query_and_unsorted_params() {
        let params = pairs(&[
            ("MessageStatus", "delivered"),
            ("To", "whatsapp:+5511999990000"),
            ("AccountSid", "ACtest"),
            ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
            ("From", "whatsapp:+14155238886"),
            ("ApiVersion", "2010-04-01"),
        ]);
        let url = "http://127.0.0.1:3000/api/whatsapp/webhook?invitation_id=inv_abc&attempt=2";
        let token = "test-auth-token-0000000000000000";
        assert!(verify(token, url, &params, "hjdYyw5vftBcLlYo82JEJkmwH+Y="));
        assert!(!verify(token, url, &params, "hjdYyw5vftBcLlYo82JEJkmwH+Z="));
        assert!(!verify(
            token,
            "http://127.0.0.1:3000/api/whatsapp/webhook?invitation_id=inv_abc&attempt=3",
            &params,
            "hjdYyw5vftBcLlYo82JEJkmwH+Y="
        ));
        assert!(!verify(
            "other-token",
            url,
            &params,
            "hjdYyw5vftBcLlYo82JEJkmwH+Y="
        ));
        assert!(!verify(token, url, &params, "not base64!"));
    }
}
