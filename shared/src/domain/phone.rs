use std::fmt;

/// An E.164 phone number (`+` and 8 to 15 digits). The `whatsapp:` channel
/// prefix exists only at the Twilio edge: see [`PhoneNumber::to_whatsapp`].
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error(
        "must be an E.164 number such as +5511999990000 (a '+' then 8 to 15 digits, no spaces)"
    )]
    NotE164,
    #[error("must be a WhatsApp address such as whatsapp:+5511999990000")]
    NotWhatsApp,
}

const WHATSAPP_PREFIX: &str = "whatsapp:";

impl PhoneNumber {
    pub fn parse(raw: &str) -> Result<Self, PhoneError> {
        let digits = raw.strip_prefix('+').ok_or(PhoneError::NotE164)?;
        let ok = (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(PhoneError::NotE164)
        }
    }

    /// Parses Twilio's `whatsapp:+E164` address form.
    pub fn from_whatsapp(address: &str) -> Result<Self, PhoneError> {
        let raw = address
            .strip_prefix(WHATSAPP_PREFIX)
            .ok_or(PhoneError::NotWhatsApp)?;
        Self::parse(raw)
    }

    pub fn to_whatsapp(&self) -> String {
        format!("{WHATSAPP_PREFIX}{}", self.0)
    }

    /// The WhatsApp user this number reaches, in one form whichever form it
    /// came in: WhatsApp reports some countries' mobile numbers in another
    /// form than people dial them, and an opt-out must hold in all of them.
    /// - Brazil: `+55` area code `9` eight digits, reported without the 9;
    /// - Mexico: `+52 1` ten digits (the old mobile prefix), as `+52` ten;
    /// - Argentina: `+54 9` ten digits (the mobile 9), as `+54` ten.
    ///
    /// The identity is the form without the extra digit.
    pub fn whatsapp_identity(&self) -> String {
        let digits = &self.0[1..];
        let without = |at: usize| format!("+{}{}", &digits[..at], &digits[at + 1..]);
        match digits.len() {
            13 if digits.starts_with("55") && digits.as_bytes()[4] == b'9' => without(4),
            13 if digits.starts_with("521") => without(2),
            13 if digits.starts_with("549") => without(2),
            _ => self.0.clone(),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form logs use: country code and last two digits only.
    pub fn masked(&self) -> String {
        let digits = &self.0[1..];
        let keep_start = digits.len().min(2);
        let keep_end = 2;
        let hidden = digits.len().saturating_sub(keep_start + keep_end);
        format!(
            "+{}{}{}",
            &digits[..keep_start],
            "*".repeat(hidden),
            &digits[digits.len() - keep_end..]
        )
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = PhoneError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PhoneNumber> for String {
    fn from(value: PhoneNumber) -> Self {
        value.0
    }
}

// Debug and Display mask the number so it cannot leak into logs by accident.
impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_e164() {
        assert_eq!(
            PhoneNumber::parse("+5511999990000").unwrap().as_str(),
            "+5511999990000"
        );
        for bad in [
            "5511999990000",
            "+55 11 99999",
            "+0123456789",
            "+1234567",
            "+1234567890123456",
            "",
            "+",
            "whatsapp:+5511999990000",
        ] {
            assert_eq!(PhoneNumber::parse(bad), Err(PhoneError::NotE164), "{bad}");
        }
    }

    #[test]
    fn whatsapp_prefix_only_at_the_edge() {
        let p = PhoneNumber::from_whatsapp("whatsapp:+14155550100").unwrap();
        assert_eq!(p.as_str(), "+14155550100");
        assert_eq!(p.to_whatsapp(), "whatsapp:+14155550100");
        assert_eq!(
            PhoneNumber::from_whatsapp("+14155550100"),
            Err(PhoneError::NotWhatsApp)
        );
    }

    #[test]
    fn masks_for_logs() {
        let p = PhoneNumber::parse("+5511999990012").unwrap();
        assert_eq!(p.masked(), "+55*********12");
        assert_eq!(format!("{p}"), "+55*********12");
        assert!(!format!("{p:?}").contains("99999"));
    }

    #[test]
    fn one_whatsapp_user_in_every_form() {
        let same = |a: &str, b: &str| {
            let (a, b) = (
                PhoneNumber::parse(a).unwrap(),
                PhoneNumber::parse(b).unwrap(),
            );
            assert_eq!(a.whatsapp_identity(), b.whatsapp_identity(), "{a:?} {b:?}");
        };
        // Brazil: the mobile 9 WhatsApp leaves out.
        same("+5521987001234", "+552187001234");
        // Mexico: +52 1 and +52.
        same("+5215512345678", "+525512345678");
        // Argentina: +54 9 and +54.
        same("+5491123456789", "+541123456789");
        // Others, and Brazilian landlines, are as given.
        for n in ["+14155238886", "+552133334444", "+447700900123"] {
            assert_eq!(PhoneNumber::parse(n).unwrap().whatsapp_identity(), n);
        }
        assert_ne!(
            PhoneNumber::parse("+5521987001234")
                .unwrap()
                .whatsapp_identity(),
            PhoneNumber::parse("+5521987001235")
                .unwrap()
                .whatsapp_identity()
        );
    }
}
