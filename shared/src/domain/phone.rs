use std::fmt;

use phonenumber::Mode;

/// An E.164 phone number (`+` and 8 to 15 digits) in a country code in use.
/// The `whatsapp:` channel prefix exists only at the Twilio edge: see
/// [`PhoneNumber::to_whatsapp`].
///
/// Parsing is Google's libphonenumber rules (the `phonenumber` crate); the
/// number is kept exactly as given, so stored keys never change form.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber {
    e164: String,
    /// The country calling code the library read, e.g. 55; always the
    /// leading digits of `e164` (kept only to avoid parsing twice).
    country_code: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error(
        "must be an E.164 number such as +5511999990000 (a '+' then 8 to 15 digits; spaces, dashes, dots and brackets between them are fine)"
    )]
    NotE164,
    #[error(
        "must be an E.164 number such as +5511999990000: a country code in use, and no domestic dialling prefix (such as a trunk 0) after it"
    )]
    NotANumber,
    #[error("must be a WhatsApp address such as whatsapp:+5511999990000")]
    NotWhatsApp,
}

const WHATSAPP_PREFIX: &str = "whatsapp:";

/// A country whose mobile numbers WhatsApp reports without a digit people
/// dial: numbers of that country whose national number is `national_len`
/// digits with `digit` at index `at` are one WhatsApp user with the number
/// without it.
struct ExtraDigit {
    country_code: u16,
    national_len: usize,
    at: usize,
    digit: u8,
}

/// The one place that knows WhatsApp's country forms.
const WHATSAPP_EXTRA_DIGITS: [ExtraDigit; 3] = [
    // Brazil: two-digit area code, the mobile 9, eight digits.
    ExtraDigit {
        country_code: 55,
        national_len: 11,
        at: 2,
        digit: b'9',
    },
    // Mexico: the old mobile prefix 1, then ten digits.
    ExtraDigit {
        country_code: 52,
        national_len: 11,
        at: 0,
        digit: b'1',
    },
    // Argentina: the mobile 9, then ten digits.
    ExtraDigit {
        country_code: 54,
        national_len: 11,
        at: 0,
        digit: b'9',
    },
];

impl PhoneNumber {
    /// Accepts exactly `+` and 8 to 15 ASCII digits (no spaces, dashes or
    /// `tel:`, although the library would take them), in a country code in
    /// use and in the library's own E.164 form. Numbers need not be in a
    /// range a country has handed out: WhatsApp's short forms (Brazil
    /// without the mobile 9, Mexico with `+52 1`) and fictional test ranges
    /// (`+1 555`, Ofcom's `+44 7700 900`) are not "valid" to the library but
    /// are real addresses here.
    pub fn parse(raw: &str) -> Result<Self, PhoneError> {
        let digits = raw.strip_prefix('+').ok_or(PhoneError::NotE164)?;
        let shaped = (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if !shaped {
            return Err(PhoneError::NotE164);
        }
        let parsed = phonenumber::parse(None, raw).map_err(|_| PhoneError::NotANumber)?;
        // The library drops a national prefix written after the country
        // code (+49 030… is +49 30…); such input is refused rather than
        // rewritten, so a stored number is always its own canonical form.
        if parsed.format().mode(Mode::E164).to_string() != raw {
            return Err(PhoneError::NotANumber);
        }
        Ok(Self {
            e164: raw.to_owned(),
            country_code: parsed.code().value(),
        })
    }

    /// A number as people write it, in every input the API takes (JSON,
    /// CSV, send-bulk, a guest's edit): E.164 once the spaces, dashes,
    /// dots and brackets around its digits are dropped ("+55 (11)
    /// 98765-4321"). Stored as E.164; anything else is refused as
    /// [`PhoneNumber::parse`] refuses it.
    pub fn parse_written(raw: &str) -> Result<Self, PhoneError> {
        let plain: String = raw
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}'))
            .collect();
        Self::parse(&plain)
    }

    /// Parses Twilio's `whatsapp:+E164` address form.
    pub fn from_whatsapp(address: &str) -> Result<Self, PhoneError> {
        let raw = address
            .strip_prefix(WHATSAPP_PREFIX)
            .ok_or(PhoneError::NotWhatsApp)?;
        Self::parse(raw)
    }

    pub fn to_whatsapp(&self) -> String {
        format!("{WHATSAPP_PREFIX}{}", self.e164)
    }

    /// The country calling code, e.g. 55 for Brazil.
    pub fn country_code(&self) -> u16 {
        self.country_code
    }

    /// Whether the number is in the United States, by the library's
    /// reading of its area code (`+1` is also Canada and the Caribbean). A
    /// `+1` number whose region it cannot tell (a fictional 555 range) is
    /// taken as the US: Meta's pause on Marketing applies there, so a
    /// wrong guess skips a guest rather than sends what will not arrive.
    pub fn is_us(&self) -> bool {
        if self.country_code != 1 {
            return false;
        }
        match phonenumber::parse(None, &self.e164).map(|p| p.country().id()) {
            Ok(Some(region)) => region == phonenumber::country::Id::US,
            _ => true,
        }
    }

    /// The digits after the country code, leading zeros included.
    pub fn national_number(&self) -> &str {
        let code_len = self.country_code.to_string().len();
        &self.e164[1 + code_len..]
    }

    /// The WhatsApp user this number reaches, in one form whichever form it
    /// came in: WhatsApp reports some countries' mobile numbers in another
    /// form than people dial them, and an opt-out must hold in all of them.
    /// The `WHATSAPP_EXTRA_DIGITS` table holds them:
    /// - Brazil: `+55` area code `9` eight digits, reported without the 9;
    /// - Mexico: `+52 1` ten digits (the old mobile prefix), as `+52` ten;
    /// - Argentina: `+54 9` ten digits (the mobile 9), as `+54` ten.
    ///
    /// The identity is the form without the extra digit.
    pub fn whatsapp_identity(&self) -> String {
        let national = self.national_number();
        let extra = WHATSAPP_EXTRA_DIGITS.iter().find(|c| {
            c.country_code == self.country_code
                && national.len() == c.national_len
                && national.as_bytes()[c.at] == c.digit
        });
        match extra {
            Some(c) => format!(
                "+{}{}{}",
                self.country_code,
                &national[..c.at],
                &national[c.at + 1..]
            ),
            None => self.e164.clone(),
        }
    }

    /// Whether both numbers reach one WhatsApp user (see [`Self::whatsapp_identity`]).
    pub fn same_user(&self, other: &PhoneNumber) -> bool {
        self.e164 == other.e164 || self.whatsapp_identity() == other.whatsapp_identity()
    }

    pub fn as_str(&self) -> &str {
        &self.e164
    }

    /// The form logs use: the first two digits and the last two only.
    pub fn masked(&self) -> String {
        mask_digits(&self.e164[1..])
    }
}

/// `+` and `digits` (ASCII, at least 4) with all but the first two and the
/// last two hidden: the one masking rule for numbers in logs.
pub fn mask_digits(digits: &str) -> String {
    let hidden = digits.len().saturating_sub(4);
    format!(
        "+{}{}{}",
        &digits[..2],
        "*".repeat(hidden),
        &digits[digits.len() - 2..]
    )
}

impl TryFrom<String> for PhoneNumber {
    type Error = PhoneError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PhoneNumber> for String {
    fn from(value: PhoneNumber) -> Self {
        value.e164
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
    fn numbers_as_people_write_them_are_read_as_e164() {
        for written in [
            "+55 (11) 98765-4321",
            "+55 11 98765 4321",
            "+55.11.98765.4321",
            " +5511987654321 ",
            "+55\u{a0}11\u{a0}98765-4321",
        ] {
            assert_eq!(
                PhoneNumber::parse_written(written).unwrap().as_str(),
                "+5511987654321",
                "{written:?}"
            );
        }
        for bad in [
            "55 11 98765-4321",
            "+55 (11) 98765-432x",
            "tel:+5511987654321",
        ] {
            assert!(PhoneNumber::parse_written(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_united_states_numbers_are_in_the_us() {
        let us = |n: &str| PhoneNumber::parse(n).unwrap().is_us();
        assert!(us("+14155238886"), "San Francisco");
        assert!(us("+12125550123"), "New York");
        assert!(!us("+14165550123"), "Toronto");
        assert!(!us("+16045550123"), "Vancouver");
        assert!(!us("+12425550123"), "the Bahamas");
        assert!(!us("+18765550123"), "Jamaica");
        assert!(!us("+5511999990000"), "Brazil");
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

    #[test]
    fn accepts_no_more_input_forms_than_before() {
        // The library reads all of these; the API takes only `+` digits.
        for bad in [
            "+55 11 99999-0000",
            "+55-11-99999-0000",
            "+55 (11) 99999-0000",
            "+5511999990000 ",
            " +5511999990000",
            "tel:+5511999990000",
            "+5511999990000x12",
            "+55a1199999",
            "+\u{ff11}5551234567",
        ] {
            assert_eq!(PhoneNumber::parse(bad), Err(PhoneError::NotE164), "{bad}");
        }
    }

    #[test]
    fn refuses_what_is_no_phone_number() {
        // A country code nobody has.
        assert_eq!(
            PhoneNumber::parse("+999123456789"),
            Err(PhoneError::NotANumber)
        );
        // A national prefix after the country code (+49 030 is +49 30):
        // refused, not rewritten.
        for bad in ["+49030123456", "+330612345678", "+550211999990000"] {
            assert_eq!(
                PhoneNumber::parse(bad),
                Err(PhoneError::NotANumber),
                "{bad}"
            );
        }
        // Through serde too.
        assert!(serde_json::from_str::<PhoneNumber>(r#""+999123456789""#).is_err());
    }

    #[test]
    fn keeps_numbers_the_library_calls_invalid_but_whatsapp_uses() {
        for n in [
            // WhatsApp's forms without the extra digit.
            "+552187001234",
            "+5215512345678",
            // Fictional ranges the tests and the simulator use.
            "+15551234567",
            "+15550000001",
            "+447700900123",
            // The shortest and longest E.164 numbers.
            "+12345678",
            "+123456789012345",
            // A national number that starts with 0 (Italy).
            "+390612345678",
        ] {
            let p = PhoneNumber::parse(n).unwrap();
            assert_eq!(p.as_str(), n);
            assert_eq!(String::from(p.clone()), n);
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<PhoneNumber>(&json).unwrap(), p);
        }
    }

    #[test]
    fn country_code_and_national_number() {
        let p = PhoneNumber::parse("+5521987001234").unwrap();
        assert_eq!((p.country_code(), p.national_number()), (55, "21987001234"));
        let p = PhoneNumber::parse("+14155238886").unwrap();
        assert_eq!((p.country_code(), p.national_number()), (1, "4155238886"));
        let p = PhoneNumber::parse("+390612345678").unwrap();
        assert_eq!((p.country_code(), p.national_number()), (39, "0612345678"));
        let p = PhoneNumber::parse("+97150123456").unwrap();
        assert_eq!((p.country_code(), p.national_number()), (971, "50123456"));
    }

    #[test]
    fn whatsapp_forms_only_where_the_table_says() {
        let identity = |n: &str| PhoneNumber::parse(n).unwrap().whatsapp_identity();
        assert_eq!(identity("+5521987001234"), "+552187001234");
        assert_eq!(identity("+5215512345678"), "+525512345678");
        assert_eq!(identity("+5491123456789"), "+541123456789");
        for as_given in [
            // Brazil: eleven national digits, but no mobile 9 third.
            "+5521887001234",
            // Mexico and Argentina: the digit, but not eleven national digits.
            "+52155123456",
            "+54911234567",
            // The same digits in another country.
            "+5691123456789",
            "+3491123456789",
        ] {
            assert_eq!(identity(as_given), as_given);
        }
    }
}
