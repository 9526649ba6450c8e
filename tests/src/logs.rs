//! The functions' log lines, captured once for the whole test binary in
//! their own JSON format, for tests that check what an on-call engineer
//! would read.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Every log line of the process, as the functions write them.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> MakeWriter<'w> for Captured {
    type Writer = Captured;
    fn make_writer(&'w self) -> Captured {
        self.clone()
    }
}

/// Installs the capture once for the test binary: the functions' crates at
/// debug (the most an on-call engineer would switch on), the harness and
/// the simulator (which stand in for Lambda and Twilio) left out.
pub fn capture() -> &'static Captured {
    static CAPTURE: OnceLock<Captured> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let captured = Captured::default();
        let filter = EnvFilter::new(
            "info,shared=debug,events=debug,send_invitation=debug,send_bulk=debug,\
             status=debug,retry=debug,sender=debug,webhook=debug,templates=debug,\
             opt_outs=debug,guests=debug,reconcile=debug,twilio_sim=off,local_stack=off,e2e=off",
        );
        shared::edge::telemetry::json_logs(filter, captured.clone())
            .try_init()
            .expect("no other test installs a global subscriber");
        captured
    })
}

impl Captured {
    /// Everything logged so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}
