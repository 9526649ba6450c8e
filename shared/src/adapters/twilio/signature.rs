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
