//! The HTTP edge shared by every API function: one error type mapped to
//! status codes in one place (the use cases' [`AppError`] and the ports'
//! errors convert into it), JSON in and out, the caller's identity.

use crate::app::AppError;
use crate::domain::FieldError;
use crate::ports::{QueueError, StoreError};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A conflict with what is stored, naming the request's field.
    #[error("{0}")]
    Stale(FieldError),
    #[error("{0}")]
    InProgress(String),
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("no organizer identity on the request")]
    Unauthorized,
    /// The detail is logged, never sent.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl ToString) -> Self {
        ApiError::Invalid(FieldError::new(field, message))
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::Invalid(_) => 400,
            ApiError::Unauthorized => 401,
            ApiError::NotFound(_) => 404,
            ApiError::Conflict(_) | ApiError::Stale(_) | ApiError::InProgress(_) => 409,
            ApiError::TooLarge(_) => 413,
            ApiError::Internal(_) => 500,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid(_) => "invalid_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) | ApiError::Stale(_) => "conflict",
            ApiError::InProgress(_) => "in_progress",
            ApiError::TooLarge(_) => "payload_too_large",
            ApiError::Internal(_) => "internal_error",
        }
    }

    pub fn into_response(self) -> Response<Body> {
        let status = self.status();
        let mut error = serde_json::json!({"code": self.code()});
        match &self {
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "request failed");
                error["message"] = "internal error; it has been logged".into();
            }
            ApiError::Invalid(field_error) | ApiError::Stale(field_error) => {
                error["message"] = field_error.to_string().into();
                error["field"] = field_error.field.clone().into();
            }
            other => error["message"] = other.to_string().into(),
        }
        json(status, &serde_json::json!({ "error": error }))
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::BadCursor => ApiError::invalid("cursor", err),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<AppError> for ApiError {
    fn from(err: AppError) -> Self {
        match err {
            AppError::Invalid(e) => ApiError::Invalid(e),
            AppError::NotFound(what) => ApiError::NotFound(what),
            AppError::Conflict(why) => ApiError::Conflict(why),
            AppError::Stale(e) => ApiError::Stale(e),
            AppError::InProgress(why) => ApiError::InProgress(why),
            AppError::Store(e) => e.into(),
            AppError::Queue(e) => e.into(),
            AppError::Internal(detail) => ApiError::Internal(detail),
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(err: QueueError) -> Self {
        ApiError::Internal(err.to_string())
    }
}

pub type ApiResult = Result<Response<Body>, ApiError>;

/// Turns a handler's result into the response, errors included.
pub fn respond(result: ApiResult) -> Response<Body> {
    result.unwrap_or_else(ApiError::into_response)
}

pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(
            serde_json::to_string(value).expect("response serializes"),
        ))
        .expect("status and header are valid")
}

/// Answers smaller than this go as they are: compressing gains nothing.
const COMPRESS_FROM_BYTES: usize = 1024;

/// [`json`], gzip-compressed when the client accepts it: a listing's rows
/// repeat their keys, so a page following a send reads a fraction of the
/// bytes (API Gateway passes a function's compressed body through).
pub fn json_compressed<T: Serialize + ?Sized>(
    req: &Request,
    status: u16,
    value: &T,
) -> Response<Body> {
    let text = serde_json::to_string(value).expect("response serializes");
    let accepts_gzip = req
        .headers()
        .get_all("accept-encoding")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            parts.next().is_some_and(|c| c.eq_ignore_ascii_case("gzip"))
                && parts.all(|p| p.replace(' ', "") != "q=0")
        });
    let builder = Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("vary", "accept-encoding");
    if !accepts_gzip || text.len() < COMPRESS_FROM_BYTES {
        return builder
            .body(Body::Text(text))
            .expect("status and headers are valid");
    }
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder
        .write_all(text.as_bytes())
        .expect("writing to memory succeeds");
    let gzipped = encoder.finish().expect("writing to memory succeeds");
    builder
        .header("content-encoding", "gzip")
        .body(Body::Binary(gzipped))
        .expect("status and headers are valid")
}

/// 204: done, nothing to say.
pub fn no_content() -> Response<Body> {
    Response::builder()
        .status(204)
        .body(Body::Empty)
        .expect("status is valid")
}

fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

/// Parses a JSON object body of at most `max_bytes`; errors name the field at fault.
pub fn parse_json<T: DeserializeOwned>(req: &Request, max_bytes: usize) -> Result<T, ApiError> {
    let bytes = body_bytes(req);
    if bytes.len() > max_bytes {
        return Err(ApiError::TooLarge(max_bytes));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid("body", "a JSON body is required"));
    }
    // Every request body is an object; serde would also accept an array for a struct.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::invalid("body", format!("malformed JSON: {inner}"))
        } else {
            // A field named "" (an unknown one) has no name to give: the body's.
            let field = if path == "." || path.is_empty() {
                "body".to_owned()
            } else {
                path
            };
            // serde's message carries its own position; the field says where.
            let message = inner.to_string();
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_owned();
            ApiError::invalid(field, message)
        }
    })
}

/// A required body field, parsed into its type; errors name the field.
pub fn required<T, E: std::fmt::Display>(
    field: &str,
    value: Option<String>,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, ApiError> {
    let value = value.ok_or_else(|| ApiError::invalid(field, "is required"))?;
    parse(&value).map_err(|e| ApiError::invalid(field, e))
}

/// The body as raw bytes (form posts).
pub fn raw_body(req: &Request) -> &[u8] {
    body_bytes(req)
}

/// A path parameter, parsed into its type; errors name the parameter.
pub fn path_param<T, E: std::fmt::Display>(
    req: &Request,
    name: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, ApiError> {
    let params = req.path_parameters_ref();
    let raw = params
        .and_then(|p| p.first(name))
        .ok_or_else(|| ApiError::invalid(name, "is required in the path"))?;
    parse(raw).map_err(|e| ApiError::invalid(name, e))
}

/// A path parameter that may arrive percent-encoded (API Gateway's HTTP
/// API decodes paths, a function URL or the local stack may not), decoded.
pub fn decoded_path_param<T, E: std::fmt::Display>(
    req: &Request,
    name: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, ApiError> {
    path_param(req, name, |raw| {
        let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
        parse(&decoded)
    })
}

/// Whether the route matched carries this path parameter (one function
/// serving several routes tells them apart by it).
pub fn has_path_param(req: &Request, name: &str) -> bool {
    req.path_parameters_ref()
        .and_then(|p| p.first(name))
        .is_some()
}

pub fn query_param<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.query_string_parameters_ref()
        .and_then(|q| q.first(name))
        .filter(|v| !v.is_empty())
}

/// The `limit` query parameter of a paginated listing: `default` when
/// absent, else a whole number from 1 to `max` (400 on `limit` otherwise).
pub fn page_limit(req: &Request, default: u32, max: u32) -> Result<u32, ApiError> {
    match query_param(req, "limit") {
        None => Ok(default),
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::invalid("limit", format!("must be a whole number from 1 to {max}"))
            }),
    }
}

/// The organizer making the request: the JWT's `sub`, as API Gateway's
/// authorizer verified it. Every event, job and invitation is scoped to it.
pub fn organizer(req: &Request) -> Result<String, ApiError> {
    use lambda_http::request::RequestContext;
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .and_then(|jwt| jwt.claims.get("sub"))
            .filter(|sub| !sub.is_empty())
            .cloned()
            .ok_or(ApiError::Unauthorized),
        _ => Err(ApiError::Unauthorized),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn request(accept: Option<&str>) -> Request {
        let mut builder = http::Request::builder();
        if let Some(accept) = accept {
            builder = builder.header("accept-encoding", accept);
        }
        builder.body(Body::Empty).unwrap()
    }

    #[test]
    fn a_large_answer_is_gzipped_only_for_a_client_that_accepts_it() {
        let rows: Vec<_> = (0..200)
            .map(|i| serde_json::json!({"guest_id": format!("g{i}"), "status": "read"}))
            .collect();
        let plain = serde_json::to_string(&rows).unwrap();
        let answer = json_compressed(&request(Some("br, gzip;q=0.8")), 200, &rows);
        assert_eq!(answer.headers()["content-encoding"], "gzip");
        let Body::Binary(bytes) = answer.body() else {
            panic!("binary body")
        };
        assert!(
            bytes.len() * 5 < plain.len(),
            "{} of {}",
            bytes.len(),
            plain.len()
        );
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, plain);
        for accept in [None, Some("br"), Some("gzip;q=0")] {
            let answer = json_compressed(&request(accept), 200, &rows);
            assert!(
                answer.headers().get("content-encoding").is_none(),
                "{accept:?}"
            );
        }
        let small = json_compressed(&request(Some("gzip")), 200, &rows[..2]);
        assert!(small.headers().get("content-encoding").is_none());
    }
}
