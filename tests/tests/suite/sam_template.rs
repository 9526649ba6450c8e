//! `template.yaml` held to the definitions the local stack and the functions
//! use (the table schema, deployment settings, routes, config and metrics in
//! `shared`) and to the workspace's binaries: what cfn-lint and `sam validate --lint`
//! cannot see inside SAM properties (test.sh's template_lint step runs those).

use e2e::template::{Template, get_att, number, reference, repo_root};
use serde_json::{Value, json};
use shared::adapters::dynamo::{TABLE, TTL_ATTRIBUTE};
use shared::domain::Status;
use shared::domain::budget::{self, DailyLimit};
use shared::edge::config::env;
use shared::edge::deployment::{ADMISSIONS_QUEUE, QUEUE, REPORTS_QUEUE};
use shared::edge::routes::{Caller, ROUTES, WEBHOOK_PATH};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

#[test]
fn the_table_has_the_keys_and_indexes_the_store_uses() {
    let t = Template::load();
    let table = &t.resource(t.table_id())["Properties"];
    assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(
        table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    assert_eq!(table["SSESpecification"]["SSEEnabled"], true);
    assert_eq!(
        table["TimeToLiveSpecification"],
        json!({"AttributeName": TTL_ATTRIBUTE, "Enabled": true})
    );

    let keys = |pk: &str, sk: &str| {
        json!([
            {"AttributeName": pk, "KeyType": "HASH"},
            {"AttributeName": sk, "KeyType": "RANGE"},
        ])
    };
    assert_eq!(
        table["KeySchema"],
        keys(TABLE.partition_key, TABLE.sort_key)
    );

    let mut expected_attributes = BTreeSet::from([TABLE.partition_key, TABLE.sort_key]);
    let mut expected_indexes = Vec::new();
    for index in TABLE.indexes {
        expected_attributes.extend([index.partition_key, index.sort_key]);
        expected_indexes.push(json!({
            "IndexName": index.name,
            "KeySchema": keys(index.partition_key, index.sort_key),
            "Projection": if index.projected.is_empty() {
                json!({"ProjectionType": "ALL"})
            } else {
                json!({"ProjectionType": "INCLUDE", "NonKeyAttributes": index.projected})
            },
        }));
    }
    let definitions = table["AttributeDefinitions"].as_array().unwrap();
    let defined: BTreeSet<&str> = definitions
        .iter()
        .map(|d| {
            assert_eq!(d["AttributeType"], "S", "{d}");
            d["AttributeName"].as_str().unwrap()
        })
        .collect();
    assert_eq!(defined.len(), definitions.len(), "attributes defined once");
    assert_eq!(defined, expected_attributes);

    let mut indexes = table["GlobalSecondaryIndexes"].as_array().unwrap().clone();
    indexes.sort_by_key(|i| i["IndexName"].to_string());
    expected_indexes.sort_by_key(|i| i["IndexName"].to_string());
    assert_eq!(Value::Array(indexes), Value::Array(expected_indexes));
    assert!(table.get("LocalSecondaryIndexes").is_none());
}

#[test]
fn every_route_is_an_http_api_event_of_its_function() {
    let t = Template::load();
    let apis = t.of_type("AWS::Serverless::HttpApi");
    assert_eq!(apis.len(), 1, "one HTTP API");
    let api_id = apis[0].0;

    let mut in_template = BTreeSet::new();
    for f in t.functions() {
        for (name, event) in f.events("HttpApi") {
            assert_eq!(
                event["ApiId"],
                reference(api_id),
                "{}.{name} is on the HTTP API",
                f.id
            );
            let method = event["Method"].as_str().unwrap().to_uppercase();
            let path = event["Path"].as_str().unwrap().to_owned();
            let caller = ROUTES
                .iter()
                .find(|r| r.method == method && r.path == path)
                .map(|r| r.caller);
            if caller == Some(Caller::Guest) {
                assert_eq!(
                    event.get("Auth"),
                    Some(&json!({"Authorizer": "NONE"})),
                    "{}.{name} is a guest's: no organizer login",
                    f.id
                );
            } else {
                assert!(
                    event.get("Auth").is_none(),
                    "{}.{name} keeps the default JWT authorizer",
                    f.id
                );
            }
            assert!(
                in_template.insert((method, path, f.binary().to_owned())),
                "{}.{name} is a duplicate route",
                f.id
            );
        }
    }
    let expected: BTreeSet<_> = ROUTES
        .iter()
        .filter(|r| r.path != WEBHOOK_PATH)
        .map(|r| {
            (
                r.method.to_owned(),
                r.path.to_owned(),
                r.function.to_owned(),
            )
        })
        .collect();
    assert_eq!(
        in_template, expected,
        "template.yaml's HTTP API routes (method, path, function) are shared::edge::routes::ROUTES"
    );
}

#[test]
fn the_api_requires_a_jwt_from_the_stack_pool_or_the_given_issuer() {
    let t = Template::load();
    let (_, api) = t.of_type("AWS::Serverless::HttpApi")[0];
    let auth = &api["Properties"]["Auth"];
    let default = auth["DefaultAuthorizer"]
        .as_str()
        .expect("a default authorizer");
    let jwt = &auth["Authorizers"][default]["JwtConfiguration"];
    assert_eq!(
        auth["Authorizers"][default]["IdentitySource"],
        "$request.header.Authorization"
    );
    let issuer = jwt["issuer"]["Fn::If"].as_array().expect("issuer: !If");
    assert_eq!(issuer[0], "CreateUserPool");
    assert_eq!(issuer[2], reference("JwtIssuerUrl"));
    let audience = jwt["audience"]["Fn::If"].as_array().expect("audience: !If");
    assert_eq!(audience[2], reference("JwtAudience"));
    assert_eq!(
        t.0["Conditions"]["CreateUserPool"],
        json!({"Fn::Equals": [reference("JwtIssuerUrl"), ""]})
    );
    for (id, resource) in t
        .of_type("AWS::Cognito::UserPool")
        .into_iter()
        .chain(t.of_type("AWS::Cognito::UserPoolClient"))
    {
        assert_eq!(resource["Condition"], "CreateUserPool", "{id}");
    }

    let cors = &api["Properties"]["CorsConfiguration"];
    assert_eq!(cors["AllowOrigins"], json!([reference("DashboardOrigin")]));
    let headers: Vec<&str> = cors["AllowHeaders"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for needed in ["authorization", "content-type", "idempotency-key"] {
        assert!(headers.contains(&needed), "CORS allows {needed}");
    }
    let methods: Vec<&str> = cors["AllowMethods"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for route in ROUTES.iter().filter(|r| r.path != WEBHOOK_PATH) {
        assert!(
            methods.contains(&route.method),
            "CORS allows {} ({})",
            route.method,
            route.path
        );
    }
}

#[test]
fn every_function_builds_a_binary_of_the_workspace() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(repo_root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
    let functions_dir = repo_root().join("functions");
    // Every bin of a crate under functions/ (each is one Lambda).
    let function_bins: BTreeSet<String> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| PathBuf::from(p["manifest_path"].as_str().unwrap()).starts_with(&functions_dir))
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .filter(|target| target["kind"].as_array().unwrap().contains(&json!("bin")))
        .map(|target| target["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(!function_bins.is_empty());

    let t = Template::load();
    let mut deployed = BTreeSet::new();
    for f in t.functions() {
        assert_eq!(
            f.resource["Metadata"]["BuildMethod"], "rust-cargolambda",
            "{}",
            f.id
        );
        assert!(
            function_bins.contains(f.binary()),
            "{}: Binary {} is not a [[bin]] of a crate under functions/ ({function_bins:?})",
            f.id,
            f.binary()
        );
        assert!(
            deployed.insert(f.binary().to_owned()),
            "{} deploys {} twice",
            f.id,
            f.binary()
        );
        assert_eq!(
            f.prop("Runtime"),
            Some(&json!("provided.al2023")),
            "{}",
            f.id
        );
        assert_eq!(f.prop("Architectures"), Some(&json!(["arm64"])), "{}", f.id);
        assert_eq!(f.prop("Handler"), Some(&json!("bootstrap")), "{}", f.id);
        assert_eq!(f.prop("CodeUri"), Some(&json!("./")), "{}", f.id);
    }
    assert_eq!(
        deployed, function_bins,
        "every function crate's binary is deployed"
    );
}

#[test]
fn the_sender_is_fed_by_the_queue_as_the_queue_settings_say() {
    let t = Template::load();
    let sender = t.function("sender");
    let sqs = sender.events("SQS");
    assert_eq!(sqs.len(), 1, "the sender has one SQS event source");
    let (_, source) = sqs[0];
    let queue_id = t.target(&source["Queue"]);
    assert_eq!(source["Queue"], get_att(queue_id, "Arn"));

    assert_eq!(number(&source["BatchSize"]), u64::from(QUEUE.batch_size));
    assert!(
        source["FunctionResponseTypes"]
            .as_array()
            .is_some_and(|types| types.contains(&json!("ReportBatchItemFailures"))),
        "the sender reports only its failed records"
    );

    // One parameter drives both: reserved concurrency alone would throttle
    // batches into the dead-letter queue.
    let max = &source["ScalingConfig"]["MaximumConcurrency"];
    let reserved = sender
        .prop("ReservedConcurrentExecutions")
        .expect("the sender has reserved concurrency");
    assert_eq!(
        max, reserved,
        "MaximumConcurrency and ReservedConcurrentExecutions are the same parameter"
    );
    let (concurrency_param, concurrency) = t.referenced_parameter(max);
    assert_eq!(concurrency, u64::from(QUEUE.max_concurrency));
    assert!(
        number(&t.parameter(concurrency_param)["MinValue"]) >= 2,
        "MaximumConcurrency is at least 2 in AWS"
    );
    let env = sender.env();
    assert_eq!(
        env[env::SENDER_MAX_CONCURRENCY],
        reference(concurrency_param)
    );
    let (_, rate) = t.referenced_parameter(&env[env::SEND_RATE_PER_SECOND]);
    assert_eq!(rate, u64::from(QUEUE.send_rate_per_second));

    // The daily limit: Meta's tiers, parsed as the functions parse them,
    // the same parameter wherever it is read.
    let limit_ref = &env[env::DAILY_UNIQUE_RECIPIENTS];
    let limit = t.parameter(
        limit_ref["Ref"]
            .as_str()
            .expect("!Ref DailyUniqueRecipients"),
    );
    let default: DailyLimit = limit["Default"].as_str().unwrap().parse().unwrap();
    assert_eq!(default, QUEUE.daily_unique_recipients);
    let allowed: Vec<DailyLimit> = limit["AllowedValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().parse().unwrap())
        .collect();
    let tiers: Vec<DailyLimit> = budget::TIERS
        .into_iter()
        .map(DailyLimit::Limited)
        .chain([DailyLimit::Unlimited])
        .collect();
    assert_eq!(allowed, tiers);
    for f in t.functions() {
        for name in [env::DAILY_UNIQUE_RECIPIENTS, env::SEND_RATE_PER_SECOND] {
            if let Some(value) = f.env().get(name) {
                assert_eq!(value, &env[name], "{}'s {name}", f.id);
            }
        }
    }

    let timeout = number(sender.prop("Timeout").unwrap());
    assert_eq!(timeout, u64::from(QUEUE.sender_timeout_seconds));

    let queue = &t.resource(queue_id)["Properties"];
    let visibility = number(&queue["VisibilityTimeout"]);
    assert_eq!(visibility, u64::from(QUEUE.visibility_timeout_seconds));
    assert!(
        visibility >= 6 * timeout,
        "visibility {visibility}s is at least six times the sender's {timeout}s"
    );
    let redrive = &queue["RedrivePolicy"];
    let dlq_id = t.target(&redrive["deadLetterTargetArn"]);
    assert_eq!(redrive["deadLetterTargetArn"], get_att(dlq_id, "Arn"));
    assert_eq!(t.resource(dlq_id)["Type"], "AWS::SQS::Queue");
    let receives = number(&redrive["maxReceiveCount"]);
    assert_eq!(receives, u64::from(QUEUE.max_receive_count));
    assert!(receives >= 5);
    let retention = |id: &str| number(&t.resource(id)["Properties"]["MessageRetentionPeriod"]);
    assert!(
        retention(dlq_id) > retention(queue_id),
        "dead letters outlive the messages they came from"
    );

    assert_eq!(env[env::QUEUE_URL], reference(queue_id));
    assert_eq!(env[env::DEAD_LETTER_QUEUE_URL], reference(dlq_id));
    for f in t.functions() {
        if let Some(url) = f.env().get(env::QUEUE_URL) {
            assert_eq!(
                url,
                &reference(queue_id),
                "{} sends to the send queue",
                f.id
            );
        }
    }
}

#[test]
fn reports_the_webhook_defers_are_applied_from_their_queue_as_its_settings_say() {
    let t = Template::load();
    let consumer = t.function("delivery-reports");
    let sqs = consumer.events("SQS");
    assert_eq!(sqs.len(), 1, "the consumer has one SQS event source");
    let (_, source) = sqs[0];
    let queue_id = t.target(&source["Queue"]);
    assert_eq!(
        number(&source["BatchSize"]),
        u64::from(REPORTS_QUEUE.batch_size)
    );
    assert!(
        source["FunctionResponseTypes"]
            .as_array()
            .is_some_and(|types| types.contains(&json!("ReportBatchItemFailures")))
    );
    assert_eq!(
        number(&source["ScalingConfig"]["MaximumConcurrency"]),
        u64::from(REPORTS_QUEUE.max_concurrency)
    );
    let timeout = number(consumer.prop("Timeout").unwrap());
    assert_eq!(timeout, u64::from(REPORTS_QUEUE.consumer_timeout_seconds));
    let queue = &t.resource(queue_id)["Properties"];
    let visibility = number(&queue["VisibilityTimeout"]);
    assert_eq!(
        visibility,
        u64::from(REPORTS_QUEUE.visibility_timeout_seconds)
    );
    assert!(visibility >= 6 * timeout);
    let redrive = &queue["RedrivePolicy"];
    let dlq_id = t.target(&redrive["deadLetterTargetArn"]);
    assert_eq!(
        number(&redrive["maxReceiveCount"]),
        u64::from(REPORTS_QUEUE.max_receive_count)
    );
    // The webhook defers to this queue, and an alarm watches its dead letters.
    assert_eq!(
        t.function("webhook").env()[env::REPORTS_QUEUE_URL],
        reference(queue_id)
    );
    let watched = t
        .of_type("AWS::CloudWatch::Alarm")
        .iter()
        .any(|(_, a)| a["Properties"]["Dimensions"][0]["Value"] == get_att(dlq_id, "QueueName"));
    assert!(watched, "an alarm watches the reports dead-letter queue");
}

#[test]
fn large_sends_are_admitted_from_their_queue_as_its_settings_say() {
    let t = Template::load();
    let admitter = t.function("admit");
    let sqs = admitter.events("SQS");
    assert_eq!(sqs.len(), 1, "the consumer has one SQS event source");
    let (_, source) = sqs[0];
    let queue_id = t.target(&source["Queue"]);
    assert_eq!(
        number(&source["BatchSize"]),
        u64::from(ADMISSIONS_QUEUE.batch_size)
    );
    assert!(
        source["FunctionResponseTypes"]
            .as_array()
            .is_some_and(|types| types.contains(&json!("ReportBatchItemFailures")))
    );
    assert_eq!(
        number(&source["ScalingConfig"]["MaximumConcurrency"]),
        u64::from(ADMISSIONS_QUEUE.max_concurrency)
    );
    let timeout = number(admitter.prop("Timeout").unwrap());
    assert_eq!(
        timeout,
        u64::from(ADMISSIONS_QUEUE.consumer_timeout_seconds)
    );
    assert_eq!(
        number(&admitter.env()[env::ADMIT_GUESTS_PER_SECOND]),
        u64::from(ADMISSIONS_QUEUE.guests_per_second)
    );
    let queue = &t.resource(queue_id)["Properties"];
    let visibility = number(&queue["VisibilityTimeout"]);
    assert_eq!(
        visibility,
        u64::from(ADMISSIONS_QUEUE.visibility_timeout_seconds)
    );
    assert!(visibility >= 6 * timeout);
    let redrive = &queue["RedrivePolicy"];
    let dlq_id = t.target(&redrive["deadLetterTargetArn"]);
    assert_eq!(
        number(&redrive["maxReceiveCount"]),
        u64::from(ADMISSIONS_QUEUE.max_receive_count)
    );
    // Send-bulk puts chunks there, reconciliation puts undone ones back,
    // and an alarm watches its dead letters.
    for f in ["send-bulk", "reconcile"] {
        assert_eq!(
            t.function(f).env()[env::ADMISSIONS_QUEUE_URL],
            reference(queue_id),
            "{f}"
        );
    }
    let watched = t
        .of_type("AWS::CloudWatch::Alarm")
        .iter()
        .any(|(_, a)| a["Properties"]["Dimensions"][0]["Value"] == get_att(dlq_id, "QueueName"));
    assert!(watched, "an alarm watches the admissions dead-letter queue");
}

#[test]
fn the_webhook_is_a_public_function_url_the_sender_calls_back() {
    let t = Template::load();
    let function = ROUTES
        .iter()
        .find(|r| r.path == WEBHOOK_PATH)
        .unwrap()
        .function;
    let webhook = t.function(function);
    assert_eq!(
        webhook.resource["Properties"]["FunctionUrlConfig"]["AuthType"], "NONE",
        "Twilio's signature is the webhook's auth"
    );
    assert!(webhook.events("HttpApi").is_empty());
    // SAM names the URL resource <function>Url; the webhook validates the
    // signature against the URL it is called on, or the public URL in
    // front of it, so the sender gives Twilio the one Twilio should call.
    let public = reference("WebhookPublicUrl");
    assert_eq!(
        t.function("sender").env()[env::WEBHOOK_URL],
        json!({"Fn::If": ["HasWebhookPublicUrl", public,
                          get_att(&format!("{}Url", webhook.id), "FunctionUrl")]})
    );
    assert_eq!(webhook.env()[env::WEBHOOK_PUBLIC_URL], public);
    assert_eq!(
        t.0["Conditions"]["HasWebhookPublicUrl"],
        json!({"Fn::Not": [{"Fn::Equals": [public, ""]}]})
    );
    assert_eq!(
        t.0["Outputs"]["WebhookUrl"]["Value"],
        get_att(&format!("{}Url", webhook.id), "FunctionUrl")
    );
}

#[test]
fn each_function_gets_the_environment_it_reads() {
    let t = Template::load();
    let all = [
        env::TABLE_NAME,
        env::QUEUE_URL,
        env::DEAD_LETTER_QUEUE_URL,
        env::TWILIO_SECRET_ID,
        env::TWILIO_API_BASE,
        env::WEBHOOK_URL,
        env::RSVP_PAGE_URL,
        env::SEND_RATE_PER_SECOND,
        env::DAILY_UNIQUE_RECIPIENTS,
        env::SENDER_MAX_CONCURRENCY,
    ];
    let expected: BTreeMap<&str, Vec<&str>> = BTreeMap::from([
        ("events", vec![env::TABLE_NAME]),
        ("send-invitation", vec![env::TABLE_NAME, env::QUEUE_URL]),
        (
            "send-bulk",
            vec![
                env::TABLE_NAME,
                env::QUEUE_URL,
                env::ADMISSIONS_QUEUE_URL,
                env::SEND_RATE_PER_SECOND,
                env::DAILY_UNIQUE_RECIPIENTS,
                env::MESSAGE_RATES,
            ],
        ),
        (
            "admit",
            vec![
                env::TABLE_NAME,
                env::QUEUE_URL,
                env::ADMIT_GUESTS_PER_SECOND,
            ],
        ),
        (
            "status",
            vec![
                env::TABLE_NAME,
                env::SEND_RATE_PER_SECOND,
                env::DAILY_UNIQUE_RECIPIENTS,
            ],
        ),
        ("retry", vec![env::TABLE_NAME, env::QUEUE_URL]),
        (
            "webhook",
            vec![
                env::TABLE_NAME,
                env::TWILIO_SECRET_ID,
                env::WEBHOOK_PUBLIC_URL,
                env::RSVP_PAGE_URL,
                env::REPORTS_QUEUE_URL,
                env::DAILY_UNIQUE_RECIPIENTS,
            ],
        ),
        (
            "delivery-reports",
            vec![env::TABLE_NAME, env::DAILY_UNIQUE_RECIPIENTS],
        ),
        ("sender", all.to_vec()),
        (
            "templates",
            vec![env::TABLE_NAME, env::TWILIO_SECRET_ID, env::TWILIO_API_BASE],
        ),
        ("opt-outs", vec![env::TABLE_NAME]),
        ("guests", vec![env::TABLE_NAME]),
        ("answers", vec![env::TABLE_NAME]),
        ("remind", vec![env::TABLE_NAME, env::QUEUE_URL]),
        (
            "profile",
            vec![
                env::TABLE_NAME,
                env::SEND_RATE_PER_SECOND,
                env::DAILY_UNIQUE_RECIPIENTS,
            ],
        ),
        ("rsvp-page", vec![env::TABLE_NAME]),
        (
            "reconcile",
            vec![
                env::TABLE_NAME,
                env::QUEUE_URL,
                env::ADMISSIONS_QUEUE_URL,
                env::TWILIO_SECRET_ID,
                env::TWILIO_API_BASE,
                env::DAILY_UNIQUE_RECIPIENTS,
                env::RSVP_PAGE_URL,
            ],
        ),
    ]);
    let table = reference(t.table_id());
    let secret = json!({"Fn::If": ["CreateTwilioSecret", reference("TwilioSecret"), reference("TwilioSecretArn")]});
    for f in t.functions() {
        let vars = f.env();
        let names: BTreeSet<&str> = vars
            .keys()
            .map(String::as_str)
            .filter(|n| *n != "RUST_LOG")
            .collect();
        let wanted: BTreeSet<&str> = expected
            .get(f.binary())
            .unwrap_or_else(|| panic!("no expected environment for {}", f.binary()))
            .iter()
            .copied()
            .collect();
        assert_eq!(names, wanted, "{}'s environment", f.id);
        assert_eq!(vars[env::TABLE_NAME], table, "{}", f.id);
        if let Some(id) = vars.get(env::TWILIO_SECRET_ID) {
            assert_eq!(id, &secret, "{}", f.id);
        }
    }
}

#[test]
fn each_function_may_do_only_what_it_does() {
    let t = Template::load();
    let logs = [
        ("logs:CreateLogStream", "own log group"),
        ("logs:PutLogEvents", "own log group"),
    ];
    let table = |actions: &[&'static str]| {
        actions
            .iter()
            .map(|a| (*a, "table"))
            .collect::<Vec<(&str, &str)>>()
    };
    // A send's requests, with an Idempotency-Key (send-bulk) or a reminder
    // time's run (remind): DeleteItem lets go of a key whose run failed.
    let send_pipeline = [
        table(&[
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        ]),
        vec![("sqs:SendMessage", "queue")],
    ]
    .concat();
    let expected: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::from([
        (
            "events",
            [
                table(&["dynamodb:GetItem", "dynamodb:PutItem"]),
                vec![("dynamodb:Query", "index")],
            ]
            .concat(),
        ),
        (
            "send-invitation",
            [
                table(&[
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:PutItem",
                    "dynamodb:BatchWriteItem",
                    "dynamodb:UpdateItem",
                ]),
                vec![("sqs:SendMessage", "queue")],
            ]
            .concat(),
        ),
        (
            "send-bulk",
            [
                send_pipeline.clone(),
                vec![("sqs:SendMessage", "admissions queue")],
            ]
            .concat(),
        ),
        (
            "admit",
            [
                table(&[
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:PutItem",
                    "dynamodb:BatchWriteItem",
                    "dynamodb:UpdateItem",
                ]),
                vec![
                    ("sqs:SendMessage", "queue"),
                    ("sqs:ReceiveMessage", "admissions queue"),
                    ("sqs:DeleteMessage", "admissions queue"),
                    ("sqs:GetQueueAttributes", "admissions queue"),
                ],
            ]
            .concat(),
        ),
        (
            "status",
            [
                table(&[
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:Query",
                ]),
                vec![("dynamodb:Query", "index")],
            ]
            .concat(),
        ),
        (
            "retry",
            [
                table(&[
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:UpdateItem",
                ]),
                vec![("dynamodb:Query", "index"), ("sqs:SendMessage", "queue")],
            ]
            .concat(),
        ),
        (
            "webhook",
            [
                table(&[
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                ]),
                vec![
                    ("dynamodb:Query", "index"),
                    ("sqs:SendMessage", "reports queue"),
                    ("secretsmanager:GetSecretValue", "twilio secret"),
                ],
            ]
            .concat(),
        ),
        (
            "delivery-reports",
            [
                table(&[
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:UpdateItem",
                ]),
                vec![
                    ("sqs:ReceiveMessage", "reports queue"),
                    ("sqs:DeleteMessage", "reports queue"),
                    ("sqs:GetQueueAttributes", "reports queue"),
                ],
            ]
            .concat(),
        ),
        (
            "templates",
            [
                table(&["dynamodb:GetItem", "dynamodb:PutItem"]),
                vec![
                    ("dynamodb:Query", "index"),
                    // Previews read Content templates from Twilio.
                    ("secretsmanager:GetSecretValue", "twilio secret"),
                ],
            ]
            .concat(),
        ),
        (
            "opt-outs",
            table(&["dynamodb:BatchGetItem", "dynamodb:UpdateItem"]),
        ),
        (
            "guests",
            [
                table(&[
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:Query",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                ]),
                vec![("dynamodb:Query", "index")],
            ]
            .concat(),
        ),
        (
            "answers",
            table(&[
                "dynamodb:GetItem",
                "dynamodb:BatchGetItem",
                "dynamodb:Query",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
            ]),
        ),
        ("remind", send_pipeline.clone()),
        ("profile", table(&["dynamodb:Query"])),
        (
            "rsvp-page",
            table(&[
                "dynamodb:GetItem",
                "dynamodb:BatchGetItem",
                "dynamodb:Query",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
            ]),
        ),
        (
            "reconcile",
            [
                table(&[
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:Query",
                    "dynamodb:PutItem",
                    "dynamodb:BatchWriteItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                ]),
                vec![
                    ("dynamodb:Query", "index"),
                    ("sqs:SendMessage", "queue"),
                    ("sqs:SendMessage", "admissions queue"),
                    ("secretsmanager:GetSecretValue", "twilio secret"),
                ],
            ]
            .concat(),
        ),
        (
            "sender",
            [
                table(&[
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:UpdateItem",
                ]),
                vec![
                    ("sqs:ReceiveMessage", "queue"),
                    ("sqs:DeleteMessage", "queue"),
                    ("sqs:ChangeMessageVisibility", "queue"),
                    ("sqs:GetQueueAttributes", "queue"),
                    ("sqs:SendMessage", "dead-letter queue"),
                    ("secretsmanager:GetSecretValue", "twilio secret"),
                ],
            ]
            .concat(),
        ),
    ]);

    for f in t.functions() {
        assert!(
            f.resource["Properties"].get("Policies").is_none(),
            "{}: permissions live in its own role",
            f.id
        );
        let role_id = t.target(f.prop("Role").expect("each function has its own role"));
        assert_eq!(f.prop("Role"), Some(&get_att(role_id, "Arn")));
        let role = &t.resource(role_id)["Properties"];
        assert!(
            role.get("ManagedPolicyArns").is_none(),
            "{role_id}: no managed policies"
        );
        for policy in role["Policies"].as_array().unwrap() {
            for statement in policy["PolicyDocument"]["Statement"].as_array().unwrap() {
                assert_eq!(statement["Effect"], "Allow");
                let actions = statement["Action"].to_string();
                assert!(
                    !actions.contains('*'),
                    "{role_id}: wildcard action in {actions}"
                );
            }
        }
        let granted = t.granted(&f);
        let wanted: BTreeSet<(String, String)> = expected[f.binary()]
            .iter()
            .chain(logs.iter())
            .map(|(a, k)| ((*a).to_owned(), (*k).to_owned()))
            .collect();
        assert_eq!(granted, wanted, "{role_id}'s permissions");

        let log_group = t.target(&f.prop("LoggingConfig").unwrap()["LogGroup"]);
        assert_eq!(
            t.resource(log_group)["Properties"]["RetentionInDays"],
            reference("LogRetentionDays"),
            "{log_group} keeps logs for LogRetentionDays"
        );
    }
}

#[test]
fn the_twilio_secret_is_created_with_a_placeholder_unless_an_arn_is_given() {
    let t = Template::load();
    let secret = t.resource("TwilioSecret");
    assert_eq!(secret["Type"], "AWS::SecretsManager::Secret");
    assert_eq!(secret["Condition"], "CreateTwilioSecret");
    assert_eq!(
        t.0["Conditions"]["CreateTwilioSecret"],
        json!({"Fn::Equals": [reference("TwilioSecretArn"), ""]})
    );
    let value: Value = serde_json::from_str(secret["Properties"]["SecretString"].as_str().unwrap())
        .expect("the placeholder is JSON");
    let keys: BTreeSet<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, BTreeSet::from(["account_sid", "auth_token", "from"]));
    // It parses as the functions read it, so cold starts succeed before it is set.
    shared::edge::config::parse_twilio_secret(&value.to_string())
        .expect("the placeholder reads as credentials");
}

#[test]
fn alarms_watch_delivery_dead_letters_and_sender_errors() {
    let t = Template::load();
    let topic = t.of_type("AWS::SNS::Topic");
    assert_eq!(topic.len(), 1, "one alarm topic");
    let topic = reference(topic[0].0);
    let alarms = t.of_type("AWS::CloudWatch::Alarm");
    for (id, alarm) in &alarms {
        assert!(
            alarm["Properties"]["AlarmActions"]
                .as_array()
                .is_some_and(|a| a.contains(&topic)),
            "{id} notifies the alarm topic"
        );
    }
    let find = |pred: &dyn Fn(&Value) -> bool, what: &str| {
        alarms
            .iter()
            .map(|(_, a)| &a["Properties"])
            .find(|p| pred(p))
            .unwrap_or_else(|| panic!("no alarm for {what}"))
    };

    // Delivery success rate over the last hour, on the metrics the functions emit.
    let namespace = shared::edge::metrics::NAMESPACE;
    let delivered = shared::edge::metrics::metric_for(Status::Delivered).unwrap();
    let failed = shared::edge::metrics::metric_for(Status::Failed).unwrap();
    assert_eq!(
        shared::edge::metrics::metric_for(Status::Undelivered),
        Some(failed)
    );
    let uses = |p: &Value, name: &str| {
        p["Metrics"].as_array().into_iter().flatten().any(|m| {
            m["MetricStat"]["Metric"] == json!({"Namespace": namespace, "MetricName": name})
                && number(&m["MetricStat"]["Period"]) == 3600
                && m["MetricStat"]["Stat"] == "Sum"
        })
    };
    let rate = find(
        &|p| uses(p, delivered) && uses(p, failed),
        "the delivery success rate",
    );
    assert_eq!(rate["ComparisonOperator"], "LessThanThreshold");
    let (_, threshold) = t.referenced_parameter(&rate["Threshold"]);
    assert_eq!(threshold, 98);

    let dlq =
        t.target(&t.resource("SendQueue")["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]);
    let dead_letters = find(
        &|p| {
            p["MetricName"] == "ApproximateNumberOfMessagesVisible"
                && p["Dimensions"][0]["Value"] == get_att(dlq, "QueueName")
        },
        "messages in the dead-letter queue",
    );
    assert_eq!(dead_letters["Namespace"], "AWS/SQS");
    assert_eq!(dead_letters["ComparisonOperator"], "GreaterThanThreshold");
    assert_eq!(number(&dead_letters["Threshold"]), 0);

    let sender_id = t.function("sender").id;
    let errors = find(
        &|p| {
            p["Namespace"] == "AWS/Lambda"
                && p["MetricName"] == "Errors"
                && p["Dimensions"][0]["Value"] == reference(sender_id)
        },
        "sender errors",
    );
    assert_eq!(errors["ComparisonOperator"], "GreaterThanThreshold");
    assert_eq!(number(&errors["Threshold"]), 0);

    // Callbacks lost at the webhook's URL (a 403 never reaches Lambda's Errors).
    let webhook_id = t.function("webhook").id;
    let url_metric = |p: &Value, name: &str| {
        p["Metrics"].as_array().into_iter().flatten().any(|m| {
            m["MetricStat"]["Metric"]["Namespace"] == "AWS/Lambda"
                && m["MetricStat"]["Metric"]["MetricName"] == name
                && m["MetricStat"]["Metric"]["Dimensions"][0]["Value"] == reference(webhook_id)
        })
    };
    let refusals = find(
        &|p| url_metric(p, "Url4xxCount") && url_metric(p, "Url5xxCount"),
        "the webhook URL's 4xx and 5xx answers",
    );
    assert_eq!(refusals["ComparisonOperator"], "GreaterThanThreshold");
    assert_eq!(number(&refusals["Threshold"]), 0);

    // Invitations reconciliation could not move on, on the metric it emits.
    let stuck = find(
        &|p| p["Namespace"] == namespace && p["MetricName"] == shared::edge::metrics::STILL_STUCK,
        "stuck invitations",
    );
    assert_eq!(stuck["ComparisonOperator"], "GreaterThanThreshold");
    assert_eq!(number(&stuck["Threshold"]), 0);
    let reconcile_id = t.function("reconcile").id;
    find(
        &|p| p["MetricName"] == "Errors" && p["Dimensions"][0]["Value"] == reference(reconcile_id),
        "reconcile errors",
    );
    // It runs on the schedule the local stack's timer keeps.
    let (_, schedule) = t.function("reconcile").events("ScheduleV2")[0];
    assert_eq!(
        schedule["ScheduleExpression"],
        format!(
            "rate({} minutes)",
            shared::edge::deployment::RECONCILE_EVERY_MINUTES
        )
    );
}

#[test]
fn outputs_give_the_urls_and_the_secret() {
    let t = Template::load();
    let outputs = t.0["Outputs"].as_object().unwrap();
    for name in [
        "ApiUrl",
        "WebhookUrl",
        "DashboardUrl",
        "TwilioSecretName",
        "TwilioSecretArn",
        "UserPoolId",
        "UserPoolClientId",
    ] {
        assert!(outputs.contains_key(name), "output {name}");
    }
    assert_eq!(outputs["UserPoolId"]["Condition"], "CreateUserPool");
    assert_eq!(outputs["UserPoolClientId"]["Condition"], "CreateUserPool");
    assert_eq!(t.of_type("AWS::CloudWatch::Dashboard").len(), 1);
}
