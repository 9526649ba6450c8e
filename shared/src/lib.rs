//! Everything the functions share: domain types, the ports handlers depend
//! on, and their adapters (DynamoDB, SQS, Twilio).

pub mod config;
pub mod dispatch;
pub mod domain;
pub mod dynamo;
pub mod http;
pub mod lifecycle;
pub mod metrics;
pub mod ports;
pub mod routes;
pub mod schema;
pub mod sqs;
pub mod telemetry;
pub mod template;
pub mod twilio;
