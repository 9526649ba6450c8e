//! The local stack's AWS resources, created when missing from the same
//! definitions `template.yaml` is held to: the table (the DynamoDB
//! adapter's [`TABLE`]), the send queue and its dead-letter queue
//! ([`QUEUE`](shared::edge::deployment::QUEUE) settings), the reports queue
//! and its dead-letter queue ([`REPORTS_QUEUE`]), the admissions queue and
//! its dead-letter queue ([`ADMISSIONS_QUEUE`]), and the Twilio secret.

use crate::stack::{StackError, StackOptions, TwilioSetup};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use shared::adapters::dynamo::{TABLE, TTL_ATTRIBUTE};
use shared::edge::config::twilio_secret_json;
use shared::edge::deployment::{ADMISSIONS_QUEUE, REPORTS_QUEUE};

fn describe<E: std::error::Error + 'static>(e: E) -> String {
    aws_sdk_sqs::error::DisplayErrorContext(e).to_string()
}

fn bootstrap(what: &'static str) -> impl Fn(String) -> StackError {
    move |reason| StackError::Bootstrap { what, reason }
}

/// Creates the table as [`TABLE`] defines it (on-demand, every index
/// projecting all attributes), and turns on its TTL.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), StackError> {
    let err = bootstrap("table");
    let key_schema = |pk: &str, sk: &str| -> Result<Vec<KeySchemaElement>, StackError> {
        [(pk, KeyType::Hash), (sk, KeyType::Range)]
            .into_iter()
            .map(|(attribute, kind)| {
                KeySchemaElement::builder()
                    .attribute_name(attribute)
                    .key_type(kind)
                    .build()
                    .map_err(|e| err(describe(e)))
            })
            .collect()
    };
    let mut attributes = vec![TABLE.partition_key, TABLE.sort_key];
    let mut indexes = Vec::new();
    for index in TABLE.indexes {
        attributes.extend([index.partition_key, index.sort_key]);
        indexes.push(
            GlobalSecondaryIndex::builder()
                .index_name(index.name)
                .set_key_schema(Some(key_schema(index.partition_key, index.sort_key)?))
                .projection(if index.projected.is_empty() {
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build()
                } else {
                    Projection::builder()
                        .projection_type(ProjectionType::Include)
                        .set_non_key_attributes(Some(
                            index.projected.iter().map(|a| (*a).to_owned()).collect(),
                        ))
                        .build()
                })
                .build()
                .map_err(|e| err(describe(e)))?,
        );
    }
    let definitions = attributes
        .into_iter()
        .map(|a| {
            AttributeDefinition::builder()
                .attribute_name(a)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| err(describe(e)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let created = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(TABLE.partition_key, TABLE.sort_key)?))
        .set_attribute_definitions(Some(definitions))
        .set_global_secondary_indexes(Some(indexes))
        .send()
        .await;
    if let Err(e) = created {
        let service = e.into_service_error();
        if !service.is_resource_in_use_exception() {
            return Err(err(describe(service)));
        }
    }
    // AWS creates tables asynchronously; the emulators answer ACTIVE at once.
    for _ in 0..120 {
        let described = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| err(describe(e)))?;
        if described
            .table
            .and_then(|t| t.table_status)
            .is_some_and(|s| s == aws_sdk_dynamodb::types::TableStatus::Active)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    // AWS refuses to enable a TTL that is already on (a table made earlier).
    let ttl_on = client
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .map_err(|e| err(describe(e)))?
        .time_to_live_description
        .and_then(|d| d.time_to_live_status)
        .is_some_and(|s| s == aws_sdk_dynamodb::types::TimeToLiveStatus::Enabled);
    if ttl_on {
        return Ok(());
    }
    let ttl = TimeToLiveSpecification::builder()
        .attribute_name(TTL_ATTRIBUTE)
        .enabled(true)
        .build()
        .map_err(|e| err(describe(e)))?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(ttl)
        .send()
        .await
        .map_err(|e| err(describe(e)))?;
    Ok(())
}

/// The send queue and its dead-letter queue: their URLs.
pub async fn create_queues(
    sqs: &aws_sdk_sqs::Client,
    options: &StackOptions,
) -> Result<(String, String), StackError> {
    let names = &options.names;
    create_queue_pair(
        sqs,
        &names.queue,
        &names.dead_letter_queue,
        options.visibility_timeout_seconds,
        options.max_receive_count,
    )
    .await
}

/// The reports queue and its dead-letter queue ([`REPORTS_QUEUE`]): their URLs.
pub async fn create_reports_queues(
    sqs: &aws_sdk_sqs::Client,
    options: &StackOptions,
) -> Result<(String, String), StackError> {
    let names = &options.names;
    create_queue_pair(
        sqs,
        &names.reports_queue,
        &names.reports_dead_letter_queue,
        REPORTS_QUEUE.visibility_timeout_seconds,
        REPORTS_QUEUE.max_receive_count,
    )
    .await
}

/// The admissions queue and its dead-letter queue ([`ADMISSIONS_QUEUE`]): their URLs.
pub async fn create_admissions_queues(
    sqs: &aws_sdk_sqs::Client,
    options: &StackOptions,
) -> Result<(String, String), StackError> {
    let names = &options.names;
    create_queue_pair(
        sqs,
        &names.admissions_queue,
        &names.admissions_dead_letter_queue,
        ADMISSIONS_QUEUE.visibility_timeout_seconds,
        ADMISSIONS_QUEUE.max_receive_count,
    )
    .await
}

async fn create_queue_pair(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    dead_letter_name: &str,
    visibility_timeout_seconds: u32,
    max_receive_count: u32,
) -> Result<(String, String), StackError> {
    let err = bootstrap("queues");
    let dlq = sqs
        .create_queue()
        .queue_name(dead_letter_name)
        .send()
        .await
        .map_err(|e| err(describe(e)))?;
    let dlq_url = dlq
        .queue_url
        .ok_or_else(|| err("no dead-letter queue URL".into()))?;
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| err(describe(e)))?;
    let dlq_arn = attrs
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| err("no dead-letter queue ARN".into()))?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": max_receive_count.to_string(),
    });
    let queue = sqs
        .create_queue()
        .queue_name(name)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility_timeout_seconds.to_string(),
        )
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .map_err(|e| err(describe(e)))?;
    let url = queue.queue_url.ok_or_else(|| err("no queue URL".into()))?;
    Ok((url, dlq_url))
}

pub async fn seed_secret(
    secrets: &aws_sdk_secretsmanager::Client,
    name: &str,
    twilio: &TwilioSetup,
) -> Result<(), StackError> {
    let err = bootstrap("Twilio secret");
    let value = twilio_secret_json(&twilio.account_sid, &twilio.auth_token, &twilio.from);
    let created = secrets
        .create_secret()
        .name(name)
        .secret_string(&value)
        .send()
        .await;
    if let Err(e) = created {
        let service = e.into_service_error();
        if !service.is_resource_exists_exception() {
            return Err(err(describe(service)));
        }
        secrets
            .put_secret_value()
            .secret_id(name)
            .secret_string(&value)
            .send()
            .await
            .map_err(|e| err(describe(e)))?;
    }
    Ok(())
}
