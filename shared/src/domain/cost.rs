//! What a send costs: Twilio's fee per message plus WhatsApp's (Meta's) fee
//! per delivered template message, by template category and the guest's
//! country. The rates are configuration: [`Rates::default`] below, replaced
//! by the operator's table (`MESSAGE_RATES`, the same JSON shape).
//!
//! | calling code | country        | marketing | utility | authentication |
//! |--------------|----------------|-----------|---------|----------------|
//! | 1            | US, Canada     | 0.0250    | 0.0034  | 0.0135         |
//! | 34           | Spain          | 0.0615    | 0.0200  | 0.0200         |
//! | 44           | United Kingdom | 0.0529    | 0.0220  | 0.0220         |
//! | 49           | Germany        | 0.1365    | 0.0550  | 0.0550         |
//! | 52           | Mexico         | 0.0305    | 0.0085  | 0.0085         |
//! | 54           | Argentina      | 0.0618    | 0.0260  | 0.0260         |
//! | 55           | Brazil         | 0.0625    | 0.0068  | 0.0068         |
//! | 57           | Colombia       | 0.0125    | 0.0008  | 0.0008         |
//! | 91           | India          | 0.0107    | 0.0014  | 0.0014         |
//! | any other    |                | 0.0604    | 0.0077  | 0.0077         |
//!
//! USD per message, from Meta's per-message rate card (July 2025), and
//! Twilio's WhatsApp fee of 0.005 per message. Check both before relying
//! on an estimate: they change, and volume tiers lower Meta's.

use super::{PhoneNumber, TemplateCategory};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// WhatsApp's fee per message for each category, in one country.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CategoryRates {
    pub marketing: f64,
    pub utility: f64,
    pub authentication: f64,
}

impl CategoryRates {
    fn of(&self, category: TemplateCategory) -> f64 {
        match category {
            TemplateCategory::Marketing => self.marketing,
            TemplateCategory::Utility => self.utility,
            TemplateCategory::Authentication => self.authentication,
        }
    }
}

/// The rate table (USD).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rates {
    pub currency: String,
    /// Twilio's fee per message sent.
    pub provider_per_message: f64,
    /// By calling code ("55").
    pub whatsapp_by_country: BTreeMap<String, CategoryRates>,
    /// Countries the table does not name.
    pub whatsapp_elsewhere: CategoryRates,
}

const fn rates(marketing: f64, utility: f64, authentication: f64) -> CategoryRates {
    CategoryRates {
        marketing,
        utility,
        authentication,
    }
}

impl Default for Rates {
    fn default() -> Self {
        let table = [
            ("1", rates(0.0250, 0.0034, 0.0135)),
            ("34", rates(0.0615, 0.0200, 0.0200)),
            ("44", rates(0.0529, 0.0220, 0.0220)),
            ("49", rates(0.1365, 0.0550, 0.0550)),
            ("52", rates(0.0305, 0.0085, 0.0085)),
            ("54", rates(0.0618, 0.0260, 0.0260)),
            ("55", rates(0.0625, 0.0068, 0.0068)),
            ("57", rates(0.0125, 0.0008, 0.0008)),
            ("91", rates(0.0107, 0.0014, 0.0014)),
        ];
        Rates {
            currency: "USD".into(),
            provider_per_message: 0.005,
            whatsapp_by_country: table
                .into_iter()
                .map(|(code, r)| (code.to_owned(), r))
                .collect(),
            whatsapp_elsewhere: rates(0.0604, 0.0077, 0.0077),
        }
    }
}

impl Rates {
    /// Reads the operator's table; errors name the field.
    pub fn parse(json: &str) -> Result<Rates, String> {
        let rates: Rates = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let all = rates
            .whatsapp_by_country
            .iter()
            .map(|(code, r)| (format!("whatsapp_by_country.{code}"), r))
            .chain([("whatsapp_elsewhere".to_owned(), &rates.whatsapp_elsewhere)]);
        for (field, r) in all {
            if [r.marketing, r.utility, r.authentication]
                .iter()
                .any(|v| !v.is_finite() || *v < 0.0)
            {
                return Err(format!("{field}: rates must be numbers of 0 or more"));
            }
        }
        if !rates.provider_per_message.is_finite() || rates.provider_per_message < 0.0 {
            return Err("provider_per_message: must be a number of 0 or more".into());
        }
        Ok(rates)
    }

    /// WhatsApp's fee for one message of `category` to `to` (none for a
    /// free-form message: it goes only within a conversation the guest opened).
    pub fn whatsapp_fee(&self, category: Option<TemplateCategory>, to: &PhoneNumber) -> f64 {
        let Some(category) = category else {
            return 0.0;
        };
        self.whatsapp_by_country
            .get(&to.country_code().to_string())
            .unwrap_or(&self.whatsapp_elsewhere)
            .of(category)
    }

    /// What sending `category` to each of `guests` costs.
    pub fn estimate<'a>(
        &self,
        category: Option<TemplateCategory>,
        guests: impl IntoIterator<Item = &'a PhoneNumber>,
    ) -> Estimate {
        let mut by_country: BTreeMap<u16, CountryCost> = BTreeMap::new();
        for phone in guests {
            let line = by_country
                .entry(phone.country_code())
                .or_insert_with(|| CountryCost {
                    calling_code: phone.country_code(),
                    messages: 0,
                    whatsapp_per_message: self.whatsapp_fee(category, phone),
                    subtotal: 0.0,
                });
            line.messages += 1;
            line.subtotal += self.provider_per_message + line.whatsapp_per_message;
        }
        let messages: u64 = by_country.values().map(|c| c.messages).sum();
        let whatsapp: f64 = by_country
            .values()
            .map(|c| c.whatsapp_per_message * c.messages as f64)
            .sum();
        let provider = self.provider_per_message * messages as f64;
        Estimate {
            currency: self.currency.clone(),
            messages,
            provider_fee: cents(provider),
            whatsapp_fee: cents(whatsapp),
            total: cents(provider + whatsapp),
            by_country: by_country
                .into_values()
                .map(|c| CountryCost {
                    subtotal: cents(c.subtotal),
                    ..c
                })
                .collect(),
        }
    }
}

/// Rounded to a hundredth of a cent: estimates, not invoices.
fn cents(amount: f64) -> f64 {
    (amount * 10_000.0).round() / 10_000.0
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CountryCost {
    pub calling_code: u16,
    pub messages: u64,
    pub whatsapp_per_message: f64,
    pub subtotal: f64,
}

/// What a send would cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    pub currency: String,
    pub messages: u64,
    pub provider_fee: f64,
    pub whatsapp_fee: f64,
    pub total: f64,
    pub by_country: Vec<CountryCost>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone(p: &str) -> PhoneNumber {
        PhoneNumber::parse(p).unwrap()
    }

    #[test]
    fn a_marketing_send_costs_twilios_fee_and_whatsapps_by_country() {
        let guests = [
            phone("+5511999990001"),
            phone("+5511999990002"),
            phone("+5215512345678"),
            phone("+33612345678"),
        ];
        let estimate = Rates::default().estimate(Some(TemplateCategory::Marketing), &guests);
        assert_eq!(estimate.messages, 4);
        assert_eq!(estimate.provider_fee, 0.02);
        // Brazil twice, Mexico, and France at the rate for elsewhere.
        assert_eq!(estimate.whatsapp_fee, 0.0625 * 2.0 + 0.0305 + 0.0604);
        assert_eq!(estimate.total, cents(0.02 + 0.2159));
        let codes: Vec<(u16, u64)> = estimate
            .by_country
            .iter()
            .map(|c| (c.calling_code, c.messages))
            .collect();
        assert_eq!(codes, [(33, 1), (52, 1), (55, 2)]);
        // Free-form text is only Twilio's fee.
        let text = Rates::default().estimate(None, &guests);
        assert_eq!((text.whatsapp_fee, text.total), (0.0, 0.02));
    }

    #[test]
    fn the_operators_table_replaces_the_defaults_and_bad_values_name_the_field() {
        let json = serde_json::to_string(&Rates::default()).unwrap();
        assert_eq!(Rates::parse(&json).unwrap(), Rates::default());
        let negative = json.replace(
            "\"provider_per_message\":0.005",
            "\"provider_per_message\":-1",
        );
        assert!(
            Rates::parse(&negative)
                .unwrap_err()
                .contains("provider_per_message")
        );
        let unknown = json.replacen('{', "{\"extra\":1,", 1);
        assert!(Rates::parse(&unknown).unwrap_err().contains("extra"));
    }
}
