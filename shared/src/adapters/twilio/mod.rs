//! Twilio: the Messages API client, and every Twilio fact the product
//! relies on, each in one place: error codes with their class and words,
//! the status-callback URL, the request signature, and what its webhook
//! calls say.

pub mod callback;
mod client;
pub mod codes;
pub mod signature;
mod webhook;

pub use client::{TwilioClient, TwilioCredentials};
pub use codes::TwilioCodes;
pub use webhook::{EMPTY_TWIML, TwilioWebhook};
