//! The whole stack on 127.0.0.1 without AWS: the AWS emulators, the
//! resources created from the same definitions as `template.yaml`, the HTTP
//! routes served by the functions' own handlers, and an SQS poller that
//! feeds the sender the way Lambda's event source mapping does.

pub mod api;
pub mod emulators;
pub mod poller;
pub mod resources;
mod stack;

pub use stack::{
    AwsEndpoints, BOOTSTRAP_PRINCIPAL, DEV_ORGANIZER, GivenEndpoints, LocalStack, ORGANIZER_HEADER,
    ResourceNames, StackError, StackOptions, TwilioSetup, sdk_config,
};
