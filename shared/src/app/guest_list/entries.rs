//! An import's entries, each parsed on its own from JSON (`guests[i]`) or
//! CSV (a header row naming its columns), then written by [`super::import`]:
//! a bad entry comes back with its index, CSV line, field and reason, and
//! loses nothing of the others.

use super::{GuestListStore, Imported, changes_from_now, event, import};
use crate::app::AppError;
use crate::domain::guest::{GuestEntry, GuestEntryInput, MAX_PER_REQUEST, parse_nth};
use crate::domain::{EventId, FieldError};
use serde::Serialize;

/// The CSV columns, by header name.
const CSV_COLUMNS: [&str; 4] = ["guest_id", "name", "phone", "rsvp_token"];

/// One entry of an import: where it came from (CSV line, the id as
/// given), and the guest or the field at fault.
pub struct Entry {
    line: Option<u64>,
    raw_id: Option<String>,
    /// The field names' prefix in errors: `guests[3].` for JSON, none for CSV.
    prefix: String,
    parsed: Result<GuestEntry, FieldError>,
}

/// An entry the import did not write, and why.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Rejected {
    pub index: usize,
    /// The CSV line (1 is the header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_id: Option<String>,
    pub field: String,
    pub message: String,
}

/// What an import did.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ImportAnswer {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub rejected: Vec<Rejected>,
    /// A changes cursor from before the import: following it shows its guests.
    pub changes: String,
}

/// The JSON import's `guests`, each parsed on its own.
pub fn from_json(guests: Vec<serde_json::Value>) -> Vec<Entry> {
    guests
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            let (raw_id, parsed) =
                parse_nth(index, value, |g: GuestEntryInput, prefix| g.parse(prefix));
            Entry {
                line: None,
                raw_id,
                prefix: format!("guests[{index}]."),
                parsed,
            }
        })
        .collect()
}

/// CSV with a header row naming its columns (`name` and `phone`, and
/// optionally `guest_id` and `rsvp_token`), separated by commas,
/// semicolons or tabs (as the header row shows).
pub fn from_csv(bytes: &[u8]) -> Result<Vec<Entry>, AppError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| AppError::invalid("body", "CSV must be UTF-8 text"))?;
    let text = text.trim_start_matches('\u{feff}');
    let header_line = text.lines().next().unwrap_or_default();
    let delimiter = [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|d| header_line.bytes().filter(|b| b == d).count())
        .unwrap_or(b',');
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| AppError::invalid("body", format!("line 1: {e}")))?
        .clone();
    let column = |name: &str| {
        headers.iter().position(|h| {
            h.eq_ignore_ascii_case(name) || h.eq_ignore_ascii_case(&name.replace('_', " "))
        })
    };
    for required in ["name", "phone"] {
        if column(required).is_none() {
            return Err(AppError::invalid(
                "body",
                format!(
                    "line 1: the header row has no {required} column (columns: {})",
                    CSV_COLUMNS.join(", ")
                ),
            ));
        }
    }
    let [id_at, name_at, phone_at, token_at] = CSV_COLUMNS.map(column);
    let mut entries = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line());
                entries.push(Entry {
                    line,
                    raw_id: None,
                    prefix: String::new(),
                    parsed: Err(FieldError::new("line", e.to_string())),
                });
                continue;
            }
        };
        let line = record.position().map(|p| p.line());
        if record.iter().all(str::is_empty) {
            continue;
        }
        let cell = |at: Option<usize>| at.and_then(|i| record.get(i)).map(str::to_owned);
        let raw_id = cell(id_at).filter(|id| !id.is_empty());
        let input = GuestEntryInput {
            guest_id: raw_id.clone(),
            name: cell(name_at),
            phone: cell(phone_at),
            rsvp_token: cell(token_at),
        };
        entries.push(Entry {
            line,
            raw_id,
            prefix: String::new(),
            parsed: input.parse(""),
        });
    }
    Ok(entries)
}

/// Imports the entries that parsed; every other comes back in `rejected`.
pub async fn import_entries(
    store: &dyn GuestListStore,
    owner: &str,
    event_id: &EventId,
    entries: Vec<Entry>,
) -> Result<ImportAnswer, AppError> {
    if entries.is_empty() || entries.len() > MAX_PER_REQUEST {
        return Err(AppError::invalid(
            "guests",
            format!("must list 1 to {MAX_PER_REQUEST} guests"),
        ));
    }
    let changes = changes_from_now(store);
    let mut rejected = Vec::new();
    let mut good = Vec::new();
    let mut places = Vec::new();
    for (index, entry) in entries.into_iter().enumerate() {
        match entry.parsed {
            Ok(g) => {
                good.push(g);
                places.push((index, entry.line, entry.raw_id, entry.prefix));
            }
            Err(e) => rejected.push(Rejected {
                index,
                line: entry.line,
                guest_id: entry.raw_id,
                field: e.field,
                message: e.message,
            }),
        }
    }
    let answers = if good.is_empty() {
        event(store, owner, event_id).await?;
        Vec::new()
    } else {
        import(store, owner, event_id, good).await?
    };
    let (mut created, mut updated, mut unchanged) = (0, 0, 0);
    // Where an entry is, in the request's own terms: a CSV's line, a JSON
    // entry's place in `guests`.
    let named: Vec<String> = places
        .iter()
        .map(|(index, line, _, _)| match line {
            Some(line) => format!("on line {line}"),
            None => format!("in guests[{index}]"),
        })
        .collect();
    for (answer, (index, line, raw_id, prefix)) in answers.into_iter().zip(places) {
        let (field, message) = match answer {
            Imported::Created(_) => {
                created += 1;
                continue;
            }
            Imported::Updated(_) => {
                updated += 1;
                continue;
            }
            Imported::Unchanged(_) => {
                unchanged += 1;
                continue;
            }
            Imported::Rejected(e) => (e.field, e.message),
            Imported::Repeats { field, first } => (
                field.to_owned(),
                format!("this {field} is already {}", named[first]),
            ),
        };
        rejected.push(Rejected {
            index,
            line,
            guest_id: raw_id,
            field: format!("{prefix}{field}"),
            message,
        });
    }
    rejected.sort_by_key(|r| r.index);
    tracing::info!(%event_id, created, updated, unchanged, rejected = rejected.len(), "guests imported");
    Ok(ImportAnswer {
        created,
        updated,
        unchanged,
        rejected,
        changes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryStore;
    use crate::app::fixtures::{OWNER, with_event};

    fn ok_names(entries: &[Entry]) -> Vec<String> {
        entries
            .iter()
            .filter_map(|e| e.parsed.as_ref().ok().map(|g| g.name.clone()))
            .collect()
    }

    #[test]
    fn csv_columns_by_name_with_commas_semicolons_or_tabs_and_a_bom() {
        for text in [
            "\u{feff}name,phone\nAna,+55 11 99999-0001\n\nBia,+55 (11) 99999.0002\n",
            "phone;Name\n+5511999990001;Ana\n+5511999990002;Bia\n",
            "Guest ID\tname\tphone\nana\tAna\t+5511999990001\nbia\tBia\t+5511999990002\n",
        ] {
            let entries = from_csv(text.as_bytes()).unwrap();
            assert_eq!(ok_names(&entries), ["Ana", "Bia"], "{text:?}");
        }
    }

    #[test]
    fn a_csv_without_a_needed_column_or_not_utf8_names_the_body() {
        let Err(AppError::Invalid(e)) = from_csv(b"name,email\nAna,a@example.com\n") else {
            panic!("refused")
        };
        assert_eq!(e.field, "body");
        assert!(e.message.contains("no phone column"), "{e}");
        let Err(AppError::Invalid(e)) = from_csv(&[0xff, 0xfe, 0x00]) else {
            panic!("refused")
        };
        assert_eq!(e.field, "body");
    }

    #[tokio::test]
    async fn given_good_and_bad_entries_then_the_good_are_written_and_the_bad_named_by_index_and_line()
     {
        let (store, _queue, event) = with_event().await;
        let csv = "name,phone\nAna,+5511999990001\nBo,123\nAna again,+5511999990001\n";
        let entries = from_csv(csv.as_bytes()).unwrap();
        let answer = import_entries(&store, OWNER, &event.event_id, entries)
            .await
            .unwrap();
        assert_eq!(
            (answer.created, answer.updated, answer.unchanged),
            (1, 0, 0)
        );
        let bad: Vec<(usize, Option<u64>, &str)> = answer
            .rejected
            .iter()
            .map(|r| (r.index, r.line, r.field.as_str()))
            .collect();
        assert_eq!(bad, [(1, Some(3), "phone"), (2, Some(4), "phone")]);
        // A repeat is named in the file's terms: its line, not an id the
        // file never had.
        assert_eq!(
            answer.rejected[1].message,
            "this phone is already on line 2"
        );
        // JSON entries name their field under guests[i], and a repeat the
        // entry it repeats.
        let json = from_json(vec![
            serde_json::json!({"name": "Cy"}),
            serde_json::json!({"guest_id": "di", "name": "Di", "phone": "+5511999990009"}),
            serde_json::json!({"guest_id": "di", "name": "Di", "phone": "+5511999990009"}),
        ]);
        let answer = import_entries(&store, OWNER, &event.event_id, json)
            .await
            .unwrap();
        assert_eq!(answer.rejected[0].field, "guests[0].phone");
        assert_eq!(
            (
                answer.rejected[1].field.as_str(),
                answer.rejected[1].message.as_str()
            ),
            (
                "guests[2].guest_id",
                "this guest_id is already in guests[1]"
            )
        );
        let none = import_entries(&MemoryStore::new(), OWNER, &event.event_id, Vec::new()).await;
        assert!(matches!(none, Err(AppError::Invalid(e)) if e.field == "guests"));
    }
}
