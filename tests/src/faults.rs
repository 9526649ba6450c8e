//! The fault layer: an HTTP proxy in front of an AWS emulator that answers
//! the way AWS does when it is less kind than the emulators.
//!
//! - DynamoDB cancels a share of `TransactWriteItems` with
//!   `TransactionConflict` (before any work, as DynamoDB does), throttles a
//!   share of every request, and leaves a share of each `BatchWriteItem`'s
//!   items unprocessed (writing only the rest).
//! - SQS fails a share of each `SendMessageBatch`'s entries (sending only the
//!   rest).
//! - Both lose the answer to a share of writes after doing them (the caller
//!   sees a 500). A repeated `TransactWriteItems` with the same
//!   `ClientRequestToken` is answered without running again, as DynamoDB
//!   does for ten minutes (the emulator does not).
//! - IAM: each request is signed with the caller's access key, which the
//!   local stack sets to the function's binary name; a function's request for
//!   an action its role in template.yaml does not grant is denied with
//!   `AccessDeniedException`, as AWS would.
//!
//! - Indexes can lag (`Report::set_index_lag`): an index query leaves out
//!   items written less than a random delay ago.
//!
//! It records what passed through ([`Report`]): requests by action, the
//! faults it injected, the actions each function performed, denials, and
//! the most writes any one DynamoDB item took in one second, and, when
//! asked, write units by partition ([`crate::partitions`]).
//!
//! Faults hit only the functions' requests; the stack's own setup and the
//! tests' direct reads go through untouched.

use crate::partitions;
use crate::template::Template;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use serde_json::{Value, json};
use shared::edge::deployment::names;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Shares (0.0 to 1.0) of requests or entries that fail.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Faults {
    /// `TransactWriteItems` cancelled with `TransactionConflict`.
    pub transaction_conflicts: f64,
    /// DynamoDB requests answered `ProvisionedThroughputExceededException`.
    pub throttling: f64,
    /// Items of each `BatchWriteItem` left unprocessed.
    pub unprocessed_items: f64,
    /// Entries of each SQS `SendMessageBatch` that fail.
    pub failed_batch_entries: f64,
    /// Writes (DynamoDB and SQS) done, whose answer is lost: the caller
    /// sees a 500 and tries again.
    pub lost_answers: f64,
}

impl Faults {
    /// No faults: the proxy only checks IAM and records.
    pub fn none() -> Self {
        Self::default()
    }

    /// A hard day in production.
    pub fn harsh() -> Self {
        Self {
            transaction_conflicts: 0.25,
            throttling: 0.05,
            unprocessed_items: 0.3,
            failed_batch_entries: 0.3,
            lost_answers: 0.02,
        }
    }
}

/// What passed through the proxies of one stack.
#[derive(Debug, Default)]
pub struct Report(Mutex<ReportState>);

/// An outage of one kind of write, switched on and off by a test: the
/// functions' `action` requests on items whose key starts with `item_prefix`
/// answer 500 (after the SDK's retries, the function sees an error).
#[derive(Debug, Clone)]
pub struct Outage {
    pub action: &'static str,
    pub item_prefix: String,
}

#[derive(Debug, Default)]
struct ReportState {
    outage: Option<Outage>,
    /// While set, every DynamoDB request of a function (of the one named,
    /// if one is) waits its turn and then this long (a table throttled,
    /// its requests retried).
    slow_dynamodb: Option<(std::time::Duration, Option<String>)>,
    requests: BTreeMap<String, u64>,
    requests_by_function: BTreeMap<String, u64>,
    injected: BTreeMap<&'static str, u64>,
    performed: BTreeMap<String, BTreeSet<(String, String)>>,
    denied: Vec<String>,
    writes: HashMap<(String, u64), u32>,
    hottest: Option<(String, u32)>,
    /// Set while write units are counted by partition (each write then
    /// reads its items back from the emulator).
    ledger: Option<partitions::Ledger>,
    /// While set, an index read sees an item only this long (at random,
    /// up to it) after its last write, as a global secondary index lags.
    index_lag: Option<std::time::Duration>,
    /// When each item written becomes visible to index reads (`pk|sk`).
    visible_in_indexes: HashMap<String, std::time::Instant>,
}

/// A snapshot of a [`Report`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReportSummary {
    /// The functions' requests by `service:Action`, every HTTP attempt
    /// (retries and faulted ones included).
    pub requests: BTreeMap<String, u64>,
    /// The same by function: `binary service:Action`.
    pub requests_by_function: BTreeMap<String, u64>,
    /// Faults injected, by kind.
    pub injected: BTreeMap<&'static str, u64>,
    /// (action, resource kind) each function performed, by binary name.
    pub performed: BTreeMap<String, BTreeSet<(String, String)>>,
    /// Requests denied for lack of a grant: "function: action on kind".
    pub denied: Vec<String>,
    /// The DynamoDB item written most often in one second, and how often.
    pub hottest_item: Option<(String, u32)>,
}

impl ReportSummary {
    /// One function's requests to one service.
    pub fn requests_of(&self, function: &str, service: &str) -> u64 {
        self.requests_by_function
            .iter()
            .filter(|(key, _)| key.starts_with(&format!("{function} {service}:")))
            .map(|(_, n)| n)
            .sum()
    }

    /// The functions' requests to one service (`dynamodb`, `sqs`, `secretsmanager`).
    pub fn requests_to(&self, service: &str) -> u64 {
        self.requests
            .iter()
            .filter(|(action, _)| action.starts_with(&format!("{service}:")))
            .map(|(_, n)| n)
            .sum()
    }
}

impl Report {
    pub fn summary(&self) -> ReportSummary {
        let state = self.0.lock().unwrap();
        ReportSummary {
            requests: state.requests.clone(),
            requests_by_function: state.requests_by_function.clone(),
            injected: state.injected.clone(),
            performed: state.performed.clone(),
            denied: state.denied.clone(),
            hottest_item: state.hottest.clone(),
        }
    }

    /// Starts (Some) or ends (None) an outage.
    pub fn set_outage(&self, outage: Option<Outage>) {
        self.0.lock().unwrap().outage = outage;
    }

    /// Makes DynamoDB slow (Some: each function's request queued behind
    /// the others, then taking this long) or well again (None).
    pub fn set_slow_dynamodb(&self, each: Option<std::time::Duration>) {
        self.0.lock().unwrap().slow_dynamodb = each.map(|d| (d, None));
    }

    /// [`Self::set_slow_dynamodb`] for one function's requests only (the
    /// others, reconciliation's runs among them, are not held up).
    pub fn set_slow_dynamodb_of(&self, function: &str, each: Option<std::time::Duration>) {
        self.0.lock().unwrap().slow_dynamodb = each.map(|d| (d, Some(function.to_owned())));
    }

    /// Counts write units by partition from now on, forgetting what was
    /// counted (the ledger knows the items it saw written since).
    pub fn measure_partitions(&self) {
        self.0.lock().unwrap().ledger = Some(partitions::Ledger::default());
    }

    /// The `n` hottest partitions and items in transactions, per message
    /// sent, since [`Report::measure_partitions`].
    pub fn hottest_partitions(&self, n: usize, messages: usize) -> Option<partitions::Hottest> {
        let state = self.0.lock().unwrap();
        state.ledger.as_ref().map(|l| l.hottest(n, messages))
    }

    /// Makes every index lag behind the table (Some: each write reaches
    /// the indexes after a random delay up to this) or keep up (None).
    pub fn set_index_lag(&self, most: Option<std::time::Duration>) {
        self.0.lock().unwrap().index_lag = most;
    }

    fn lag_indexes(&self, written: &[String]) {
        let mut state = self.0.lock().unwrap();
        let Some(most) = state.index_lag else {
            return;
        };
        for item in written {
            let at = std::time::Instant::now() + most.mul_f64(rand::random::<f64>());
            state.visible_in_indexes.insert(item.clone(), at);
        }
    }

    /// Whether an index read may see `item` yet.
    fn visible_in_indexes(&self, item: &str) -> bool {
        let state = self.0.lock().unwrap();
        state
            .visible_in_indexes
            .get(item)
            .is_none_or(|at| *at <= std::time::Instant::now())
    }

    fn lagging_indexes(&self) -> bool {
        self.0.lock().unwrap().index_lag.is_some()
    }

    fn measuring_partitions(&self) -> bool {
        self.0.lock().unwrap().ledger.is_some()
    }

    fn ledger(&self, touched: &[partitions::Touched], after: &HashMap<String, partitions::Image>) {
        if let Some(ledger) = self.0.lock().unwrap().ledger.as_mut() {
            ledger.record(touched, after);
        }
    }

    /// How long `who`'s DynamoDB request takes now, when DynamoDB is slow for it.
    fn slow_dynamodb(&self, who: &str) -> Option<std::time::Duration> {
        match &self.0.lock().unwrap().slow_dynamodb {
            Some((each, None)) => Some(*each),
            Some((each, Some(function))) if function == who => Some(*each),
            _ => None,
        }
    }

    /// Whether a request is in the outage; its items are read only then.
    fn in_outage(&self, action: &str, items: impl FnOnce() -> Vec<String>) -> bool {
        let Some(outage) = self.0.lock().unwrap().outage.clone() else {
            return false;
        };
        outage.action == action
            && items()
                .iter()
                .any(|i| i.starts_with(outage.item_prefix.as_str()))
    }

    /// The denials so far, forgotten (a test that expects them).
    pub fn take_denied(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap().denied)
    }

    fn count_request(&self, principal: &str, action: &str) {
        let mut state = self.0.lock().unwrap();
        *state.requests.entry(action.to_owned()).or_default() += 1;
        *state
            .requests_by_function
            .entry(format!("{principal} {action}"))
            .or_default() += 1;
    }

    fn injected(&self, kind: &'static str, n: u64) {
        *self.0.lock().unwrap().injected.entry(kind).or_default() += n;
    }

    fn performed(&self, principal: &str, action: &str, kind: &str) {
        self.0
            .lock()
            .unwrap()
            .performed
            .entry(principal.to_owned())
            .or_default()
            .insert((action.to_owned(), kind.to_owned()));
    }

    fn denied(&self, what: String) {
        let denied = &mut self.0.lock().unwrap().denied;
        if !denied.contains(&what) {
            denied.push(what);
        }
    }

    fn wrote(&self, items: Vec<String>) {
        let second = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut state = self.0.lock().unwrap();
        for item in items {
            let n = {
                let n = state.writes.entry((item.clone(), second)).or_default();
                *n += 1;
                *n
            };
            if state.hottest.as_ref().is_none_or(|(_, max)| n > *max) {
                state.hottest = Some((item, n));
            }
        }
    }
}

/// Each function's grants from template.yaml, by binary name.
#[derive(Debug, Clone)]
pub struct Policy(BTreeMap<String, BTreeSet<(String, String)>>);

impl Policy {
    pub fn from_template() -> Self {
        Self(Template::load().grants())
    }

    /// A policy with one grant taken away (the tests show the check bites).
    pub fn without(mut self, function: &str, action: &str) -> Self {
        if let Some(grants) = self.0.get_mut(function) {
            grants.retain(|(a, _)| a != action);
        }
        self
    }

    /// Whether `principal` is a function (has a role to hold it to).
    fn governs(&self, principal: &str) -> bool {
        self.0.contains_key(principal)
    }

    /// None when `principal` is not a function.
    fn allows(&self, principal: &str, action: &str, kind: &str) -> Option<bool> {
        self.0
            .get(principal)
            .map(|grants| grants.contains(&(action.to_owned(), kind.to_owned())))
    }
}

struct Proxy {
    /// The one request a slow DynamoDB serves at a time.
    slow_turn: tokio::sync::Mutex<()>,
    /// Tokens of transactions that ran (DynamoDB's idempotent transactions).
    transaction_tokens: Mutex<std::collections::HashSet<String>>,
    upstream: String,
    faults: Faults,
    policy: Policy,
    report: Arc<Report>,
    http: reqwest::Client,
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    pub endpoint: String,
    task: JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 in front of `upstream` (an emulator's endpoint).
    pub async fn start(
        upstream: &str,
        faults: Faults,
        policy: Policy,
        report: Arc<Report>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let proxy = Arc::new(Proxy {
            slow_turn: tokio::sync::Mutex::new(()),
            transaction_tokens: Mutex::default(),
            upstream: upstream.trim_end_matches('/').to_owned(),
            faults,
            policy,
            report,
            http: reqwest::Client::new(),
        });
        let app = axum::Router::new().fallback(handle).with_state(proxy);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { endpoint, task }
    }
}

fn chance(share: f64) -> bool {
    share > 0.0 && rand::random::<f64>() < share
}

/// The access key in a SigV4 `Authorization` header: the caller.
fn principal(headers: &http::HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("Credential=").nth(1))
        .and_then(|v| v.split('/').next())
        .unwrap_or_default()
        .to_owned()
}

/// `service:Action` from the JSON protocol's `X-Amz-Target`
/// (`DynamoDB_20120810.PutItem`, `AmazonSQS.SendMessage`, `secretsmanager.GetSecretValue`).
fn action(headers: &http::HeaderMap) -> Option<(&'static str, String)> {
    let target = headers.get("x-amz-target")?.to_str().ok()?;
    let (prefix, operation) = target.split_once('.')?;
    let service = match prefix {
        p if p.starts_with("DynamoDB") => "dynamodb",
        "AmazonSQS" => "sqs",
        "secretsmanager" => "secretsmanager",
        _ => return None,
    };
    Some((service, operation.to_owned()))
}

fn queue_kind(url_or_name: &str) -> &'static str {
    let name = url_or_name.rsplit('/').next().unwrap_or_default();
    if name.starts_with(names::DEAD_LETTER_QUEUE) {
        "dead-letter queue"
    } else if name.starts_with(names::REPORTS_DEAD_LETTER_QUEUE) {
        "reports dead-letter queue"
    } else if name.starts_with(names::REPORTS_QUEUE) {
        "reports queue"
    } else if name.starts_with(names::ADMISSIONS_DEAD_LETTER_QUEUE) {
        "admissions dead-letter queue"
    } else if name.starts_with(names::ADMISSIONS_QUEUE) {
        "admissions queue"
    } else {
        "queue"
    }
}

/// The IAM actions a request needs, with the kind of resource each is on.
/// A transaction is authorized part by part, as DynamoDB does.
fn needs(service: &str, operation: &str, body: &Value) -> Vec<(String, String)> {
    match service {
        "dynamodb" if operation == "TransactWriteItems" => body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|part| part.as_object()?.keys().next().cloned())
            .map(|kind| {
                let action = match kind.as_str() {
                    "ConditionCheck" => "ConditionCheckItem".to_owned(),
                    other => format!("{other}Item"),
                };
                (format!("dynamodb:{action}"), "table".to_owned())
            })
            .collect(),
        "dynamodb" if operation == "TransactGetItems" => {
            vec![("dynamodb:GetItem".into(), "table".into())]
        }
        "dynamodb" => {
            let kind = if body.get("IndexName").is_some() {
                "index"
            } else {
                "table"
            };
            vec![(format!("dynamodb:{operation}"), kind.into())]
        }
        "sqs" => {
            let queue = body["QueueUrl"]
                .as_str()
                .or(body["QueueName"].as_str())
                .unwrap_or_default();
            // IAM has no batch actions for SQS: a batch needs the single one.
            let action = operation.strip_suffix("Batch").unwrap_or(operation);
            vec![(format!("sqs:{action}"), queue_kind(queue).into())]
        }
        _ => vec![(format!("{service}:{operation}"), "twilio secret".into())],
    }
}

/// The items a DynamoDB write request writes, as `pk|sk`.
fn written_items(operation: &str, body: &Value) -> Vec<String> {
    partitions::touched(operation, body)
        .into_iter()
        .filter(|t| !t.checked_only)
        .map(|t| t.item)
        .collect()
}

/// The written items' images once written, read from the emulator itself
/// (absent: deleted), for the partition ledger.
async fn images_after(
    proxy: &Proxy,
    parts: &http::request::Parts,
    table: &str,
    touched: &[partitions::Touched],
) -> HashMap<String, partitions::Image> {
    let mut images = HashMap::new();
    let mut keys: Vec<&serde_json::Map<String, Value>> = Vec::new();
    // A put gives its image, a delete leaves none: only updates are read back.
    for t in touched.iter().filter(|t| !t.checked_only && !t.deleted) {
        if let Some(image) = &t.put {
            images.insert(t.item.clone(), image.clone());
        } else if !keys.contains(&&t.key) {
            keys.push(&t.key);
        }
    }
    for chunk in keys.chunks(100) {
        let body = json!({"RequestItems": {table: {"Keys": chunk, "ConsistentRead": true}}});
        let mut request = proxy
            .http
            .post(format!("{}/", proxy.upstream))
            .body(body.to_string())
            .header("x-amz-target", "DynamoDB_20120810.BatchGetItem")
            .header("content-type", "application/x-amz-json-1.0");
        if let Some(auth) = parts.headers.get("authorization") {
            request = request.header("authorization", auth);
        }
        let Ok(answer) = request.send().await else {
            continue;
        };
        let Ok(out) = answer.json::<Value>().await else {
            continue;
        };
        for item in out["Responses"][table].as_array().into_iter().flatten() {
            if let Some(image) = item.as_object() {
                let t = partitions::touched("PutItem", &json!({"Item": image}));
                images.insert(t[0].item.clone(), image.clone());
            }
        }
    }
    images
}

fn answer(status: u16, body: Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .body(Body::from(body.to_string()))
        .expect("valid response")
}

fn dynamodb_error(kind: &str, message: &str, extra: Value) -> Response {
    let mut body = json!({
        "__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"),
        "message": message,
    });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    answer(400, body)
}

fn access_denied(principal: &str, action: &str, kind: &str) -> Response {
    let mut response = answer(
        400,
        json!({
            "__type": "com.amazon.coral.service#AccessDeniedException",
            "message": format!("User: arn:aws:sts::000000000000:assumed-role/{principal} is not authorized to perform: {action} on resource: {kind}"),
        }),
    );
    // The SQS JSON protocol names its error here too.
    response.headers_mut().insert(
        "x-amzn-query-error",
        http::HeaderValue::from_static("AccessDenied;Sender"),
    );
    response
}

/// Splits `items` at random: (kept, left out), keeping at least one.
fn split<T>(items: Vec<T>, share: f64) -> (Vec<T>, Vec<T>) {
    let (mut kept, mut left): (Vec<T>, Vec<T>) = (Vec::new(), Vec::new());
    for item in items {
        if chance(share) {
            left.push(item);
        } else {
            kept.push(item);
        }
    }
    if kept.is_empty() && !left.is_empty() {
        kept.push(left.remove(0));
    }
    (kept, left)
}

async fn handle(State(proxy): State<Arc<Proxy>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let who = principal(&parts.headers);
    let Some((service, operation)) = action(&parts.headers) else {
        return forward(&proxy, &parts, bytes.to_vec()).await;
    };
    if proxy.policy.governs(&who) {
        proxy
            .report
            .count_request(&who, &format!("{service}:{operation}"));
    }
    let mut body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);

    for (action, kind) in needs(service, &operation, &body) {
        match proxy.policy.allows(&who, &action, &kind) {
            Some(false) => {
                proxy.report.denied(format!("{who}: {action} on {kind}"));
                return access_denied(&who, &action, &kind);
            }
            Some(true) => proxy.report.performed(&who, &action, &kind),
            None => {}
        }
    }
    if !proxy.policy.governs(&who) {
        return forward(&proxy, &parts, bytes.to_vec()).await;
    }

    let faults = proxy.faults;
    if service == "dynamodb"
        && let Some(each) = proxy.report.slow_dynamodb(&who)
    {
        let _turn = proxy.slow_turn.lock().await;
        tokio::time::sleep(each).await;
        proxy.report.injected("slow_dynamodb", 1);
    }
    if service == "dynamodb"
        && proxy
            .report
            .in_outage(&format!("dynamodb:{operation}"), || {
                written_items(&operation, &body)
            })
    {
        proxy.report.injected("outage", 1);
        return answer(
            500,
            json!({"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
                   "message": "Internal server error"}),
        );
    }
    if service == "dynamodb" {
        if chance(faults.throttling) {
            proxy.report.injected("throttling", 1);
            return dynamodb_error(
                "ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded.",
                Value::Null,
            );
        }
        if operation == "TransactWriteItems" && chance(faults.transaction_conflicts) {
            proxy.report.injected("transaction_conflict", 1);
            let parts_n = body["TransactItems"].as_array().map_or(1, Vec::len);
            let mut reasons = vec![json!({"Code": "None"}); parts_n];
            reasons[rand::random_range(0..parts_n)] = json!({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"});
            return dynamodb_error(
                "TransactionCanceledException",
                "Transaction cancelled, please refer cancellation reasons for specific reasons",
                json!({"CancellationReasons": reasons}),
            );
        }
    }

    // Partial batches: send on only part, answer the rest as AWS would.
    let mut left_out: Option<(String, Vec<Value>)> = None;
    let mut failed_entries: Vec<Value> = Vec::new();
    if service == "dynamodb"
        && operation == "BatchWriteItem"
        && faults.unprocessed_items > 0.0
        && let Some((table, requests)) = body["RequestItems"]
            .as_object_mut()
            .and_then(|tables| tables.iter_mut().next())
        && let Some(all) = requests.as_array_mut().map(std::mem::take)
    {
        let (kept, left) = split(all, faults.unprocessed_items);
        *requests = Value::Array(kept);
        if !left.is_empty() {
            proxy
                .report
                .injected("unprocessed_items", left.len() as u64);
            left_out = Some((table.clone(), left));
        }
    }
    if service == "sqs"
        && operation == "SendMessageBatch"
        && faults.failed_batch_entries > 0.0
        && let Some(entries) = body["Entries"].as_array_mut()
    {
        let (kept, failed) = split(std::mem::take(entries), faults.failed_batch_entries);
        *entries = kept;
        proxy
            .report
            .injected("failed_batch_entries", failed.len() as u64);
        failed_entries = failed
            .iter()
            .map(|e| {
                json!({"Id": e["Id"], "SenderFault": false, "Code": "InternalError",
                       "Message": "We encountered an internal error. Please try again."})
            })
            .collect();
    }

    if service == "dynamodb"
        && operation == "Query"
        && body.get("IndexName").is_some()
        && proxy.report.lagging_indexes()
    {
        let response = forward(&proxy, &parts, body.to_string().into_bytes()).await;
        return hide_lagging(&proxy.report, response).await;
    }

    let token = body["ClientRequestToken"]
        .as_str()
        .filter(|_| operation == "TransactWriteItems")
        .map(str::to_owned);
    if let Some(token) = &token
        && proxy.transaction_tokens.lock().unwrap().contains(token)
    {
        proxy.report.injected("repeated_transaction_answered", 1);
        return answer(200, json!({}));
    }
    let written = if service == "dynamodb" {
        written_items(&operation, &body)
    } else {
        Vec::new()
    };
    let is_write = !written.is_empty() || operation.starts_with("SendMessage");
    let response = forward(&proxy, &parts, body.to_string().into_bytes()).await;
    if response.status() != 200 {
        return response;
    }
    proxy.report.lag_indexes(&written);
    proxy.report.wrote(written);
    if service == "dynamodb"
        && proxy.report.measuring_partitions()
        && let Some(table) = partitions::table_of(&operation, &body)
    {
        let touched = partitions::touched(&operation, &body);
        let after = images_after(&proxy, &parts, &table, &touched).await;
        proxy.report.ledger(&touched, &after);
    }
    if let Some(token) = token {
        proxy.transaction_tokens.lock().unwrap().insert(token);
    }
    if is_write && chance(faults.lost_answers) {
        proxy.report.injected("lost_answer", 1);
        return if service == "dynamodb" {
            answer(
                500,
                json!({"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
                       "message": "Internal server error"}),
            )
        } else {
            answer(
                500,
                json!({"__type": "com.amazonaws.sqs#InternalError",
                       "message": "We encountered an internal error. Please try again."}),
            )
        };
    }
    if left_out.is_none() && failed_entries.is_empty() {
        return response;
    }
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let mut out: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({}));
    if let Some((table, left)) = left_out {
        out["UnprocessedItems"] = json!({ table: left });
    }
    if !failed_entries.is_empty() {
        let mut failed = out["Failed"].as_array().cloned().unwrap_or_default();
        failed.extend(failed_entries);
        out["Failed"] = Value::Array(failed);
    }
    answer(200, out)
}

/// An index query's answer without the items the index has not caught up
/// with yet (their last write is still on its way to it).
async fn hide_lagging(report: &Report, response: Response) -> Response {
    if response.status() != 200 {
        return response;
    }
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let mut out: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({}));
    if let Some(items) = out["Items"].as_array_mut() {
        let before = items.len();
        items.retain(|item| {
            let t = partitions::touched("PutItem", &json!({ "Item": item }));
            report.visible_in_indexes(&t[0].item)
        });
        let hidden = before - items.len();
        if hidden > 0 {
            report.injected("index_lag", hidden as u64);
            out["Count"] = json!(items.len());
        }
    }
    answer(200, out)
}

async fn forward(proxy: &Proxy, parts: &http::request::Parts, body: Vec<u8>) -> Response {
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut request = proxy
        .http
        .request(parts.method.clone(), format!("{}{path}", proxy.upstream))
        .body(body);
    for (name, value) in &parts.headers {
        if name != http::header::HOST && name != http::header::CONTENT_LENGTH {
            request = request.header(name, value);
        }
    }
    let Ok(upstream) = request.send().await else {
        return answer(
            503,
            json!({"__type": "ServiceUnavailable", "message": "upstream emulator unreachable"}),
        );
    };
    let status = upstream.status();
    let mut response = Response::builder().status(status);
    for (name, value) in upstream.headers() {
        // The body may be rewritten; its checksum and length would lie.
        if name != "x-amz-crc32"
            && name != http::header::CONTENT_LENGTH
            && name != http::header::TRANSFER_ENCODING
        {
            response = response.header(name, value);
        }
    }
    let bytes = upstream.bytes().await.unwrap_or_default();
    response.body(Body::from(bytes)).expect("valid response")
}
