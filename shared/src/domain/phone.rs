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
}
