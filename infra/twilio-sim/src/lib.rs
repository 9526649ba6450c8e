//! A local stand-in for Twilio's Messages API on the WhatsApp channel.
//!
//! It answers `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` the way
//! Twilio does (form body, basic auth, Twilio's JSON and error shapes), then
//! posts signed status callbacks. After authentication, every Messages
//! request (create, list, fetch) is checked against an excerpt of Twilio's
//! published OpenAPI (`openapi/messages.json`), so what the simulator
//! accepts, Twilio's API accepts too. [`Knobs`] make it slow, rate-limited or
//! failing, and `/_sim/*` routes expose what it received:
//!
//! - `GET /_sim/messages`: every accepted create request, with its callbacks.
//! - `GET /_sim/stats`: counters of accepted and refused creates (and of
//!   those failed with 63018 past WhatsApp's daily limit, `daily_limit`).
//! - `GET /_sim/config`, `POST /_sim/config`: read or replace some knobs.
//! - `POST /_sim/reset` (`?knobs=1` also restores the starting knobs).
//! - `POST /_sim/inbound` `{"from", "body", "url", "to"?, "reply_to"?,
//!   "button"?, "payload"?}`: a guest's WhatsApp message, posted to `url`
//!   signed like Twilio's incoming-message webhook (and opening the guest's
//!   24-hour session window). With `reply_to` (a message SID) it is a reply
//!   to that message (`OriginalRepliedMessageSid`); with `button` ("Yes",
//!   "No", "Maybe") a tap on that message's quick-reply button, whose
//!   payload is the button's id with the message's `ContentVariables`
//!   ([`QUICK_REPLY_CONTENT_SID`]); `payload` posts one as given. A TwiML
//!   `<Message>` in the webhook's answer is sent back to the guest.
//! - `GET /_sim/replies`: those messages sent back, in order.

mod api;
mod callbacks;
mod knobs;
mod openapi;
mod routes;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use knobs::{
    DEFAULT_CONTENT_SIDS, EnvError, Knobs, QUICK_REPLY_BUTTONS, QUICK_REPLY_CONTENT_SID, env,
};
pub use routes::router;
pub use state::{CallbackRecord, SimMessage, SimReply, SimState, Stats};

/// Account SID used when `TWILIO_ACCOUNT_SID` is not set: a test value in
/// Twilio's form (AC and 32 hexadecimal digits), so the stack's own checks
/// and Twilio-shaped validators accept it.
pub const DEFAULT_ACCOUNT_SID: &str = "ACdeadbeefdeadbeefdeadbeefdeadbeef";
/// Auth token used when `TWILIO_AUTH_TOKEN` is not set (Twilio's form: 32 hexadecimal digits).
pub const DEFAULT_AUTH_TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// The credentials the simulator accepts (and signs callbacks with), and its knobs.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub account_sid: String,
    pub auth_token: String,
    pub knobs: Knobs,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            account_sid: DEFAULT_ACCOUNT_SID.to_string(),
            auth_token: DEFAULT_AUTH_TOKEN.to_string(),
            knobs: Knobs::default(),
        }
    }
}

impl SimConfig {
    /// `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN` and the `TWILIO_SIM_*` knobs, with defaults.
    pub fn from_env() -> Result<Self, EnvError> {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
        Ok(Self {
            account_sid: var("TWILIO_ACCOUNT_SID", DEFAULT_ACCOUNT_SID),
            auth_token: var("TWILIO_AUTH_TOKEN", DEFAULT_AUTH_TOKEN),
            knobs: Knobs::from_env()?,
        })
    }
}

/// A simulator serving in a background task; stops when dropped.
pub struct SimHandle {
    addr: SocketAddr,
    state: Arc<SimState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What to use as Twilio's API base, e.g. `http://127.0.0.1:3001`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The simulator's state, to read what it received or change its knobs in-process.
    pub fn state(&self) -> &SimState {
        &self.state
    }

    /// Stops accepting connections and waits for requests in flight to finish.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            // The server may already be gone, which is what we want anyway.
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Serves the simulator on `listener` in a background task.
pub async fn spawn(listener: TcpListener, config: SimConfig) -> std::io::Result<SimHandle> {
    let addr = listener.local_addr()?;
    if !openapi::valid_account_sid(&config.account_sid) {
        tracing::warn!(
            account_sid = %config.account_sid,
            "not an account SID of Twilio's form (AC and 32 hexadecimal digits): \
             every Messages request will be answered 404, as Twilio would"
        );
    }
    let state = Arc::new(SimState::new(config)?);
    let app = router(Arc::clone(&state));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                // A dropped sender also means stop.
                let _ = stopped.await;
            })
            .await
    });
    Ok(SimHandle {
        addr,
        state,
        stop: Some(stop),
        task: Some(task),
    })
}
