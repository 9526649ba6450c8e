//! Serves the HTTP API on 127.0.0.1 the way API Gateway and the webhook's
//! function URL do: each request becomes an API Gateway v2 event, is
//! converted by lambda_http exactly as in Lambda, and goes to the route's
//! function handler.

use crate::stack::{DEV_ORGANIZER, ORGANIZER_HEADER};
use axum::body::Body as AxumBody;
use axum::extract::{Request, State};
use axum::response::Response;
use base64::Engine as _;
use lambda_http::Body;
use secrecy::SecretString;
use shared::adapters::twilio::TwilioWebhook;
use shared::domain::budget::SenderProfile;
use shared::domain::cost::Rates;
use shared::edge::config;
use shared::edge::routes::{self, Route};
use shared::ports::{
    AdmissionStore, AttemptStore, BudgetStore, DeliveryStore, EventStore, GuestStore,
    IdempotencyStore, InvitationStore, JobStore, OptOutStore, RsvpStore, SendQueue, TemplateStore,
};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// API Gateway's payload limit.
pub const MAX_PAYLOAD_BYTES: usize = 10 * 1024 * 1024;

/// The API functions' dependencies, built once like each Lambda's cold start.
pub struct Functions {
    pub events: events::Deps,
    pub send_invitation: send_invitation::Deps,
    pub send_bulk: send_bulk::Deps,
    pub status: status::Deps,
    pub retry: retry::Deps,
    pub webhook: webhook::Deps,
    pub templates: templates::Deps,
    pub opt_outs: opt_outs::Deps,
    pub guests: guests::Deps,
    pub answers: answers::Deps,
    pub remind: remind::Deps,
    pub profile: profile::Deps,
    pub rsvp_page: rsvp_page::Deps,
}

/// What the functions that talk to Twilio are built with (the webhook, and
/// the templates function's previews).
pub struct ProviderSetup {
    /// Twilio's auth token, which signs its calls to the webhook.
    pub auth_token: SecretString,
    /// The webhook's URL through a custom domain, if any.
    pub public_url: Option<String>,
    /// Where reports the store cannot take in time go.
    pub reports: Arc<dyn shared::ports::ReportQueue>,
    /// Twilio's Content templates, read by the templates function.
    pub content: Arc<dyn shared::ports::ContentLibrary>,
}

/// Where send-bulk puts a large send's chunks (with its own identity).
pub type AdmissionsQueue = Arc<dyn shared::ports::AdmissionQueue>;

impl Functions {
    /// Every API function, as each Lambda's cold start builds them; `store`
    /// and `queue` give each function its own clients (its own identity, as
    /// each Lambda has its own role).
    pub fn new<S>(
        store: impl Fn(&'static str) -> Arc<S>,
        queue: impl Fn(&'static str) -> Arc<dyn SendQueue>,
        twilio: ProviderSetup,
        admissions: AdmissionsQueue,
        profile: SenderProfile,
        rates: Rates,
        rsvp_page_url: String,
    ) -> Self
    where
        S: EventStore
            + JobStore
            + InvitationStore
            + IdempotencyStore
            + TemplateStore
            + OptOutStore
            + DeliveryStore
            + BudgetStore
            + GuestStore
            + RsvpStore
            + AttemptStore
            + AdmissionStore
            + 'static,
    {
        Self {
            events: events::Deps {
                store: store("events"),
            },
            send_invitation: send_invitation::Deps {
                store: store("send-invitation"),
                queue: queue("send-invitation"),
            },
            send_bulk: send_bulk::Deps {
                store: store("send-bulk"),
                queue: queue("send-bulk"),
                admissions,
                profile,
                rates,
            },
            status: status::Deps {
                store: store("status"),
                profile,
                codes: config::error_codes(),
            },
            retry: retry::Deps {
                store: store("retry"),
                queue: queue("retry"),
            },
            webhook: webhook::Deps {
                store: store("webhook"),
                provider: Arc::new(TwilioWebhook::new(twilio.auth_token, twilio.public_url)),
                reports: twilio.reports,
                profile,
                rsvp_page_url,
            },
            templates: templates::Deps {
                store: store("templates"),
                content: twilio.content,
            },
            opt_outs: opt_outs::Deps {
                store: store("opt-outs"),
            },
            guests: guests::Deps {
                store: store("guests"),
                codes: config::error_codes(),
            },
            answers: answers::Deps {
                store: store("answers"),
            },
            remind: remind::Deps {
                store: store("remind"),
                queue: queue("remind"),
            },
            profile: profile::Deps {
                store: store("profile"),
                profile,
            },
            rsvp_page: rsvp_page::Deps {
                store: store("rsvp-page"),
            },
        }
    }

    /// Runs the handler of the function a route names.
    pub async fn call(
        &self,
        function: &str,
        request: lambda_http::Request,
    ) -> lambda_http::Response<Body> {
        match function {
            "events" => events::handle(&self.events, request).await,
            "send-invitation" => send_invitation::handle(&self.send_invitation, request).await,
            "send-bulk" => send_bulk::handle(&self.send_bulk, request).await,
            "status" => status::handle(&self.status, request).await,
            "retry" => retry::handle(&self.retry, request).await,
            "webhook" => webhook::handle(&self.webhook, request).await,
            "templates" => templates::handle(&self.templates, request).await,
            "opt-outs" => opt_outs::handle(&self.opt_outs, request).await,
            "guests" => guests::handle(&self.guests, request).await,
            "answers" => answers::handle(&self.answers, request).await,
            "remind" => remind::handle(&self.remind, request).await,
            "profile" => profile::handle(&self.profile, request).await,
            "rsvp-page" => rsvp_page::handle(&self.rsvp_page, request).await,
            other => unreachable!("route table names unknown function {other}"),
        }
    }
}

pub async fn serve(
    listener: TcpListener,
    functions: Arc<Functions>,
    mut stopped: watch::Receiver<bool>,
) {
    let app = axum::Router::new().fallback(dispatch).with_state(functions);
    let shutdown = async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "API server stopped");
    }
}

fn error(status: u16, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(AxumBody::from(body.to_string()))
        .expect("valid response")
}

async fn dispatch(State(functions): State<Arc<Functions>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_PAYLOAD_BYTES).await else {
        return error(
            413,
            "payload_too_large",
            "request body is larger than API Gateway accepts",
        );
    };
    let path = parts.uri.path();
    let found = routes::find(parts.method.as_str(), path);
    if found.is_none() && !path.starts_with("/api/") {
        return dashboard::serve(&parts.method, path).await;
    }
    let Some((route, params)) = found else {
        return if routes::path_exists(path) {
            error(405, "method_not_allowed", "method not allowed on this path")
        } else {
            error(404, "not_found", "no such route")
        };
    };
    let event = api_gateway_event(&parts, &bytes, route, &params);
    let request = match lambda_http::request::from_str(&event.to_string()) {
        Ok(r) => r,
        Err(e) => {
            return error(
                400,
                "bad_request",
                &format!("request cannot be represented: {e}"),
            );
        }
    };
    let response = functions.call(route.function, request).await;
    into_axum(response)
}

/// The event API Gateway (HTTP API, payload 2.0) would deliver. The webhook
/// is a function URL in AWS: same payload, no authorizer.
fn api_gateway_event(
    parts: &http::request::Parts,
    body: &[u8],
    route: Route,
    params: &[(String, String)],
) -> serde_json::Value {
    let mut headers = serde_json::Map::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.get_mut(name.as_str()) {
            Some(serde_json::Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), value.into());
            }
        }
    }
    let host = headers
        .get("host")
        .and_then(|h| h.as_str())
        .unwrap_or("127.0.0.1")
        .to_owned();
    headers.insert("x-forwarded-proto".into(), "http".into());
    let organizer = headers
        .get(ORGANIZER_HEADER)
        .and_then(|h| h.as_str())
        .unwrap_or(DEV_ORGANIZER)
        .to_owned();
    let authorizer = match route.caller {
        routes::Caller::Organizer => {
            serde_json::json!({"jwt": {"claims": {"sub": organizer}, "scopes": null}})
        }
        routes::Caller::Twilio | routes::Caller::Guest => serde_json::Value::Null,
    };
    let path_parameters: serde_json::Map<String, serde_json::Value> = params
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into()))
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    serde_json::json!({
        "version": "2.0",
        "routeKey": format!("{} {}", route.method, route.path),
        "rawPath": parts.uri.path(),
        "rawQueryString": parts.uri.query().unwrap_or(""),
        "headers": headers,
        "pathParameters": path_parameters,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": "local",
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent").cloned().unwrap_or_default(),
            },
            "requestId": format!("local-{}", now.as_nanos()),
            "routeKey": format!("{} {}", route.method, route.path),
            "stage": "$default",
            "time": "",
            "timeEpoch": now.as_millis() as u64,
            "authorizer": authorizer,
        },
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "isBase64Encoded": true,
    })
}

fn into_axum(response: lambda_http::Response<Body>) -> Response {
    let (parts, body) = response.into_parts();
    let body = match body {
        Body::Empty => AxumBody::empty(),
        Body::Text(t) => AxumBody::from(t),
        Body::Binary(b) => AxumBody::from(b),
        _ => AxumBody::empty(),
    };
    Response::from_parts(parts, body)
}

/// The organizer's dashboard (`dashboard/` at the repo root), served for
/// every path outside `/api/`: `/` and `/dashboard/` are its `index.html`,
/// and `/x.js` and `/dashboard/x.js` are both `dashboard/x.js`, so the page's
/// relative links work under either prefix, as they do on any static host.
mod dashboard {
    use super::error;
    use axum::body::Body as AxumBody;
    use axum::response::Response;
    use std::path::{Path, PathBuf};

    pub fn root() -> PathBuf {
        crate::emulators::repo_root().join("dashboard")
    }

    pub async fn serve(method: &http::Method, path: &str) -> Response {
        if method != http::Method::GET && method != http::Method::HEAD {
            return error(405, "method_not_allowed", "the dashboard is read-only");
        }
        let Some(relative) = relative_path(path) else {
            return error(404, "not_found", "no such file");
        };
        let Some(content_type) = content_type(&relative) else {
            return error(404, "not_found", "no such file");
        };
        let root = root();
        let Some(file) = contained(&root, &root.join(&relative)).await else {
            return error(404, "not_found", "no such file");
        };
        match tokio::fs::read(&file).await {
            Ok(bytes) => {
                let body = if method == http::Method::HEAD {
                    AxumBody::empty()
                } else {
                    AxumBody::from(bytes)
                };
                Response::builder()
                    .status(200)
                    .header("content-type", content_type)
                    .header("cache-control", "no-cache")
                    .header("x-content-type-options", "nosniff")
                    .body(body)
                    .expect("valid response")
            }
            Err(_) => error(404, "not_found", "no such file"),
        }
    }

    /// The file a URL path names, relative to the dashboard folder; `None`
    /// for anything but plain names (no `..`, no dot files, no escapes).
    pub fn relative_path(path: &str) -> Option<PathBuf> {
        let path = match path.strip_prefix("/dashboard") {
            Some("") => "/",
            Some(rest) if rest.starts_with('/') => rest,
            _ => path,
        };
        let path = if path.ends_with('/') {
            format!("{path}index.html")
        } else {
            path.to_owned()
        };
        let mut relative = PathBuf::new();
        for segment in path.strip_prefix('/')?.split('/') {
            let plain = !segment.is_empty()
                && !segment.starts_with('.')
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !plain {
                return None;
            }
            relative.push(segment);
        }
        Some(relative)
    }

    pub fn content_type(path: &Path) -> Option<&'static str> {
        Some(match path.extension()?.to_str()? {
            "html" => "text/html; charset=utf-8",
            "js" | "mjs" => "text/javascript; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            "json" => "application/json",
            "webmanifest" => "application/manifest+json",
            "svg" => "image/svg+xml",
            "png" => "image/png",
            "ico" => "image/x-icon",
            "txt" | "csv" => "text/plain; charset=utf-8",
            _ => return None,
        })
    }

    /// The file, if it exists and (symbolic links resolved) is inside `root`.
    async fn contained(root: &Path, file: &Path) -> Option<PathBuf> {
        let root = tokio::fs::canonicalize(root).await.ok()?;
        let file = tokio::fs::canonicalize(file).await.ok()?;
        let meta = tokio::fs::metadata(&file).await.ok()?;
        (file.starts_with(&root) && meta.is_file()).then_some(file)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn maps_paths_into_the_dashboard_folder() {
            for (url, file) in [
                ("/", "index.html"),
                ("/dashboard", "index.html"),
                ("/dashboard/", "index.html"),
                ("/app.js", "app.js"),
                ("/dashboard/js/app.js", "js/app.js"),
                ("/styles.css", "styles.css"),
                ("/dashboardish.css", "dashboardish.css"),
            ] {
                assert_eq!(relative_path(url), Some(PathBuf::from(file)), "{url}");
            }
            for url in [
                "/../Cargo.toml",
                "/dashboard/../Cargo.toml",
                "/js/../../x.js",
                "/%2e%2e/Cargo.toml",
                "/.git/config",
                "//etc/passwd",
                "/a\\b.js",
                "/js//app.js",
            ] {
                assert_eq!(relative_path(url), None, "{url}");
            }
            assert_eq!(
                content_type(Path::new("a.js")),
                Some("text/javascript; charset=utf-8")
            );
            assert_eq!(content_type(Path::new("Cargo.toml")), None);
            assert_eq!(content_type(Path::new("README")), None);
        }
    }
}
