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
use shared::routes::{self, Route};
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
    let Some((route, params)) = routes::find(parts.method.as_str(), path) else {
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
    let response = call(&functions, route, request).await;
    into_axum(response)
}

async fn call(
    f: &Functions,
    route: Route,
    request: lambda_http::Request,
) -> lambda_http::Response<Body> {
    match route.function {
        "events" => events::handle(&f.events, request).await,
        "send-invitation" => send_invitation::handle(&f.send_invitation, request).await,
        "send-bulk" => send_bulk::handle(&f.send_bulk, request).await,
        "status" => status::handle(&f.status, request).await,
        "retry" => retry::handle(&f.retry, request).await,
        "webhook" => webhook::handle(&f.webhook, request).await,
        other => unreachable!("route table names unknown function {other}"),
    }
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
    let authorizer = if route.path == routes::WEBHOOK_PATH {
        serde_json::Value::Null
    } else {
        serde_json::json!({"jwt": {"claims": {"sub": organizer}, "scopes": null}})
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
