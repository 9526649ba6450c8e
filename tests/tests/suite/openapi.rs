//! The HTTP API against its OpenAPI document (`openapi.yaml`, repo root).
//!
//! The document and `shared::edge::routes::ROUTES` list the same operations. Then
//! every request below goes through [`Spec::exchange`], which sends it to a
//! local stack and checks the answer against the document: the status must be
//! documented for that path and method, the media type too, and the body must
//! validate against the declared schema, with every documented required field
//! present and no undocumented field. A request the API accepted (2xx) must
//! also be one the document accepts (body and parameters), so the document
//! is never stricter than the API; bad requests are checked to be rejected by
//! the document too where a schema can say so.

use e2e::{TestStack, guest, sample_event, twilio_signature};
use serde_json::{Map, Value, json};
use shared::edge::routes::ROUTES;
use std::collections::BTreeSet;
use std::time::Duration;

const HTTP_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];
/// A Twilio simulator number whose sends fail permanently (21211).
const FAILING_PHONE: &str = "+15550000001";

// ---------------------------------------------------------------- the document

struct Spec {
    doc: Value,
    /// `components` with undocumented properties forbidden (response checks).
    strict_components: Value,
}

impl Spec {
    fn load() -> Self {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml");
        let text = std::fs::read_to_string(path).expect("openapi.yaml is at the repo root");
        let doc: Value = serde_norway::from_str(&text).expect("openapi.yaml is valid YAML");
        assert!(
            doc["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1")),
            "an OpenAPI 3.1 document"
        );
        let mut strict_components = doc["components"].clone();
        forbid_undocumented(&mut strict_components);
        Self {
            doc,
            strict_components,
        }
    }

    fn paths(&self) -> &Map<String, Value> {
        self.doc["paths"].as_object().expect("paths is a map")
    }

    /// Every (METHOD, path) the document declares.
    fn operations(&self) -> BTreeSet<(String, String)> {
        self.paths()
            .iter()
            .flat_map(|(path, item)| {
                HTTP_METHODS
                    .iter()
                    .filter(|m| item.get(**m).is_some())
                    .map(|m| (m.to_uppercase(), path.clone()))
            })
            .collect()
    }

    /// The documented path template a concrete path (query ignored) matches.
    fn template(&self, path: &str) -> Option<String> {
        let path = path.split('?').next().unwrap_or_default();
        let segments: Vec<&str> = path.split('/').collect();
        self.paths()
            .keys()
            .filter(|template| {
                let pattern: Vec<&str> = template.split('/').collect();
                pattern.len() == segments.len()
                    && pattern.iter().zip(&segments).all(|(p, s)| {
                        if p.starts_with('{') && p.ends_with('}') {
                            !s.is_empty()
                        } else {
                            p == s
                        }
                    })
            })
            // A literal segment beats a parameter.
            .min_by_key(|template| template.matches('{').count())
            .cloned()
    }

    fn operation(&self, method: &str, template: &str) -> &Value {
        self.paths()[template]
            .get(method.to_lowercase())
            .unwrap_or_else(|| panic!("{method} {template} is not documented"))
    }

    /// Follows a local `$ref` (`#/components/...`) in the raw document.
    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let pointer = reference
                    .strip_prefix('#')
                    .unwrap_or_else(|| panic!("only local references: {reference}"));
                let target = self
                    .doc
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling reference {reference}"));
                self.resolve(target)
            }
            None => value,
        }
    }

    /// A validator for `schema`, its `#/components/...` references resolved
    /// against the document's components.
    fn validator(&self, schema: &Value, strict: bool) -> jsonschema::Validator {
        let mut schema = schema.clone();
        let components = if strict {
            forbid_undocumented(&mut schema);
            self.strict_components.clone()
        } else {
            self.doc["components"].clone()
        };
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": components,
            "allOf": [schema],
        });
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("schema does not compile: {e}\n{schema:#}"))
    }

    fn errors(&self, schema: &Value, instance: &Value, strict: bool) -> Vec<String> {
        self.validator(schema, strict)
            .iter_errors(instance)
            .map(|e| format!("at '{}': {e}", e.instance_path()))
            .collect()
    }

    /// The documented request body schema for a media type.
    fn request_schema(&self, method: &str, template: &str, media: &str) -> &Value {
        let body = self.resolve(&self.operation(method, template)["requestBody"]);
        body["content"]
            .get(media)
            .map(|m| &m["schema"])
            .unwrap_or_else(|| panic!("{method} {template} documents no {media} request body"))
    }

    /// Whether the document accepts this JSON request body.
    fn accepts_body(&self, method: &str, path: &str, body: &Value) -> bool {
        let template = self.template(path).expect("documented path");
        let schema = self.request_schema(method, &template, "application/json");
        self.errors(schema, body, false).is_empty()
    }

    fn parameters(&self, method: &str, template: &str) -> Vec<&Value> {
        let path_level = self.paths()[template]["parameters"].as_array();
        let op_level = self.operation(method, template)["parameters"].as_array();
        path_level
            .into_iter()
            .chain(op_level)
            .flatten()
            .map(|p| self.resolve(p))
            .collect()
    }

    /// Whether the document accepts this value for a path or query parameter.
    fn accepts_param(&self, method: &str, template: &str, name: &str, raw: &str) -> bool {
        let param = self
            .parameters(method, template)
            .into_iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{method} {template} documents no parameter {name}"));
        let schema = &param["schema"];
        // Parameters arrive as text: a number is tried as a number too.
        let as_text = Value::String(raw.to_owned());
        let as_number = raw.parse::<i64>().ok().map(Value::from);
        self.errors(schema, &as_text, false).is_empty()
            || as_number.is_some_and(|n| self.errors(schema, &n, false).is_empty())
    }

    /// Sends the call and checks the answer (and, when accepted, the request)
    /// against the document.
    async fn exchange(&self, t: &TestStack, call: Call) -> Reply {
        let reply = call.send(t).await;
        let template = self
            .template(&call.path)
            .unwrap_or_else(|| panic!("{} {} matches no documented path", call.method, call.path));
        let what = format!(
            "{} {} -> {} {}",
            call.method, call.path, reply.status, reply.body
        );
        let op = self.operation(call.method, &template);
        let response = op["responses"]
            .get(reply.status.to_string())
            .map(|r| self.resolve(r))
            .unwrap_or_else(|| panic!("undocumented status: {what}"));
        let content = response.get("content").and_then(Value::as_object);
        match content {
            None => assert!(
                reply.text.is_empty(),
                "documented without a body, answered one: {what}"
            ),
            Some(content) => {
                let media = content.get(&reply.media_type).unwrap_or_else(|| {
                    panic!(
                        "answered {}, documented {:?}: {what}",
                        reply.media_type,
                        content.keys().collect::<Vec<_>>()
                    )
                });
                let errors = self.errors(&media["schema"], &reply.body, true);
                assert!(
                    errors.is_empty(),
                    "answer does not match the documented schema: {what}\n{}",
                    errors.join("\n")
                );
            }
        }
        if (200..300).contains(&reply.status) {
            self.check_accepted_request(&call, &template);
        }
        reply
    }

    /// A request the API accepted is one the document accepts.
    fn check_accepted_request(&self, call: &Call, template: &str) {
        let method = call.method;
        if let Some((content_type, bytes)) = &call.body {
            let media = content_type.split(';').next().unwrap_or_default().trim();
            let body: Value = if media == "text/csv" {
                Value::String(String::from_utf8(bytes.clone()).expect("UTF-8 CSV"))
            } else if media == "application/x-www-form-urlencoded" {
                let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes).unwrap();
                Value::Object(pairs.into_iter().map(|(k, v)| (k, v.into())).collect())
            } else {
                serde_json::from_slice(bytes).expect("a JSON body")
            };
            let schema = self.request_schema(method, template, media);
            let errors = self.errors(schema, &body, false);
            assert!(
                errors.is_empty(),
                "the API accepted a body the document rejects: {method} {}\n{body}\n{}",
                call.path,
                errors.join("\n")
            );
        }
        let (path, query) = call.path.split_once('?').unwrap_or((&call.path, ""));
        for (pattern, segment) in template.split('/').zip(path.split('/')) {
            if let Some(name) = pattern.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                assert!(
                    self.accepts_param(method, template, name, segment),
                    "the API accepted path parameter {name}={segment:?} the document rejects"
                );
            }
        }
        let query: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
        for (name, value) in query {
            assert!(
                self.accepts_param(method, template, &name, &value),
                "the API accepted query parameter {name}={value:?} the document rejects"
            );
        }
        let documented_headers: Vec<String> = self
            .parameters(method, template)
            .into_iter()
            .filter(|p| p["in"] == "header")
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect();
        for (name, value) in &call.headers {
            if let Some(name) = documented_headers
                .iter()
                .find(|d| d.eq_ignore_ascii_case(name))
            {
                assert!(
                    self.accepts_param(method, template, name, value),
                    "the API accepted header {name}: {value:?} the document rejects"
                );
            }
        }
    }
}

/// Adds `unevaluatedProperties: false` to every object schema that lists its
/// properties and says nothing about others: an answer may then carry only
/// documented fields.
fn forbid_undocumented(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let lists_properties = map.get("properties").is_some_and(Value::is_object);
            let open = map.contains_key("additionalProperties")
                || map.contains_key("unevaluatedProperties");
            if lists_properties && !open {
                map.insert("unevaluatedProperties".into(), Value::Bool(false));
            }
            map.values_mut().for_each(forbid_undocumented);
        }
        Value::Array(items) => items.iter_mut().for_each(forbid_undocumented),
        _ => {}
    }
}

/// Every object (nested ones too) in the components and the paths.
fn all_objects<'a>(value: &'a Value, path: String, out: &mut Vec<(String, &'a Value)>) {
    match value {
        Value::Object(map) => {
            out.push((path.clone(), value));
            for (k, v) in map {
                all_objects(v, format!("{path}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                all_objects(v, format!("{path}/{i}"), out);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------- requests

struct Call {
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<(String, Vec<u8>)>,
}

impl Call {
    fn new(method: &'static str, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    fn json(self, body: Value) -> Self {
        self.raw("application/json", body.to_string().into_bytes())
    }

    fn raw(mut self, content_type: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.body = Some((content_type.to_owned(), bytes.into()));
        self
    }

    fn form(self, params: &[(&str, &str)]) -> Self {
        let body = serde_urlencoded::to_string(params).unwrap();
        self.raw("application/x-www-form-urlencoded", body)
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn organizer(self, organizer: &str) -> Self {
        self.header(local_stack::ORGANIZER_HEADER, organizer)
    }

    async fn send(&self, t: &TestStack) -> Reply {
        let mut req = t
            .http
            .request(self.method.parse().unwrap(), t.url(&self.path));
        for (name, value) in &self.headers {
            req = req.header(name, value);
        }
        if let Some((content_type, bytes)) = &self.body {
            req = req.header("content-type", content_type).body(bytes.clone());
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{} {} reaches the stack: {e}", self.method, self.path));
        let status = resp.status().as_u16();
        let media_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().trim().to_owned())
            .unwrap_or_default();
        let text = resp.text().await.unwrap();
        let body = if media_type == "application/json" {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("answered invalid JSON ({e}): {text}"))
        } else {
            Value::String(text.clone())
        };
        Reply {
            status,
            media_type,
            body,
            text,
        }
    }
}

struct Reply {
    status: u16,
    media_type: String,
    body: Value,
    text: String,
}

impl Reply {
    fn expect(self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.body);
        self.body
    }

    /// A 400 naming `field`.
    fn invalid(self, field: &str) {
        let body = self.expect(400);
        assert_eq!(body["error"]["code"], "invalid_request", "{body}");
        assert_eq!(body["error"]["field"], field, "{body}");
    }

    fn error(self, status: u16, code: &str) {
        let body = self.expect(status);
        assert_eq!(body["error"]["code"], code, "{body}");
    }
}

/// The webhook's path with `query` appended.
fn webhook_path(query: &str) -> String {
    format!("{}{query}", shared::edge::routes::WEBHOOK_PATH)
}

impl Spec {
    /// Posts `params` as a form to the webhook (`query` appended), signed as
    /// Twilio signs them for that URL, through [`Spec::exchange`].
    async fn post_signed(&self, t: &TestStack, query: &str, params: &[(&str, &str)]) -> Reply {
        let path = webhook_path(query);
        let signature = twilio_signature(&t.auth_token, &t.url(&path), params);
        self.exchange(
            t,
            Call::new("POST", &path)
                .form(params)
                .header("X-Twilio-Signature", &signature),
        )
        .await
    }
}

async fn no_sender() -> TestStack {
    // No sender instance: every invitation stays `queued`.
    TestStack::start_with(|_, options| options.max_concurrency = 0).await
}

async fn with_failing_phone() -> TestStack {
    TestStack::start_with(|sim, _| {
        sim.knobs.fail_numbers.insert(FAILING_PHONE.into(), 21211);
    })
    .await
}

async fn send_one(s: &Spec, t: &TestStack, event: &str, g: Value) -> (String, String) {
    let body = s
        .exchange(
            t,
            Call::new("POST", "/api/whatsapp/send-invitation")
                .json(json!({"event_id": event, "guest": g})),
        )
        .await
        .expect(202);
    (
        body["invitation_id"].as_str().unwrap().to_owned(),
        body["job_id"].as_str().unwrap().to_owned(),
    )
}

// ---------------------------------------------------------------- the document alone

#[test]
fn the_document_and_the_route_table_list_the_same_operations() {
    let s = Spec::load();
    let documented = s.operations();
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let not_served: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from openapi.yaml: {undocumented:?}"
    );
    assert!(
        not_served.is_empty(),
        "openapi.yaml documents operations shared::edge::routes::ROUTES lacks: {not_served:?}"
    );
}

#[test]
fn the_document_is_consistent() {
    let s = Spec::load();
    let mut operation_ids = BTreeSet::new();
    for (method, template) in s.operations() {
        let op = s.operation(&method, &template);
        let id = op["operationId"]
            .as_str()
            .expect("every operation has an id");
        assert!(
            operation_ids.insert(id.to_owned()),
            "duplicate operationId {id}"
        );
        let responses = op["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|k| k.starts_with('2')),
            "{method} {template} documents no success"
        );
        // Every path parameter is declared, as required, path parameter.
        let params = s.parameters(&method, &template);
        for segment in template.split('/') {
            if let Some(name) = segment.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                assert!(
                    params
                        .iter()
                        .any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true),
                    "{method} {template}: path parameter {name} not declared"
                );
            }
        }
        // Every schema compiles and every reference resolves.
        for response in responses.values() {
            for (_, media) in s.resolve(response)["content"]
                .as_object()
                .into_iter()
                .flatten()
            {
                let _compiles = s.validator(&media["schema"], true);
            }
        }
    }
    // Required fields are declared fields, and every reference resolves.
    let mut objects = Vec::new();
    all_objects(&s.doc, String::new(), &mut objects);
    for (at, object) in objects {
        if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
            let pointer = reference.strip_prefix('#').expect("local reference");
            assert!(
                s.doc.pointer(pointer).is_some(),
                "{at}: dangling {reference}"
            );
        }
        let (Some(required), Some(properties)) = (
            object.get("required").and_then(Value::as_array),
            object.get("properties").and_then(Value::as_object),
        ) else {
            continue;
        };
        for name in required {
            let name = name.as_str().expect("required lists names");
            assert!(
                properties.contains_key(name),
                "{at}: requires {name}, which it does not declare"
            );
        }
    }
    // Every error answer documents the error shape's required fields.
    for name in [
        "ValidationError",
        "UnauthorizedError",
        "NotFoundError",
        "ConflictError",
        "PayloadTooLargeError",
        "InternalError",
    ] {
        let schema = &s.doc["components"]["schemas"][name];
        assert_eq!(schema["required"], json!(["error"]), "{name}");
        let inner = schema["properties"]["error"]["required"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}.error lists required fields"));
        assert!(inner.contains(&json!("code")) && inner.contains(&json!("message")));
    }
    // The webhook is authenticated by Twilio's signature alone.
    let webhook = s.operation("POST", shared::edge::routes::WEBHOOK_PATH);
    assert_eq!(webhook["security"], json!([{"twilioSignature": []}]));
    assert!(webhook["responses"].get("403").is_some());
    assert_eq!(
        s.doc["components"]["securitySchemes"]["twilioSignature"]["name"],
        "X-Twilio-Signature"
    );
}

/// The checks themselves: references resolve, required fields are enforced,
/// undocumented fields and values are caught.
#[test]
fn the_checker_catches_what_the_document_does_not_say() {
    let s = Spec::load();
    let schema = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
    let event = json!({
        "event_id": "gala", "name": "Gala", "starts_at": "2027-05-01T17:00:00-03:00",
        "venue": "Hall", "host": "Ana", "rsvp_base_url": "https://rsvp.example.com/r/",
        "updated_at": "2026-01-01T00:00:00.000Z",
    });
    assert_eq!(
        s.errors(&schema("Event"), &event, true),
        Vec::<String>::new()
    );
    let mut extra = event.clone();
    extra["owner"] = json!("org-1");
    assert!(
        !s.errors(&schema("Event"), &extra, true).is_empty(),
        "undocumented field"
    );
    assert!(
        s.errors(&schema("Event"), &extra, false).is_empty(),
        "fine when not strict"
    );
    let mut missing = event.clone();
    missing.as_object_mut().unwrap().remove("updated_at");
    assert!(
        !s.errors(&schema("Event"), &missing, true).is_empty(),
        "required field"
    );
    let mut bad_time = event;
    bad_time["updated_at"] = json!("yesterday");
    assert!(
        !s.errors(&schema("Event"), &bad_time, true).is_empty(),
        "format"
    );

    let invitation = json!({
        "invitation_id": "inv_1", "job_id": "job_1", "guest_id": "g1", "name": "Ana",
        "status": "queued", "attempt": 1, "error_code": null, "error_message": null,
        "error_action": null, "what_to_do": null, "flag": null, "message_sid": null, "template_id": "default", "template_version": 1,
        "updated_at": "2026-01-01T00:00:00Z", "due_at": null,
        "timestamps": {"queued": "2026-01-01T00:00:00Z"},
    });
    let page = json!({"items": [invitation], "next_cursor": null});
    assert_eq!(
        s.errors(&schema("InvitationPage"), &page, true),
        Vec::<String>::new()
    );
    let mut bad = page.clone();
    bad["items"][0]["timestamps"]["bogus"] = json!("2026-01-01T00:00:00Z");
    assert!(
        !s.errors(&schema("InvitationPage"), &bad, true).is_empty(),
        "status names"
    );
    let mut bad = page;
    bad["items"][0]["status"] = json!("lost");
    assert!(
        !s.errors(&schema("InvitationPage"), &bad, true).is_empty(),
        "status enum"
    );

    let error = json!({"error": {"code": "invalid_request", "message": "guest.phone: bad"}});
    assert!(
        !s.errors(&schema("ValidationError"), &error, true)
            .is_empty(),
        "field required"
    );
    let not_found = json!({"error": {"code": "not_found", "message": "job x not found"}});
    assert!(
        s.errors(&schema("NotFoundError"), &not_found, true)
            .is_empty()
    );
    assert!(
        !s.errors(&schema("ConflictError"), &not_found, true)
            .is_empty(),
        "code"
    );

    assert_eq!(
        s.template("/api/whatsapp/retry-failed").as_deref(),
        Some("/api/whatsapp/retry-failed")
    );
    assert_eq!(
        s.template("/api/whatsapp/retry/inv_1?x=1").as_deref(),
        Some("/api/whatsapp/retry/{invitationId}")
    );
    assert_eq!(s.template("/api/whatsapp/nope"), None);
}

// ---------------------------------------------------------------- the API against it

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_sends_and_progress_answer_as_documented() {
    let s = Spec::load();
    let t = no_sender().await;
    let event_path = "/api/whatsapp/events/gala";

    // Events.
    let created = s
        .exchange(&t, Call::new("PUT", event_path).json(sample_event()))
        .await
        .expect(201);
    assert_eq!(created["event_id"], "gala");
    assert_eq!(created["starts_at"], sample_event()["starts_at"]);
    s.exchange(&t, Call::new("PUT", event_path).json(sample_event()))
        .await
        .expect(200);
    let got = s
        .exchange(&t, Call::new("GET", event_path))
        .await
        .expect(200);
    assert_eq!(got["name"], sample_event()["name"]);
    let mut later = sample_event();
    later["starts_at"] = json!("2027-06-01T17:00:00-03:00");
    s.exchange(
        &t,
        Call::new("PUT", "/api/whatsapp/events/later").json(later),
    )
    .await
    .expect(201);
    let list = s
        .exchange(&t, Call::new("GET", "/api/whatsapp/events"))
        .await
        .expect(200);
    let ids: Vec<&Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["event_id"])
        .collect();
    assert_eq!(ids, [&json!("gala"), &json!("later")]);
    s.exchange(&t, Call::new("GET", "/api/whatsapp/events/nope"))
        .await
        .error(404, "not_found");
    let facts = s
        .exchange(&t, Call::new("GET", "/api/whatsapp/facts"))
        .await
        .expect(200);
    assert_eq!(facts["statuses"][1]["status"], "waiting");

    let mut bad_cases = Vec::new();
    for (field, value) in [
        ("name", Value::Null),
        ("starts_at", json!("tomorrow")),
        ("venue", json!("   ")),
        ("rsvp_base_url", json!("ftp://rsvp.example.com/")),
    ] {
        let mut body = sample_event();
        body[field] = value;
        bad_cases.push((body, field));
    }
    let mut unknown = sample_event();
    unknown["colour"] = json!("red");
    for (body, field) in bad_cases {
        assert!(
            !s.accepts_body("PUT", event_path, &body),
            "the document accepts {body}"
        );
        s.exchange(&t, Call::new("PUT", event_path).json(body))
            .await
            .invalid(field);
    }
    assert!(!s.accepts_body("PUT", event_path, &unknown));
    s.exchange(&t, Call::new("PUT", event_path).json(unknown))
        .await
        .error(400, "invalid_request");
    let template = "/api/whatsapp/events/{eventId}";
    assert!(!s.accepts_param("PUT", template, "eventId", "bad!id"));
    s.exchange(
        &t,
        Call::new("PUT", "/api/whatsapp/events/bad!id").json(sample_event()),
    )
    .await
    .invalid("eventId");
    s.exchange(
        &t,
        Call::new("PUT", event_path).raw("application/json", "{\"name\": "),
    )
    .await
    .invalid("body");
    let mut huge = sample_event();
    huge["venue"] = json!("x".repeat(20_000));
    s.exchange(&t, Call::new("PUT", event_path).json(huge))
        .await
        .error(413, "payload_too_large");
    s.exchange(&t, Call::new("GET", "/api/whatsapp/events").organizer(""))
        .await
        .error(401, "unauthorized");

    // send-invitation.
    let send_path = "/api/whatsapp/send-invitation";
    let (first_id, first_job) =
        send_one(&s, &t, "gala", guest("g1", "Ana", "+5511999990000")).await;
    let mut with_token = guest("g2", "Bo", "+5511999990001");
    with_token["rsvp_token"] = json!("tok-bo");
    let accepted = s
        .exchange(
            &t,
            Call::new("POST", send_path)
                .json(json!({"event_id": "gala", "guest": with_token, "template_id": "default"})),
        )
        .await
        .expect(202);
    assert_eq!(accepted["status"], "queued");
    let second_id = accepted["invitation_id"].as_str().unwrap().to_owned();

    let g = |phone: &str| guest("g9", "Cy", phone);
    let schema_rejects = [
        (
            json!({"event_id": "gala", "guest": g("5511999990000")}),
            "guest.phone",
        ),
        (
            json!({"event_id": "gala", "guest": g("+55 11 99999 000x")}),
            "guest.phone",
        ),
        (
            json!({"event_id": "gala", "guest": g("+0123456789")}),
            "guest.phone",
        ),
        (
            json!({"event_id": "gala", "guest": guest("g9", "Cy\u{202E}", "+5511999990009")}),
            "guest.name",
        ),
        (
            json!({"event_id": "gala", "guest": {"guest_id": "g9", "phone": "+5511999990000"}}),
            "guest.name",
        ),
        (
            json!({"event_id": "gala", "guest": guest("", "Cy", "+5511999990000")}),
            "guest.guest_id",
        ),
        (json!({"guest": g("+5511999990000")}), "event_id"),
        (json!({"event_id": "gala"}), "guest"),
        (
            json!({"event_id": "gala/x", "guest": g("+5511999990000")}),
            "event_id",
        ),
        (json!([1, 2]), "body"),
    ];
    for (body, field) in schema_rejects {
        assert!(
            !s.accepts_body("POST", send_path, &body),
            "the document accepts {body}"
        );
        s.exchange(&t, Call::new("POST", send_path).json(body))
            .await
            .invalid(field);
    }
    // Rules a schema cannot state: the event must exist, the template too.
    for (body, field) in [
        (
            json!({"event_id": "nope", "guest": g("+5511999990000")}),
            "event_id",
        ),
        (
            json!({"event_id": "gala", "guest": g("+5511999990000"), "template_id": "missing"}),
            "template_id",
        ),
    ] {
        s.exchange(&t, Call::new("POST", send_path).json(body))
            .await
            .invalid(field);
    }
    let malformed = s
        .exchange(
            &t,
            Call::new("POST", send_path).raw("application/json", "{\"event_id\": \"gala\", "),
        )
        .await
        .expect(400);
    assert_eq!(malformed["error"]["field"], "body");
    assert!(
        malformed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("malformed JSON"),
        "{malformed}"
    );
    s.exchange(&t, Call::new("POST", send_path).raw("application/json", ""))
        .await
        .invalid("body");
    let huge =
        json!({"event_id": "gala", "guest": guest("g1", &"A".repeat(20_000), "+5511999990000")});
    s.exchange(&t, Call::new("POST", send_path).json(huge))
        .await
        .error(413, "payload_too_large");
    s.exchange(
        &t,
        Call::new("POST", send_path)
            .organizer("")
            .json(json!({"event_id": "gala", "guest": g("+5511999990000")})),
    )
    .await
    .error(401, "unauthorized");

    // Job status.
    let job_path = format!("/api/whatsapp/status/{first_job}");
    let job = s
        .exchange(&t, Call::new("GET", &job_path))
        .await
        .expect(200);
    assert_eq!(job["job_id"], first_job.as_str());
    assert_eq!(job["event_id"], "gala");
    assert_eq!(job["total"], 1);
    assert_eq!(job["counts"]["queued"], 1);
    assert_eq!(job["done"], false);
    s.exchange(&t, Call::new("GET", "/api/whatsapp/status/job_nope"))
        .await
        .error(404, "not_found");
    s.exchange(&t, Call::new("GET", &job_path).organizer("someone-else"))
        .await
        .error(404, "not_found");
    s.exchange(&t, Call::new("GET", "/api/whatsapp/status/bad!id"))
        .await
        .invalid("jobId");
    s.exchange(&t, Call::new("GET", &job_path).organizer(""))
        .await
        .error(401, "unauthorized");

    // Invitations.
    let list_path = "/api/whatsapp/invitations/gala";
    let page = s
        .exchange(&t, Call::new("GET", list_path))
        .await
        .expect(200);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{page}");
    assert!(
        items
            .iter()
            .all(|i| i["status"] == "queued" && i["attempt"] == 1)
    );
    let first_page = s
        .exchange(
            &t,
            Call::new("GET", format!("{list_path}?status=queued&limit=1")),
        )
        .await
        .expect(200);
    assert_eq!(first_page["items"].as_array().unwrap().len(), 1);
    if let Some(cursor) = first_page["next_cursor"].as_str() {
        let query = serde_urlencoded::to_string([("cursor", cursor), ("limit", "1")]).unwrap();
        let next = s
            .exchange(&t, Call::new("GET", format!("{list_path}?{query}")))
            .await
            .expect(200);
        assert_ne!(next["items"], first_page["items"]);
    }
    let list_template = "/api/whatsapp/invitations/{eventId}";
    for (query, field) in [
        ("status=bogus", "status"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
    ] {
        let (name, value) = query.split_once('=').unwrap();
        assert!(
            !s.accepts_param("GET", list_template, name, value),
            "{query}"
        );
        s.exchange(&t, Call::new("GET", format!("{list_path}?{query}")))
            .await
            .invalid(field);
    }
    s.exchange(&t, Call::new("GET", format!("{list_path}?cursor=garbage")))
        .await
        .invalid("cursor");
    s.exchange(&t, Call::new("GET", "/api/whatsapp/invitations/nope"))
        .await
        .error(404, "not_found");

    // Retry: only failed or undelivered invitations.
    let conflict = s
        .exchange(
            &t,
            Call::new("POST", format!("/api/whatsapp/retry/{first_id}")),
        )
        .await
        .expect(409);
    assert_eq!(conflict["error"]["code"], "conflict");
    s.exchange(&t, Call::new("POST", "/api/whatsapp/retry/inv_nope"))
        .await
        .error(404, "not_found");
    s.exchange(&t, Call::new("POST", "/api/whatsapp/retry/bad!id"))
        .await
        .invalid("invitationId");
    s.exchange(
        &t,
        Call::new("POST", format!("/api/whatsapp/retry/{first_id}")).organizer("someone-else"),
    )
    .await
    .error(404, "not_found");

    // The webhook: Twilio's signature or 403.
    let query = format!("?invitation_id={second_id}&attempt=1");
    let sent = [
        ("MessageSid", "SM00000000000000000000000000000001"),
        ("MessageStatus", "sent"),
        ("AccountSid", twilio_sim::DEFAULT_ACCOUNT_SID),
    ];
    let path = webhook_path(&query);
    let denied = s
        .exchange(&t, Call::new("POST", &path).form(&sent))
        .await
        .expect(403);
    assert_eq!(denied, "invalid signature");
    s.exchange(
        &t,
        Call::new("POST", &path)
            .form(&sent)
            .header("X-Twilio-Signature", "bm90IGl0"),
    )
    .await
    .expect(403);
    s.post_signed(&t, "", &sent).await.invalid("invitation_id");
    let no_status = [("MessageSid", "SM00000000000000000000000000000001")];
    s.post_signed(&t, &query, &no_status)
        .await
        .invalid("MessageStatus");
    let ok = s.post_signed(&t, &query, &sent).await.expect(200);
    assert_eq!(ok, "");
    let unknown_query = "?invitation_id=inv_nope&attempt=1";
    s.post_signed(&t, unknown_query, &sent).await.expect(200);
    // The applied callback shows in the documented shapes.
    let page = s
        .exchange(&t, Call::new("GET", format!("{list_path}?status=sent")))
        .await
        .expect(200);
    let item = &page["items"][0];
    assert_eq!(item["invitation_id"], second_id.as_str(), "{page}");
    assert_eq!(item["message_sid"], "SM00000000000000000000000000000001");
    assert!(item["timestamps"]["sent"].is_string(), "{item}");
    let second_job = item["job_id"].as_str().unwrap();
    let job = s
        .exchange(
            &t,
            Call::new("GET", format!("/api/whatsapp/status/{second_job}")),
        )
        .await
        .expect(200);
    assert_eq!(job["counts"]["sent"], 1, "{job}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_invitation_and_its_retry_answer_as_documented() {
    let s = Spec::load();
    let t = with_failing_phone().await;
    t.create_event("gala").await;
    let (id, job_id) = send_one(&s, &t, "gala", guest("g1", "Ana", FAILING_PHONE)).await;
    t.wait_for_invitation("gala", &id, Duration::from_secs(20), |i| {
        i["status"] == "failed"
    })
    .await;
    let page = s
        .exchange(
            &t,
            Call::new("GET", "/api/whatsapp/invitations/gala?status=failed"),
        )
        .await
        .expect(200);
    let failed = &page["items"][0];
    assert_eq!(failed["invitation_id"], id.as_str(), "{page}");
    assert_eq!(failed["error_code"], "21211", "{failed}");
    assert!(failed["error_message"].is_string(), "{failed}");
    let job = s
        .exchange(
            &t,
            Call::new("GET", format!("/api/whatsapp/status/{job_id}")),
        )
        .await
        .expect(200);
    assert_eq!(job["counts"]["failed"], 1, "{job}");
    assert_eq!(job["done"], true, "{job}");

    let retried = s
        .exchange(&t, Call::new("POST", format!("/api/whatsapp/retry/{id}")))
        .await
        .expect(202);
    assert_eq!(retried["invitation_id"], id.as_str());
    assert_eq!(retried["attempt"], 2);
    assert_eq!(retried["status"], "queued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_bulk_answers_as_documented() {
    let s = Spec::load();
    let t = no_sender().await;
    t.create_event("gala").await;
    let path = "/api/whatsapp/send-bulk";
    let guests = json!([
        guest("b1", "Ana", "+5511999990000"),
        guest("b2", "Bo", "55 11 99999 0001"),
        guest("b3", "Cy", "+5511999990002"),
        guest("b1", "Ana again", "+5511999990003"),
        "not a guest",
        guest("b5", "Di", "+5511999990002"),
    ]);
    let request = json!({"event_id": "gala", "guests": guests});
    let answer = s
        .exchange(
            &t,
            Call::new("POST", path)
                .header("Idempotency-Key", "bulk-1")
                .json(request.clone()),
        )
        .await
        .expect(202);
    assert_eq!(answer["accepted"], 2, "b1 and b3: {answer}");
    let rejected: Vec<(&Value, &Value, &Value)> = answer["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (&r["index"], &r["guest_id"], &r["field"]))
        .collect();
    assert_eq!(
        rejected,
        [
            (&json!(1), &json!("b2"), &json!("guests[1].phone")),
            (&json!(4), &Value::Null, &json!("guests[4]")),
        ],
        "{answer}"
    );
    let duplicates: Vec<(&Value, &Value)> = answer["duplicates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (&d["index"], &d["duplicate_of"]))
        .collect();
    // By guest id (b1) and by phone (b5 has b3's).
    assert_eq!(
        duplicates,
        [(&json!(3), &json!(0)), (&json!(5), &json!(2))],
        "{answer}"
    );
    let job_id = answer["job_id"].as_str().unwrap();
    let job = s
        .exchange(
            &t,
            Call::new("GET", format!("/api/whatsapp/status/{job_id}")),
        )
        .await
        .expect(200);
    assert_eq!(job["total"], 2, "{job}");
    assert_eq!(job["counts"]["queued"], 2, "{job}");

    // The same key and body: the first answer, nothing new queued.
    let again = s
        .exchange(
            &t,
            Call::new("POST", path)
                .header("Idempotency-Key", "bulk-1")
                .json(request),
        )
        .await
        .expect(202);
    assert_eq!(again, answer);
    assert_eq!(t.invitations("gala").await.len(), 2, "queued once");
    // The same key with another body: 409.
    let g = guest("b9", "Eve", "+5511999990009");
    let other = json!({"event_id": "gala", "guests": [g.clone()]});
    s.exchange(
        &t,
        Call::new("POST", path)
            .header("Idempotency-Key", "bulk-1")
            .json(other.clone()),
    )
    .await
    .error(409, "conflict");
    let long_key = "k".repeat(201);
    assert!(!s.accepts_param("POST", path, "Idempotency-Key", &long_key));
    s.exchange(
        &t,
        Call::new("POST", path)
            .header("Idempotency-Key", &long_key)
            .json(other),
    )
    .await
    .invalid("Idempotency-Key");

    let schema_rejects = [
        (json!({"guests": [g.clone()]}), "event_id"),
        (json!({"event_id": "gala"}), "guests"),
        (json!({"event_id": "gala", "guests": []}), "guests"),
        (json!({"event_id": "gala", "guests": "all"}), "guests"),
        (json!([g.clone()]), "body"),
    ];
    for (body, field) in schema_rejects {
        assert!(
            !s.accepts_body("POST", path, &body),
            "the document accepts {body}"
        );
        s.exchange(&t, Call::new("POST", path).json(body))
            .await
            .invalid(field);
    }
    // Rules a schema cannot state.
    for (body, field) in [
        (
            json!({"event_id": "nope", "guests": [g.clone()]}),
            "event_id",
        ),
        (
            json!({"event_id": "gala", "guests": [g.clone()], "template_id": "missing"}),
            "template_id",
        ),
        (
            json!({"event_id": "gala", "guests": [guest("x", "X", "123")]}),
            "guests",
        ),
    ] {
        s.exchange(&t, Call::new("POST", path).json(body))
            .await
            .invalid(field);
    }
    s.exchange(
        &t,
        Call::new("POST", path).raw("application/json", "{\"event_id\": \"gala\", \"guests\": ["),
    )
    .await
    .invalid("body");
    let mut too_large = b"{\"event_id\": \"gala\", \"guests\": [], \"pad\": \"".to_vec();
    too_large.resize(6 * 1024 * 1024 + 1, b'x');
    s.exchange(
        &t,
        Call::new("POST", path).raw("application/json", too_large),
    )
    .await
    .error(413, "payload_too_large");
    s.exchange(
        &t,
        Call::new("POST", path)
            .organizer("")
            .json(json!({"event_id": "gala", "guests": [g]})),
    )
    .await
    .error(401, "unauthorized");

    // Over 250 guests: answered before they are admitted, then the job
    // shows how admission goes (b1 and b3 are left out: already invited).
    let mut many = e2e::guests(shared::domain::admission::INLINE_GUESTS);
    many.push(guest("b1", "Ana", "+5511999990000"));
    many.push(guest("b3", "Cy", "+5511999990002"));
    let large = s
        .exchange(
            &t,
            Call::new("POST", path).json(json!({"event_id": "gala", "guests": many})),
        )
        .await
        .expect(202);
    assert_eq!(large["admitting"], true, "{large}");
    let job_id = large["job_id"].as_str().unwrap();
    t.wait_for_job(job_id, Duration::from_secs(60), |j| {
        j["admission"]["state"] == "admitted"
    })
    .await;
    let job = s
        .exchange(
            &t,
            Call::new("GET", format!("/api/whatsapp/status/{job_id}")),
        )
        .await
        .expect(200);
    assert_eq!(
        (&job["total"], &job["admission"]["left_out"]),
        (&json!(shared::domain::admission::INLINE_GUESTS), &json!(2)),
        "{job}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_and_second_sends_answer_as_documented() {
    let s = Spec::load();
    let t = no_sender().await;
    t.create_event("gala").await;
    let path = "/api/whatsapp/guests/gala";
    let imported = s
        .exchange(
            &t,
            Call::new("POST", path).json(json!({"guests": [
                guest("g1", "Ana", "+5511999990000"),
                {"name": "Bo", "phone": "+5511999990001"},
                guest("g3", "Cy", "not a phone"),
            ]})),
        )
        .await
        .expect(200);
    assert_eq!(
        (&imported["created"], &imported["unchanged"]),
        (&json!(2), &json!(0))
    );
    assert_eq!(
        imported["rejected"][0]["field"], "guests[2].phone",
        "{imported}"
    );
    let csv = "guest_id;name;phone\ng1;Ana Maria;+55 11 99999-0000\ng4;Di;12\n";
    let from_csv = s
        .exchange(&t, Call::new("POST", path).raw("text/csv", csv))
        .await
        .expect(200);
    assert_eq!(from_csv["updated"], 1, "{from_csv}");
    let rejected = &from_csv["rejected"][0];
    assert_eq!(
        (&rejected["line"], &rejected["field"]),
        (&json!(3), &json!("phone"))
    );
    s.exchange(
        &t,
        Call::new("POST", path).raw("text/csv", "who,when\nx,y\n"),
    )
    .await
    .invalid("body");
    s.exchange(&t, Call::new("POST", path).json(json!({"guests": []})))
        .await
        .invalid("guests");
    s.exchange(
        &t,
        Call::new("POST", "/api/whatsapp/guests/nope")
            .json(json!({"guests": [guest("g1", "Ana", "+5511999990000")]})),
    )
    .await
    .error(404, "not_found");

    let page = s
        .exchange(&t, Call::new("GET", format!("{path}?limit=1")))
        .await
        .expect(200);
    assert_eq!(page["items"][0]["guest_id"], "g1", "{page}");
    assert_eq!(page["items"][0]["invitation"], Value::Null);
    let cursor = page["next_cursor"].as_str().expect("a second page");
    let second = s
        .exchange(
            &t,
            Call::new("GET", format!("{path}?limit=1&cursor={cursor}")),
        )
        .await
        .expect(200);
    assert_eq!(second["next_cursor"], Value::Null, "{second}");
    let since = page["changes"].as_str().unwrap().to_owned();
    for (query, field) in [
        ("status=lost", "status"),
        ("opted_out=maybe", "opted_out"),
        ("limit=0", "limit"),
        ("cursor=%25%25", "cursor"),
        ("since=garbage", "since"),
        ("since=x&cursor=y", "cursor"),
    ] {
        s.exchange(&t, Call::new("GET", format!("{path}?{query}")))
            .await
            .invalid(field);
    }
    let status_param = s
        .parameters("GET", "/api/whatsapp/guests/{eventId}")
        .into_iter()
        .find(|p| p["name"] == "status")
        .unwrap()
        .clone();
    assert!(
        !s.errors(&status_param["schema"], &json!("lost"), false)
            .is_empty()
    );

    // One guest: created, edited, refused, removed.
    let one = format!("{path}/g9");
    let created = s
        .exchange(
            &t,
            Call::new("PUT", &one).json(json!({"name": "Eve", "phone": "+5511999990009"})),
        )
        .await
        .expect(201);
    assert_eq!(created["guest_id"], "g9");
    s.exchange(
        &t,
        Call::new("PUT", &one).json(json!({"name": "Eve B", "phone": "+5511999990009"})),
    )
    .await
    .expect(200);
    s.exchange(
        &t,
        Call::new("PUT", &one).json(json!({"name": "Eve", "phone": "+5511999990000"})),
    )
    .await
    .invalid("phone");
    s.exchange(
        &t,
        Call::new("PUT", &one)
            .json(json!({"guest_id": "g1", "name": "Eve", "phone": "+5511999990009"})),
    )
    .await
    .invalid("guest_id");
    s.exchange(&t, Call::new("DELETE", &one)).await.expect(204);
    s.exchange(&t, Call::new("DELETE", &one))
        .await
        .error(404, "not_found");

    // A send naming a listed guest as they were before the CSV renamed
    // them: refused, naming the field; as listed, sent.
    let stale = s
        .exchange(
            &t,
            Call::new("POST", "/api/whatsapp/send-invitation")
                .json(json!({"event_id": "gala", "guest": guest("g1", "Ana", "+5511999990000")})),
        )
        .await
        .expect(409);
    assert_eq!(stale["error"]["field"], "guest.name", "{stale}");
    // A send, then what changed since the first page.
    let ana = guest("g1", "Ana Maria", "+5511999990000");
    send_one(&s, &t, "gala", ana.clone()).await;
    let mut changed = Vec::new();
    for _ in 0..50 {
        let changes = s
            .exchange(&t, Call::new("GET", format!("{path}?since={since}")))
            .await
            .expect(200);
        if changes["removed"] == json!(["g9"])
            && changes["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["invitation"]["status"] == "queued")
        {
            changed = changes["items"].as_array().unwrap().clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        !changed.is_empty(),
        "the send and the removal show as changes"
    );

    // A second invitation to a guest the first holds: refused unless resent.
    s.exchange(
        &t,
        Call::new("POST", "/api/whatsapp/send-invitation")
            .json(json!({"event_id": "gala", "guest": ana.clone()})),
    )
    .await
    .error(409, "conflict");
    let bo = guest("p5511999990001", "Bo", "+5511999990001");
    let bulk = "/api/whatsapp/send-bulk";
    let dry = s
        .exchange(
            &t,
            Call::new("POST", bulk).json(json!({"event_id": "gala", "guests": [ana.clone(), bo.clone()], "dry_run": true, "resend": true})),
        )
        .await
        .expect(200);
    assert_eq!(
        (&dry["accepted"], &dry["resends"]),
        (&json!(2), &json!(1)),
        "{dry}"
    );
    let sent = s
        .exchange(
            &t,
            Call::new("POST", bulk).json(json!({"event_id": "gala", "guests": [ana.clone(), bo]})),
        )
        .await
        .expect(202);
    assert_eq!(sent["accepted"], 1, "{sent}");
    assert_eq!(
        (
            &sent["left_out"][0]["index"],
            &sent["left_out"][0]["reason"]
        ),
        (&json!(0), &json!("already_invited"))
    );
    let none_left = s
        .exchange(
            &t,
            Call::new("POST", bulk).json(json!({"event_id": "gala", "guests": [ana.clone()]})),
        )
        .await
        .expect(202);
    assert_eq!(none_left["accepted"], 0, "{none_left}");
    s.exchange(
        &t,
        Call::new("POST", "/api/whatsapp/send-invitation")
            .json(json!({"event_id": "gala", "guest": ana, "resend": true})),
    )
    .await
    .expect(202);
    s.exchange(&t, Call::new("GET", path).organizer(""))
        .await
        .error(401, "unauthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_failed_answers_as_documented() {
    let s = Spec::load();
    let t = with_failing_phone().await;
    t.create_event("gala").await;
    let (failing, _) = send_one(&s, &t, "gala", guest("g1", "Ana", FAILING_PHONE)).await;
    let (fine, fine_job) = send_one(&s, &t, "gala", guest("g2", "Bo", "+5511999990001")).await;
    t.wait_for_invitation("gala", &failing, Duration::from_secs(20), |i| {
        i["status"] == "failed"
    })
    .await;
    t.wait_for_invitation("gala", &fine, Duration::from_secs(20), |i| {
        i["status"] == "read"
    })
    .await;
    let path = "/api/whatsapp/retry-failed";

    let nothing = s
        .exchange(
            &t,
            Call::new("POST", path).json(json!({"job_id": fine_job})),
        )
        .await
        .expect(202);
    assert_eq!(nothing["retried"], 0, "{nothing}");
    assert_eq!(nothing["invitation_ids"], json!([]));
    let retried = s
        .exchange(
            &t,
            Call::new("POST", path).json(json!({"event_id": "gala"})),
        )
        .await
        .expect(202);
    assert_eq!(retried["retried"], 1, "{retried}");
    assert_eq!(retried["invitation_ids"], json!([failing]));
    let inv = t.invitation("gala", &failing).await;
    assert_eq!(inv["attempt"], 2, "a new attempt: {inv}");

    for body in [
        json!({}),
        json!({"job_id": fine_job, "event_id": "gala"}),
        json!({"job_id": "bad!id"}),
        json!({"jobId": fine_job}),
        json!([fine_job]),
    ] {
        assert!(
            !s.accepts_body("POST", path, &body),
            "the document accepts {body}"
        );
        s.exchange(&t, Call::new("POST", path).json(body))
            .await
            .error(400, "invalid_request");
    }
    s.exchange(
        &t,
        Call::new("POST", path).json(json!({"job_id": "job_nope"})),
    )
    .await
    .error(404, "not_found");
    s.exchange(
        &t,
        Call::new("POST", path).json(json!({"event_id": "nope"})),
    )
    .await
    .error(404, "not_found");
    s.exchange(&t, Call::new("POST", path).raw("application/json", "{"))
        .await
        .invalid("body");
    s.exchange(
        &t,
        Call::new("POST", path)
            .organizer("")
            .json(json!({"event_id": "gala"})),
    )
    .await
    .error(401, "unauthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_answer_as_documented() {
    let s = Spec::load();
    let t = no_sender().await;
    t.create_event("gala").await;
    let list = s
        .exchange(&t, Call::new("GET", "/api/whatsapp/templates"))
        .await
        .expect(200);
    assert_eq!(list["items"][0]["template_id"], "default", "{list}");
    let path = "/api/whatsapp/templates";
    let body = json!({"template_id": "warm", "name": "Warm", "text": "Hi {guest_first_name}{{ if event_host }}, from {event_host}{{ endif }}!"});
    let created = s
        .exchange(&t, Call::new("POST", path).json(body.clone()))
        .await
        .expect(201);
    assert_eq!(created["version"], 1);
    s.exchange(&t, Call::new("POST", path).json(body))
        .await
        .error(409, "conflict");
    let content = json!({
        "name": "Approved",
        "content_sid": "HX00000000000000000000000000000001",
        "content_variables": {"1": "{guest_first_name}", "2": "{rsvp_link}"},
    });
    let generated = s
        .exchange(&t, Call::new("POST", path).json(content))
        .await
        .expect(201);
    let generated_id = generated["template_id"].as_str().unwrap().to_owned();
    let sid = "HX00000000000000000000000000000001";
    // Rules only the API can check.
    for (body, field) in [
        (json!({"template_id": "x", "text": "{nope}"}), "text"),
        (json!({"template_id": "x", "text": "{guest_name"}), "text"),
        (
            json!({"template_id": "x", "text": "x".repeat(1601)}),
            "text",
        ),
    ] {
        s.exchange(&t, Call::new("POST", path).json(body))
            .await
            .invalid(field);
    }
    // Rules the document states too.
    for (body, field) in [
        (json!({"template_id": "x"}), Some("text")),
        (
            json!({"template_id": "x", "text": "a", "content_sid": sid}),
            Some("content_sid"),
        ),
        (
            json!({"template_id": "x", "content_sid": "HX1"}),
            Some("content_sid"),
        ),
        (
            json!({"template_id": "x", "content_sid": sid, "content_variables": {"1": 2}}),
            Some("content_variables.1"),
        ),
        (
            json!({"template_id": "x", "content_sid": sid, "content_variables": {"one": "{guest_name}"}}),
            Some("content_variables.one"),
        ),
        (
            json!({"template_id": "bad!id", "text": "a"}),
            Some("template_id"),
        ),
        (
            json!({"template_id": "x", "text": "a", "colour": "red"}),
            None,
        ),
    ] {
        assert!(
            !s.accepts_body("POST", path, &body),
            "the document accepts {body}"
        );
        let reply = s.exchange(&t, Call::new("POST", path).json(body)).await;
        match field {
            Some(field) => reply.invalid(field),
            None => reply.error(400, "invalid_request"),
        }
    }
    s.exchange(&t, Call::new("POST", path).raw("application/json", "{"))
        .await
        .invalid("body");
    s.exchange(&t, Call::new("GET", path).organizer(""))
        .await
        .error(401, "unauthorized");

    let one = "/api/whatsapp/templates/warm";
    let v2 = s
        .exchange(
            &t,
            Call::new("PUT", one).json(json!({"name": "Warm", "text": "Hello {guest_name}"})),
        )
        .await
        .expect(200);
    assert_eq!(v2["version"], 2);
    s.exchange(&t, Call::new("PUT", one).json(json!({"text": "{{ if }}"})))
        .await
        .invalid("text");
    s.exchange(
        &t,
        Call::new("PUT", "/api/whatsapp/templates/nope").json(json!({"text": "Hi"})),
    )
    .await
    .error(404, "not_found");
    let got = s.exchange(&t, Call::new("GET", one)).await.expect(200);
    assert_eq!(got["version"], 2);
    let first = s
        .exchange(&t, Call::new("GET", format!("{one}?version=1")))
        .await
        .expect(200);
    assert_eq!(first["version"], 1);
    s.exchange(&t, Call::new("GET", format!("{one}?version=9")))
        .await
        .error(404, "not_found");
    assert!(!s.accepts_param(
        "GET",
        "/api/whatsapp/templates/{templateId}",
        "version",
        "0"
    ));
    s.exchange(&t, Call::new("GET", format!("{one}?version=0")))
        .await
        .invalid("version");
    s.exchange(&t, Call::new("GET", one).organizer("someone-else"))
        .await
        .error(404, "not_found");
    s.exchange(&t, Call::new("GET", "/api/whatsapp/templates/bad!id"))
        .await
        .invalid("templateId");

    let preview = format!("{one}/preview");
    let guest_body = guest("g1", "Ana Souza", "+5511999990000");
    let shown = s
        .exchange(
            &t,
            Call::new("POST", &preview).json(json!({"event_id": "gala", "guest": guest_body})),
        )
        .await
        .expect(200);
    assert_eq!(shown["body"], "Hello Ana Souza");
    let shown = s
        .exchange(
            &t,
            Call::new("POST", &preview)
                .json(json!({"event_id": "gala", "guest": guest_body, "version": 1})),
        )
        .await
        .expect(200);
    assert_eq!(shown["body"], "Hi Ana, from Marina!");
    let shown = s
        .exchange(
            &t,
            Call::new(
                "POST",
                format!("/api/whatsapp/templates/{generated_id}/preview"),
            )
            .json(json!({"event_id": "gala", "guest": guest_body})),
        )
        .await
        .expect(200);
    assert_eq!(shown["content_variables"]["1"], "Ana");
    for (body, field) in [
        (json!({"guest": guest_body}), "event_id"),
        (json!({"event_id": "nope", "guest": guest_body}), "event_id"),
        (json!({"event_id": "gala"}), "guest"),
        (
            json!({"event_id": "gala", "guest": guest("g1", "Ana", "123")}),
            "guest.phone",
        ),
    ] {
        s.exchange(&t, Call::new("POST", &preview).json(body))
            .await
            .invalid(field);
    }
    s.exchange(
        &t,
        Call::new("POST", "/api/whatsapp/templates/nope/preview")
            .json(json!({"event_id": "gala", "guest": guest_body})),
    )
    .await
    .error(404, "not_found");

    // Sends name the template and its version.
    let mut event = sample_event();
    event["default_template_id"] = json!("warm");
    let updated = s
        .exchange(
            &t,
            Call::new("PUT", "/api/whatsapp/events/gala").json(event),
        )
        .await
        .expect(200);
    assert_eq!(updated["default_template_id"], "warm");
    let sent = s
        .exchange(
            &t,
            Call::new("POST", "/api/whatsapp/send-invitation")
                .json(json!({"event_id": "gala", "guest": guest_body})),
        )
        .await
        .expect(202);
    assert_eq!(sent["template_id"], "warm");
    assert_eq!(sent["template_version"], 2);
    let page = s
        .exchange(&t, Call::new("GET", "/api/whatsapp/invitations/gala"))
        .await
        .expect(200);
    assert_eq!(page["items"][0]["template_version"], 2, "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opt_outs_and_incoming_messages_answer_as_documented() {
    let s = Spec::load();
    let t = no_sender().await;
    t.create_event("gala").await;
    let path = "/api/whatsapp/opt-outs/%2B5511999990000";
    let none = s.exchange(&t, Call::new("GET", path)).await.expect(200);
    assert_eq!(none["opted_out"], false);
    assert!(none["source"].is_null());
    let out = s.exchange(&t, Call::new("PUT", path)).await.expect(200);
    assert_eq!(out["source"], "api");
    let bare = s
        .exchange(&t, Call::new("GET", "/api/whatsapp/opt-outs/5511999990000"))
        .await
        .expect(200);
    assert_eq!(bare, out);
    // Another organizer's lift neither sees nor touches it.
    let others = s
        .exchange(&t, Call::new("DELETE", path).organizer("someone-else"))
        .await
        .expect(200);
    assert_eq!(others["opted_out"], false);
    assert!(others["source"].is_null());

    // Skipped sends, in the documented shapes.
    let sent = s
        .exchange(
            &t,
            Call::new("POST", "/api/whatsapp/send-invitation")
                .json(json!({"event_id": "gala", "guest": guest("g1", "Ana", "+5511999990000")})),
        )
        .await
        .expect(202);
    assert_eq!(sent["status"], "skipped");
    let bulk = s
        .exchange(
            &t,
            Call::new("POST", "/api/whatsapp/send-bulk").json(
                json!({"event_id": "gala", "guests": [
                    guest("g1", "Ana", "+5511999990000"),
                    guest("g2", "Bo", "+5511999990001"),
                ]}),
            ),
        )
        .await
        .expect(202);
    assert_eq!(bulk["queued"], 1, "{bulk}");
    assert_eq!(bulk["skipped"][0]["index"], 0, "{bulk}");
    let page = s
        .exchange(
            &t,
            Call::new("GET", "/api/whatsapp/invitations/gala?status=skipped"),
        )
        .await
        .expect(200);
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "{page}");
    // The bulk's invitation replaced the first as Ana's latest: only it is retried.
    let first = sent["invitation_id"].as_str().unwrap();
    s.exchange(
        &t,
        Call::new("POST", format!("/api/whatsapp/retry/{first}")),
    )
    .await
    .error(409, "conflict");
    let latest = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["invitation_id"].as_str().unwrap())
        .find(|id| *id != first)
        .unwrap();
    let retried = s
        .exchange(
            &t,
            Call::new("POST", format!("/api/whatsapp/retry/{latest}")),
        )
        .await
        .expect(202);
    assert_eq!(retried["attempt"], 2);

    let lifted = s.exchange(&t, Call::new("DELETE", path)).await.expect(200);
    assert_eq!(lifted["opted_out"], false);
    for bad in [
        "/api/whatsapp/opt-outs/12",
        "/api/whatsapp/opt-outs/%2B0123456789",
    ] {
        s.exchange(&t, Call::new("GET", bad)).await.invalid("phone");
    }
    s.exchange(&t, Call::new("GET", path).organizer(""))
        .await
        .error(401, "unauthorized");

    // A guest's STOP, posted and signed as Twilio does.
    let stop = [
        ("MessageSid", "SM00000000000000000000000000000002"),
        ("AccountSid", twilio_sim::DEFAULT_ACCOUNT_SID),
        ("From", "whatsapp:+5511999990001"),
        ("To", "whatsapp:+14155238886"),
        ("Body", "STOP"),
        ("SmsStatus", "received"),
    ];
    let twiml = s.post_signed(&t, "", &stop).await.expect(200);
    assert_eq!(twiml, shared::adapters::twilio::EMPTY_TWIML);
    let webhook = webhook_path("");
    s.exchange(&t, Call::new("POST", &webhook).form(&stop))
        .await
        .expect(403);
    let guests_own = s
        .exchange(
            &t,
            Call::new("GET", "/api/whatsapp/opt-outs/+5511999990001"),
        )
        .await
        .expect(200);
    assert_eq!(guests_own["source"], "inbound");
    assert_eq!(guests_own["keyword"], "STOP");
    s.exchange(
        &t,
        Call::new("DELETE", "/api/whatsapp/opt-outs/+5511999990001"),
    )
    .await
    .error(409, "conflict");
    s.exchange(
        &t,
        Call::new("DELETE", "/api/whatsapp/opt-outs/%2B5511999990001"),
    )
    .await
    .error(409, "conflict");
    let bad_from = [("From", "someone"), ("Body", "STOP")];
    s.post_signed(&t, "", &bad_from).await.invalid("From");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsvps_and_answers_answer_as_documented() {
    let s = Spec::load();
    let t = TestStack::start().await;
    let mut event = sample_event();
    event["confirmations"] = json!({"yes": "See you, {guest_first_name}!"});
    let saved = s
        .exchange(
            &t,
            Call::new("PUT", "/api/whatsapp/events/gala").json(event.clone()),
        )
        .await
        .expect(201);
    assert_eq!(
        saved["confirmations"]["yes"],
        "See you, {guest_first_name}!"
    );
    event["confirmations"] = json!({"no": "{ nope"});
    s.exchange(
        &t,
        Call::new("PUT", "/api/whatsapp/events/gala").json(event),
    )
    .await
    .invalid("confirmations.no");
    s.exchange(
        &t,
        Call::new("POST", "/api/whatsapp/templates").json(json!({
            "template_id": "buttons",
            "content_sid": twilio_sim::QUICK_REPLY_CONTENT_SID,
            "content_variables": {"1": "{guest_first_name}", "3": "{rsvp_yes}", "4": "{rsvp_no}", "5": "{rsvp_maybe}"},
        })),
    )
    .await
    .expect(201);
    s.exchange(
        &t,
        Call::new("POST", "/api/whatsapp/guests/gala")
            .json(json!({"guests": [guest("bo", "Bo", "+5511999990002")]})),
    )
    .await
    .expect(200);
    s.exchange(
        &t,
        Call::new("POST", "/api/whatsapp/send-invitation").json(json!({
            "event_id": "gala",
            "guest": guest("ana", "Ana Lima", "+5511999990001"),
            "template_id": "buttons",
        })),
    )
    .await
    .expect(202);
    let sent = loop {
        if let Some(m) = t.sim_messages().pop() {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let variables: Value = serde_json::from_str(&sent.params["ContentVariables"]).unwrap();

    // The guest taps Yes: a signed incoming message with the button's payload.
    let tap = [
        ("MessageSid", "SM00000000000000000000000000000003"),
        ("AccountSid", twilio_sim::DEFAULT_ACCOUNT_SID),
        ("From", "whatsapp:+5511999990001"),
        ("To", "whatsapp:+14155238886"),
        ("Body", "Yes"),
        ("ButtonText", "Yes"),
        ("ButtonPayload", variables["3"].as_str().unwrap()),
        ("OriginalRepliedMessageSid", sent.sid.as_str()),
        ("MessageType", "button"),
    ];
    let twiml = s.post_signed(&t, "", &tap).await.expect(200);
    assert_eq!(
        twiml,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>See you, Ana!</Message></Response>"
    );
    let answered = s
        .exchange(&t, Call::new("GET", "/api/whatsapp/rsvps/gala/ana"))
        .await
        .expect(200);
    assert_eq!(answered["rsvp"]["via"], "button", "{answered}");
    // The same token opens Ana's RSVP page.
    let token = variables["3"]
        .as_str()
        .unwrap()
        .trim_start_matches("rsvp.yes.");
    let html = s
        .exchange(&t, Call::new("GET", format!("/r/{token}")))
        .await
        .expect(200);
    assert!(html.to_string().contains("Spring Gala"), "{html}");
    s.exchange(
        &t,
        Call::new("POST", format!("/r/{token}")).form(&[("answer", "no")]),
    )
    .await
    .expect(200);
    s.exchange(
        &t,
        Call::new("POST", format!("/r/{token}")).form(&[("answer", "never")]),
    )
    .await
    .expect(400);
    s.exchange(&t, Call::new("GET", "/r/nothing"))
        .await
        .expect(404);
    let reminded = s
        .exchange(&t, Call::new("POST", "/api/whatsapp/remind/gala"))
        .await
        .expect(202);
    assert_eq!(reminded["already"], false);
    let mut planned = sample_event();
    planned["rsvp_deadline"] = json!("2027-04-25T23:59:00-03:00");
    planned["reminders"] = json!([{"days_before": 3, "at": "10:00"}]);
    let saved = s
        .exchange(
            &t,
            Call::new("PUT", "/api/whatsapp/events/gala").json(planned.clone()),
        )
        .await
        .expect(200);
    assert_eq!(
        saved["reminders"],
        json!([{"days_before": 3, "at": "10:00"}])
    );
    planned["reminders"] = json!([{"days_before": 3, "at": "10h"}]);
    s.exchange(
        &t,
        Call::new("PUT", "/api/whatsapp/events/gala").json(planned),
    )
    .await
    .invalid("reminders[0].at");

    let recorded = s
        .exchange(
            &t,
            Call::new("PUT", "/api/whatsapp/rsvps/gala/bo").json(json!({"answer": "maybe"})),
        )
        .await
        .expect(200);
    assert_eq!(recorded["recorded"], true);
    let page = s
        .exchange(&t, Call::new("GET", "/api/whatsapp/rsvps/gala?limit=1"))
        .await
        .expect(200);
    assert_eq!(page["headcount"]["no"], 1, "{page}");
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = s
        .exchange(
            &t,
            Call::new(
                "GET",
                format!("/api/whatsapp/rsvps/gala?limit=1&cursor={cursor}"),
            ),
        )
        .await
        .expect(200);
    assert_eq!(rest["items"][0]["guest_id"], "bo");
    let maybes = s
        .exchange(
            &t,
            Call::new("GET", "/api/whatsapp/rsvps/gala?answer=maybe"),
        )
        .await
        .expect(200);
    assert_eq!(maybes["items"].as_array().unwrap().len(), 1);
    let listed = s
        .exchange(&t, Call::new("GET", "/api/whatsapp/guests/gala"))
        .await
        .expect(200);
    assert_eq!(listed["items"][1]["rsvp"]["answer"], "maybe", "{listed}");

    // A typed message that is no answer, kept.
    let question = [
        ("MessageSid", "SM00000000000000000000000000000004"),
        ("From", "whatsapp:+5511999990001"),
        ("To", "whatsapp:+14155238886"),
        ("Body", "What should I wear?"),
    ];
    s.post_signed(&t, "", &question).await.expect(200);
    let kept = s
        .exchange(&t, Call::new("GET", "/api/whatsapp/replies/gala"))
        .await
        .expect(200);
    assert_eq!(kept["items"][0]["text"], "What should I wear?");

    s.exchange(
        &t,
        Call::new("PUT", "/api/whatsapp/rsvps/gala/bo").json(json!({"answer": "perhaps"})),
    )
    .await
    .invalid("answer");
    s.exchange(
        &t,
        Call::new("GET", "/api/whatsapp/rsvps/gala?answer=perhaps"),
    )
    .await
    .invalid("answer");
    s.exchange(&t, Call::new("GET", "/api/whatsapp/rsvps/gala/nobody"))
        .await
        .error(404, "not_found");
    s.exchange(
        &t,
        Call::new("GET", "/api/whatsapp/replies/gala").organizer("someone-else"),
    )
    .await
    .error(404, "not_found");
}
