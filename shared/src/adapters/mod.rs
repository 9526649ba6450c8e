//! The ports' implementations: DynamoDB (every store), SQS (the send
//! queue), Twilio (the messenger and its facts), and in memory (every
//! store and the queue, for fast tests of the use cases).

pub mod dynamo;
pub mod memory;
pub mod sqs;
pub mod twilio;
