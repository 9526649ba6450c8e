//! Everything the functions share, in layers whose dependencies point
//! inward:
//!
//! - [`domain`]: types that parse, the status order, template rendering;
//!   imports no other layer.
//! - [`ports`]: the narrow traits the use cases need (stores, queue, messenger).
//! - [`app`]: the use cases (the send pipeline, status changes, template
//!   choice, idempotency), written against the ports.
//! - [`adapters`]: the ports on DynamoDB, SQS and Twilio, and in memory.
//! - [`edge`]: HTTP in and out, configuration, routes, telemetry, metrics.

pub mod adapters;
pub mod app;
pub mod domain;
pub mod edge;
pub mod ports;
