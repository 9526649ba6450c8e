//! The outside edge: HTTP JSON in and out with the one error-to-status
//! mapping, configuration read from the environment (and the adapters built
//! from it), the deployment's settings, routes, logs and metrics.

pub mod config;
pub mod deployment;
pub mod http;
pub mod metrics;
pub mod routes;
pub mod telemetry;
