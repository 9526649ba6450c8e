//! Twilio: the Messages API client, and every Twilio fact the product
//! relies on, each in one place: error codes with their class and words,
//! the status-callback URL, the inbound keywords, the request signature.

pub mod callback;
mod client;
pub mod codes;
pub mod inbound;
pub mod signature;

pub use client::{TwilioClient, TwilioCredentials};
