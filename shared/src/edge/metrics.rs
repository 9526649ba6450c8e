//! CloudWatch metrics as embedded metric format (EMF) log lines: Lambda's
//! log pipeline turns them into metrics, with no API call on the hot path.

use crate::domain::Status;
use std::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the metric lines off (the local stack: no CloudWatch reads them,
/// and they would bury its logs).
pub fn disable() {
    ENABLED.store(false, Ordering::Relaxed);
}

pub const NAMESPACE: &str = "RsvpInvitations";

/// The metric name an invitation status counts under, if it is one we track.
pub fn metric_for(status: Status) -> Option<&'static str> {
    match status {
        Status::Sent => Some("Sent"),
        Status::Delivered => Some("Delivered"),
        Status::Read => Some("Read"),
        Status::Failed | Status::Undelivered => Some("Failed"),
        _ => None,
    }
}

/// One EMF document counting `name` once; a failure also counts per error code.
pub fn emf_line(name: &str, error_code: Option<&str>, timestamp_ms: u128) -> String {
    let dimensions = if error_code.is_some() {
        serde_json::json!([[], ["ErrorCode"]])
    } else {
        serde_json::json!([[]])
    };
    let mut doc = serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms as u64,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dimensions,
                "Metrics": [{"Name": name, "Unit": "Count"}],
            }],
        },
        name: 1,
    });
    if let Some(code) = error_code {
        doc["ErrorCode"] = code.into();
    }
    doc.to_string()
}

/// Counts an invitation reaching `status` (printed to stdout, where Lambda reads EMF).
pub fn count(status: Status, error_code: Option<&str>) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    if let Some(name) = metric_for(status) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        println!("{}", emf_line(name, error_code, now.as_millis()));
    }
}

/// Metrics a reconciliation run reports, by [`crate::app::reconcile::Report`] field.
pub const RECONCILED_REQUEUED: &str = "ReconciledRequeued";
pub const RECONCILED_SETTLED: &str = "ReconciledSettled";
pub const RECONCILED_RELEASED: &str = "ReconciledReleased";
/// Invitations past their threshold that a run could not move on: the
/// stuck-invitations alarm watches it.
pub const STILL_STUCK: &str = "InvitationsStillStuck";

/// One EMF document with several counts.
pub fn emf_counts(values: &[(&str, u64)], timestamp_ms: u128) -> String {
    let metrics: Vec<_> = values
        .iter()
        .map(|(name, _)| serde_json::json!({"Name": name, "Unit": "Count"}))
        .collect();
    let mut doc = serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms as u64,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[]],
                "Metrics": metrics,
            }],
        },
    });
    for (name, value) in values {
        doc[*name] = (*value).into();
    }
    doc.to_string()
}

/// Prints several counts at once (a reconciliation run's).
pub fn counts(values: &[(&str, u64)]) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    println!("{}", emf_counts(values, now.as_millis()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_document_shape() {
        let doc: serde_json::Value =
            serde_json::from_str(&emf_line("Failed", Some("63024"), 1)).unwrap();
        assert_eq!(doc["Failed"], 1);
        assert_eq!(doc["ErrorCode"], "63024");
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"][1][0],
            "ErrorCode"
        );
    }
}
