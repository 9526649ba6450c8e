//! Whether a number may be messaged, as an organizer reads and changes it.
//! A guest's own opt-out (an inbound STOP, or the provider's report that
//! they unsubscribed or blocked the sender) binds every organizer of the
//! stack, as the guest said it to the WhatsApp sender, and only the guest
//! lifts it (START). An organizer's opt-out binds that organizer only, and
//! only it can lift it. The answers say only what the calling organizer
//! may know: its own opt-out, and the guest's only for a number it has
//! invited; anything else reads as not opted out.

use crate::app::AppError;
use crate::domain::opt_out::MAX_LOOKUP;
use crate::domain::{OptOut, OptOutSource, PhoneError, PhoneNumber, SeenOptOuts, now};
use crate::ports::OptOutStore;
use serde::Serialize;

/// A number's state as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OptOutView {
    pub phone: String,
    pub opted_out: bool,
    /// Who made the last change: `inbound` (the guest's keyword), `twilio`
    /// (the provider reported them unsubscribed), `api` (an organizer); null if none.
    pub source: Option<OptOutSource>,
    pub keyword: Option<String>,
    pub updated_at: Option<String>,
}

impl OptOutView {
    fn of(phone: &PhoneNumber, seen: &SeenOptOuts) -> Self {
        let record = seen.effective();
        OptOutView {
            phone: phone.as_str().to_owned(),
            opted_out: record.is_some_and(|r| r.opted_out),
            source: record.map(|r| r.source),
            keyword: record.and_then(|r| r.keyword.clone()),
            updated_at: record.map(|r| r.updated_at.clone()),
        }
    }
}

/// A number as a client writes it: as people write it
/// ([`PhoneNumber::parse_written`]), its `+` given or left out (a path
/// segment may lose it).
pub fn parse_phone(raw: &str) -> Result<PhoneNumber, PhoneError> {
    let raw = raw.trim();
    if raw.starts_with('+') {
        PhoneNumber::parse_written(raw)
    } else {
        PhoneNumber::parse_written(&format!("+{raw}"))
    }
}

/// What `owner` may know of the number's opt-out.
pub async fn view(
    store: &dyn OptOutStore,
    owner: &str,
    phone: &PhoneNumber,
) -> Result<OptOutView, AppError> {
    let seen = store.opt_out_view(owner, phone).await?;
    Ok(OptOutView::of(phone, &seen))
}

/// The organizer opts the number out (the first time stays).
pub async fn opt_out(
    store: &dyn OptOutStore,
    owner: &str,
    phone: &PhoneNumber,
) -> Result<OptOutView, AppError> {
    let mut seen = store.opt_out_view(owner, phone).await?;
    if seen.own.as_ref().is_some_and(|o| o.opted_out) {
        return Ok(OptOutView::of(phone, &seen));
    }
    let record = OptOut::by_organizer(phone.clone(), owner, true, &now());
    write(store, &record, seen.own.as_ref()).await?;
    tracing::info!(to = %phone, "number opted out by an organizer");
    seen.own = Some(record);
    Ok(OptOutView::of(phone, &seen))
}

/// The organizer lifts its own opt-out; a guest's own stands.
pub async fn lift(
    store: &dyn OptOutStore,
    owner: &str,
    phone: &PhoneNumber,
) -> Result<OptOutView, AppError> {
    let mut seen = store.opt_out_view(owner, phone).await?;
    if seen.guests.as_ref().is_some_and(|g| g.opted_out) {
        return Err(AppError::Conflict(
            "the guest opted out (replied STOP); only the guest can opt back in, by sending START to the WhatsApp sender".into(),
        ));
    }
    if !seen.own.as_ref().is_some_and(|o| o.opted_out) {
        return Ok(OptOutView::of(phone, &seen));
    }
    let record = OptOut::by_organizer(phone.clone(), owner, false, &now());
    write(store, &record, seen.own.as_ref()).await?;
    tracing::info!(to = %phone, "organizer's opt-out lifted");
    seen.own = Some(record);
    Ok(OptOutView::of(phone, &seen))
}

/// Writes only over the record that was read, so a guest's STOP arriving
/// meanwhile is never overwritten.
async fn write(
    store: &dyn OptOutStore,
    record: &OptOut,
    read: Option<&OptOut>,
) -> Result<(), AppError> {
    let since = read.map_or("", |r| r.updated_at.as_str());
    if store.put_opt_out(record, Some(since)).await? {
        Ok(())
    } else {
        Err(AppError::Conflict(
            "the number's opt-out changed meanwhile; read it again".into(),
        ))
    }
}

/// Many numbers in one read (an event's guests), each answered as
/// [`view`] would; a number that is not one is listed in `rejected`.
pub async fn lookup(
    store: &dyn OptOutStore,
    owner: &str,
    phones: Option<Vec<serde_json::Value>>,
) -> Result<serde_json::Value, AppError> {
    let phones = phones.ok_or_else(|| AppError::invalid("phones", "is required"))?;
    if phones.is_empty() || phones.len() > MAX_LOOKUP {
        return Err(AppError::invalid(
            "phones",
            format!("must list 1 to {MAX_LOOKUP} numbers"),
        ));
    }
    let mut valid = Vec::new();
    let mut rejected = Vec::new();
    for (index, raw) in phones.iter().enumerate() {
        let parsed = raw
            .as_str()
            .ok_or_else(|| "must be a string".to_owned())
            .and_then(|s| parse_phone(s).map_err(|e| e.to_string()));
        match parsed {
            Ok(phone) => valid.push((index, phone)),
            Err(message) => rejected.push(serde_json::json!({
                "index": index, "field": format!("phones[{index}]"), "message": message,
            })),
        }
    }
    let numbers: Vec<PhoneNumber> = valid.iter().map(|(_, p)| p.clone()).collect();
    let views = store.opt_out_views(owner, &numbers).await?;
    let items: Vec<serde_json::Value> = valid
        .iter()
        .zip(&views)
        .map(|((index, phone), seen)| {
            let mut item =
                serde_json::to_value(OptOutView::of(phone, seen)).expect("a view serializes");
            item["index"] = (*index).into();
            item
        })
        .collect();
    Ok(serde_json::json!({ "items": items, "rejected": rejected }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryStore;

    const A: &str = "organizer-a";
    const B: &str = "organizer-b";

    fn phone() -> PhoneNumber {
        PhoneNumber::parse("+5511999990001").unwrap()
    }

    #[tokio::test]
    async fn given_an_organizers_opt_out_then_it_binds_that_organizer_only_until_lifted() {
        let store = MemoryStore::new();
        assert!(opt_out(&store, A, &phone()).await.unwrap().opted_out);
        assert!(!view(&store, B, &phone()).await.unwrap().opted_out);
        assert!(!lift(&store, A, &phone()).await.unwrap().opted_out);
        assert!(!view(&store, A, &phone()).await.unwrap().opted_out);
    }

    #[tokio::test]
    async fn given_a_guests_stop_then_no_organizer_lifts_it_and_no_stranger_learns_of_it() {
        let store = MemoryStore::new();
        let stop = OptOut::by_guest(phone(), true, "STOP".into(), &now());
        store.put_opt_out(&stop, None).await.unwrap();
        // B never invited the number: it learns nothing.
        assert!(!view(&store, B, &phone()).await.unwrap().opted_out);
        store.note_invited(A, &[phone()]).await.unwrap();
        assert!(view(&store, A, &phone()).await.unwrap().opted_out);
        assert!(matches!(
            lift(&store, A, &phone()).await,
            Err(AppError::Conflict(_))
        ));
    }

    #[tokio::test]
    async fn a_lookup_answers_each_number_and_names_the_bad_ones_by_index() {
        let store = MemoryStore::new();
        opt_out(&store, A, &phone()).await.unwrap();
        let phones = vec![
            serde_json::json!("5511999990001"),
            serde_json::json!("nonsense"),
            serde_json::json!(42),
        ];
        let found = lookup(&store, A, Some(phones)).await.unwrap();
        assert_eq!(found["items"][0]["opted_out"], true);
        assert_eq!(found["items"][0]["index"], 0);
        assert_eq!(found["rejected"][0]["field"], "phones[1]");
        assert_eq!(found["rejected"][1]["message"], "must be a string");
        let Err(AppError::Invalid(e)) = lookup(&store, A, Some(vec![])).await else {
            panic!("refused")
        };
        assert_eq!(e.field, "phones");
    }
}
