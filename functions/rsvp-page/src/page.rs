//! The RSVP page's HTML: small, no script, readable on a phone. Every value
//! is escaped; the answer token stays out of referrers and caches.

use lambda_http::{Body, Response};
use shared::app::rsvp_page::Note;
use shared::domain::rsvp::{Answer, MAX_COMPANIONS, Rsvp};
use shared::domain::{Event, Invitation};

/// Only the page's own inline style and its own form: nothing else loads.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

pub fn respond(status: u16, html: String) -> Response<Body> {
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", "text/html; charset=utf-8")
        .header("cache-control", "no-store")
        // The path is the guest's credential: never sent on to another site.
        .header("referrer-policy", "no-referrer")
        .header("x-robots-tag", "noindex")
        .header("x-content-type-options", "nosniff")
        .header("content-security-policy", CONTENT_SECURITY_POLICY);
    if status == 429 {
        builder = builder.header("retry-after", "900");
    }
    builder.body(Body::Text(html)).expect("valid response")
}

use shared::domain::escape_markup as esc;

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1f2328}\
main{max-width:32rem;margin:0 auto;padding:1.25rem}\
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:1.25rem}\
h1{font-size:1.5rem;margin:0 0 .5rem}\
.muted{color:#57606a}\
fieldset{border:none;padding:0;margin:1rem 0}\
legend{font-weight:600;margin-bottom:.5rem}\
.choice{display:block;border:1px solid #d0d7de;border-radius:6px;padding:.75rem;margin:.4rem 0;cursor:pointer}\
.choice input{margin-right:.5rem}\
input[type=number]{font:inherit;width:5rem;padding:.3rem}\
button{font:inherit;font-weight:600;background:#1f6feb;color:#fff;border:none;border-radius:6px;padding:.7rem 1.2rem;margin-top:1rem;width:100%}\
.note{border-radius:6px;padding:.6rem .8rem;margin:.75rem 0}\
.saved{background:#d3f0dc;color:#14532d}\
.error{background:#fde2e1;color:#9b1c1c}";

fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\"><meta name=\"robots\" content=\"noindex\">\
<title>{}</title><style>{STYLE}</style></head><body><main><div class=\"card\">{body}</div></main></body></html>",
        esc(title)
    )
}

fn answer_words(answer: Answer) -> &'static str {
    match answer {
        Answer::Yes => "Yes, I will come",
        Answer::No => "No, I cannot come",
        Answer::Maybe => "Maybe",
    }
}

/// The event, the guest's answer, and the form to give or change it.
pub fn form(event: &Event, inv: &Invitation, rsvp: Option<&Rsvp>, note: &Note) -> String {
    let first = inv.guest.name.split_whitespace().next().unwrap_or_default();
    let note = match note {
        Note::None => String::new(),
        Note::Saved => {
            "<p class=\"note saved\" role=\"status\">Thank you! Your answer is saved. You can change it here until the event.</p>".to_owned()
        }
        Note::Invalid(err) => format!(
            "<p class=\"note error\" role=\"alert\" data-field=\"{}\">{}</p>",
            esc(&err.field),
            esc(&err.message)
        ),
    };
    let now = match rsvp {
        None => "<p id=\"current\" data-answer=\"none\">You have not answered yet.</p>".to_owned(),
        Some(r) => {
            let with = if r.answer == Answer::Yes && r.companions > 0 {
                format!(
                    " (with {} companion{})",
                    r.companions,
                    if r.companions == 1 { "" } else { "s" }
                )
            } else {
                String::new()
            };
            format!(
                "<p id=\"current\" data-answer=\"{}\">Your answer: <strong>{}</strong>{}.</p>",
                r.answer,
                answer_words(r.answer),
                esc(&with)
            )
        }
    };
    let choices: String = Answer::ALL
        .iter()
        .map(|a| {
            let checked = if rsvp.is_some_and(|r| r.answer == *a) {
                " checked"
            } else {
                ""
            };
            format!(
                "<label class=\"choice\"><input type=\"radio\" name=\"answer\" value=\"{a}\" required{checked}>{}</label>",
                answer_words(*a)
            )
        })
        .collect();
    let companions = rsvp.map_or(0, |r| r.companions);
    let body = format!(
        "<h1>{name}</h1><p class=\"muted\">{date}<br>{venue}<br>Hosted by {host}</p>\
<p>Hi {first}, will you come?</p>{note}{now}\
<form method=\"post\"><fieldset><legend>Your answer</legend>{choices}</fieldset>\
<label for=\"companions\">If you come: how many people come with you?</label> \
<input id=\"companions\" name=\"companions\" type=\"number\" min=\"0\" max=\"{MAX_COMPANIONS}\" value=\"{companions}\" inputmode=\"numeric\">\
<button type=\"submit\">Send my answer</button></form>",
        name = esc(&event.name),
        date = esc(&event.display_date()),
        venue = esc(&event.venue),
        host = esc(&event.host),
        first = esc(first),
    );
    document(&format!("RSVP: {}", event.name), &body)
}

/// A token that opens nothing: altered, unknown or expired alike.
pub fn closed() -> String {
    document(
        "RSVP link not valid",
        "<h1>This RSVP link is not valid</h1><p>It may have expired (the event has started), or it was copied incompletely. Ask the host for a new invitation, or answer the WhatsApp message you received.</p>",
    )
}

pub fn too_many() -> String {
    document(
        "Too many tries",
        "<h1>Too many tries</h1><p>Too many RSVP links that do not work were opened from this network. Please try again in 15 minutes.</p>",
    )
}

pub fn trouble() -> String {
    document(
        "Something went wrong",
        "<h1>Something went wrong</h1><p>Your answer could not be loaded or saved. Please try again in a moment.</p>",
    )
}
