//! The HTTP API's routes, defined once: the local stack serves them and the
//! template checks hold `template.yaml` to them.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    /// API Gateway's path syntax: `{name}` is a path parameter.
    pub path: &'static str,
    /// The function (crate and binary name) that serves it.
    pub function: &'static str,
    pub caller: Caller,
}

/// Who calls a route, and so what lets them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// An organizer: API Gateway's JWT authorizer.
    Organizer,
    /// Twilio: its signature, checked by the webhook (a function URL).
    Twilio,
    /// A guest without a login: the answer token in the path is the credential.
    Guest,
}

pub const WEBHOOK_PATH: &str = "/api/whatsapp/webhook";
/// The statuses, reasons and limits the API speaks in.
pub const FACTS_PATH: &str = "/api/whatsapp/facts";

const fn route(method: &'static str, path: &'static str, function: &'static str) -> Route {
    Route {
        method,
        path,
        function,
        caller: Caller::Organizer,
    }
}

const fn guests_route(method: &'static str, path: &'static str, function: &'static str) -> Route {
    Route {
        caller: Caller::Guest,
        ..route(method, path, function)
    }
}

/// The RSVP page a guest's link opens: the path's end is their answer token.
pub const RSVP_PAGE_PATH: &str = "/r/{token}";

pub const ROUTES: &[Route] = &[
    route("PUT", "/api/whatsapp/events/{eventId}", "events"),
    route("GET", "/api/whatsapp/events/{eventId}", "events"),
    route("GET", "/api/whatsapp/events", "events"),
    route("POST", "/api/whatsapp/send-invitation", "send-invitation"),
    route("POST", "/api/whatsapp/send-bulk", "send-bulk"),
    route("POST", "/api/whatsapp/remind/{eventId}", "remind"),
    route("GET", "/api/whatsapp/status/{jobId}", "status"),
    route("GET", "/api/whatsapp/invitations/{eventId}", "status"),
    route("GET", "/api/whatsapp/sender", "profile"),
    route("GET", FACTS_PATH, "profile"),
    route("POST", "/api/whatsapp/retry/{invitationId}", "retry"),
    route("POST", "/api/whatsapp/retry-failed", "retry"),
    route("POST", "/api/whatsapp/templates", "templates"),
    route("GET", "/api/whatsapp/templates", "templates"),
    route("GET", "/api/whatsapp/templates/{templateId}", "templates"),
    route("PUT", "/api/whatsapp/templates/{templateId}", "templates"),
    route(
        "POST",
        "/api/whatsapp/templates/{templateId}/preview",
        "templates",
    ),
    route("POST", "/api/whatsapp/guests/{eventId}", "guests"),
    route("GET", "/api/whatsapp/guests/{eventId}", "guests"),
    route("PUT", "/api/whatsapp/guests/{eventId}/{guestId}", "guests"),
    route(
        "DELETE",
        "/api/whatsapp/guests/{eventId}/{guestId}",
        "guests",
    ),
    route("GET", "/api/whatsapp/rsvps/{eventId}", "answers"),
    route("GET", "/api/whatsapp/rsvps/{eventId}/{guestId}", "answers"),
    route("PUT", "/api/whatsapp/rsvps/{eventId}/{guestId}", "answers"),
    route("GET", "/api/whatsapp/replies/{eventId}", "answers"),
    route("POST", "/api/whatsapp/opt-outs/lookup", "opt-outs"),
    route("GET", "/api/whatsapp/opt-outs/{phone}", "opt-outs"),
    route("PUT", "/api/whatsapp/opt-outs/{phone}", "opt-outs"),
    route("DELETE", "/api/whatsapp/opt-outs/{phone}", "opt-outs"),
    guests_route("GET", RSVP_PAGE_PATH, "rsvp-page"),
    guests_route("POST", RSVP_PAGE_PATH, "rsvp-page"),
    // Served by a function URL in AWS, not API Gateway: Twilio signs the call.
    Route {
        caller: Caller::Twilio,
        ..route("POST", WEBHOOK_PATH, "webhook")
    },
];

/// Finds the route for a request and its path parameters.
pub fn find(method: &str, path: &str) -> Option<(Route, Vec<(String, String)>)> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    ROUTES
        .iter()
        .filter(|r| r.method.eq_ignore_ascii_case(method))
        .find_map(|r| {
            let pattern: Vec<&str> = r.path.split('/').collect();
            if pattern.len() != segments.len() {
                return None;
            }
            let mut params = Vec::new();
            for (p, s) in pattern.iter().zip(&segments) {
                match p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    Some(name) if !s.is_empty() => params.push((name.to_owned(), (*s).to_owned())),
                    Some(_) => return None,
                    None if p == s => {}
                    None => return None,
                }
            }
            Some((*r, params))
        })
}

/// Whether any route has this path (for 405 versus 404).
pub fn path_exists(path: &str) -> bool {
    ["GET", "PUT", "POST", "DELETE"]
        .iter()
        .any(|m| find(m, path).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_with_parameters() {
        let (r, params) = find("GET", "/api/whatsapp/status/job_1").unwrap();
        assert_eq!(r.function, "status");
        assert_eq!(params, vec![("jobId".to_owned(), "job_1".to_owned())]);
        assert_eq!(
            find("POST", "/api/whatsapp/webhook").unwrap().0.function,
            "webhook"
        );
        assert!(find("DELETE", "/api/whatsapp/status/x").is_none());
        assert!(find("GET", "/api/whatsapp/status/").is_none());
        assert!(path_exists("/api/whatsapp/send-bulk"));
        let (r, params) = find("POST", "/api/whatsapp/templates/t1/preview").unwrap();
        assert_eq!(r.function, "templates");
        assert_eq!(params, vec![("templateId".to_owned(), "t1".to_owned())]);
        assert!(find("POST", "/api/whatsapp/templates/t1").is_none());
        assert!(path_exists("/api/whatsapp/templates/t1"));
        let (r, _) = find("DELETE", "/api/whatsapp/opt-outs/%2B5511999990000").unwrap();
        assert_eq!(r.function, "opt-outs");
    }
}
