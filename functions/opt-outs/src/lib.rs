//! Whether a WhatsApp number may be messaged:
//! `GET /api/whatsapp/opt-outs/{phone}`, `PUT` (opt it out), `DELETE` (lift
//! an opt-out an organizer made). `{phone}` is E.164, its `+` as is,
//! percent-encoded (`%2B`) or left out. `POST /api/whatsapp/opt-outs/lookup`
//! answers up to 1,000 numbers at once.
//!
//! A guest's own opt-out (an inbound STOP, or Twilio's 21610) binds every
//! organizer of the stack, as the guest said it to the WhatsApp sender, and
//! only the guest lifts it (START). An organizer's opt-out binds that
//! organizer only, and only it can lift it. The answers say only what the
//! calling organizer may know: its own opt-out, and the guest's only for a
//! number it has invited; anything else reads as not opted out.

use lambda_http::{Body, Request, Response};
use serde::Serialize;
use shared::domain::now;
use shared::domain::{OptOut, OptOutSource, PhoneNumber, SeenOptOuts};
use shared::edge::http::{self, ApiError, ApiResult};
use shared::ports::OptOutStore;
use std::sync::Arc;

pub struct Deps {
    pub store: Arc<dyn OptOutStore>,
}

pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    http::respond(route(deps, req).await)
}

/// A number's state as the API shows it.
#[derive(Serialize)]
pub struct OptOutView<'a> {
    pub phone: &'a str,
    pub opted_out: bool,
    /// Who made the last change: `inbound` (the guest's keyword), `twilio`
    /// (Twilio refused a send with 21610), `api` (an organizer); null if none.
    pub source: Option<OptOutSource>,
    pub keyword: Option<&'a str>,
    pub updated_at: Option<&'a str>,
}

impl<'a> OptOutView<'a> {
    fn of(phone: &'a PhoneNumber, seen: &'a SeenOptOuts) -> Self {
        let record = seen.effective();
        OptOutView {
            phone: phone.as_str(),
            opted_out: record.is_some_and(|r| r.opted_out),
            source: record.map(|r| r.source),
            keyword: record.and_then(|r| r.keyword.as_deref()),
            updated_at: record.map(|r| r.updated_at.as_str()),
        }
    }
}

fn view(phone: &PhoneNumber, seen: &SeenOptOuts) -> Response<Body> {
    http::json(200, &OptOutView::of(phone, seen))
}

fn parse_phone(raw: &str) -> Result<PhoneNumber, shared::domain::PhoneError> {
    let raw = raw.trim();
    if raw.starts_with('+') {
        PhoneNumber::parse(raw)
    } else {
        PhoneNumber::parse(&format!("+{raw}"))
    }
}

/// Numbers one lookup may ask about: a 2,000-guest event is two requests.
pub const MAX_LOOKUP: usize = 1_000;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Lookup {
    phones: Option<Vec<serde_json::Value>>,
}

/// `POST /api/whatsapp/opt-outs/lookup`: many numbers in one request (an
/// event's guests), each answered as `GET /opt-outs/{phone}` would be; a
/// number that is not one is listed in `rejected`.
async fn lookup(deps: &Deps, owner: &str, req: &Request) -> ApiResult {
    let input: Lookup = http::parse_json(req, LOOKUP_BODY_BYTES)?;
    let phones = input
        .phones
        .ok_or_else(|| ApiError::invalid("phones", "is required"))?;
    if phones.is_empty() || phones.len() > MAX_LOOKUP {
        return Err(ApiError::invalid(
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
    let views = deps.store.opt_out_views(owner, &numbers).await?;
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
    Ok(http::json(
        200,
        &serde_json::json!({ "items": items, "rejected": rejected }),
    ))
}

/// A lookup's body: 1,000 numbers in any form, with room to spare.
const LOOKUP_BODY_BYTES: usize = 256 * 1024;

async fn route(deps: &Deps, req: Request) -> ApiResult {
    let owner = http::organizer(&req)?;
    if req.method() == "POST" {
        return lookup(deps, &owner, &req).await;
    }
    let phone = http::decoded_path_param(&req, "phone", parse_phone)?;
    let store = deps.store.as_ref();
    let mut seen = store.opt_out_view(&owner, &phone).await?;
    match req.method().as_str() {
        "GET" => Ok(view(&phone, &seen)),
        "PUT" => {
            if seen.own.as_ref().is_some_and(|o| o.opted_out) {
                // Already opted out: the first time stays.
                return Ok(view(&phone, &seen));
            }
            let record = OptOut::by_organizer(phone.clone(), &owner, true, &now());
            write(store, &record, seen.own.as_ref()).await?;
            tracing::info!(to = %phone, "number opted out by an organizer");
            seen.own = Some(record);
            Ok(view(&phone, &seen))
        }
        "DELETE" => {
            if seen.guests.as_ref().is_some_and(|g| g.opted_out) {
                return Err(ApiError::Conflict(
                    "the guest opted out (replied STOP); only the guest can opt back in, by sending START to the WhatsApp sender".into(),
                ));
            }
            if !seen.own.as_ref().is_some_and(|o| o.opted_out) {
                return Ok(view(&phone, &seen));
            }
            let record = OptOut::by_organizer(phone.clone(), &owner, false, &now());
            write(store, &record, seen.own.as_ref()).await?;
            tracing::info!(to = %phone, "organizer's opt-out lifted");
            seen.own = Some(record);
            Ok(view(&phone, &seen))
        }
        _ => Err(ApiError::NotFound("route".into())),
    }
}

/// Writes only over the record that was read, so a guest's STOP arriving
/// meanwhile is never overwritten.
async fn write(
    store: &dyn OptOutStore,
    record: &OptOut,
    read: Option<&OptOut>,
) -> Result<(), ApiError> {
    let since = read.map_or("", |r| r.updated_at.as_str());
    if store.put_opt_out(record, Some(since)).await? {
        Ok(())
    } else {
        Err(ApiError::Conflict(
            "the number's opt-out changed meanwhile; read it again".into(),
        ))
    }
}
