//! The integration tests, one binary (the AWS SDKs link once), a module per
//! area. Each test that needs a server starts its own local stack
//! (`e2e::TestStack`) on 127.0.0.1 and stops it when dropped.

mod authorization;
mod bad_input;
mod budget;
mod bulk;
mod daily_limit;
mod error_codes;
mod faults;
mod fuzz;
mod guests;
mod iam;
mod idempotency;
mod logs;
mod message_templates;
mod one_invitation;
mod openapi;
mod opt_out;
mod partitions;
mod readme;
mod rsvp;
mod sam_template;
mod sample_events;
mod store;
mod webhook;
