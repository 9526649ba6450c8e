//! Structured JSON logs, one line per event, for CloudWatch.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{Format, Json, JsonFields};
use tracing_subscriber::fmt::{MakeWriter, SubscriberBuilder};

/// Initialises logging once per process; `RUST_LOG` filters (default info).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // try_init: tests and the local stack may call this more than once.
    let _ = json_logs(filter, std::io::stdout).try_init();
}

/// The functions' log format, written to `writer`: tests read exactly what
/// CloudWatch would get.
pub fn json_logs<W>(
    filter: EnvFilter,
    writer: W,
) -> SubscriberBuilder<JsonFields, Format<Json, ()>, EnvFilter, W>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .with_writer(writer)
}
