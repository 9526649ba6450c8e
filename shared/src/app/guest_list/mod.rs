//! An event's guest list: import (merging by id, else by phone; entries
//! read from JSON or CSV in [`entries`]), the listing with each guest's
//! latest invitation and opt-out (shown as [`views`] say), what changed
//! since a cursor, edit and remove.

pub mod entries;
pub mod views;

use super::{AppError, event};
use crate::domain::guest::{GuestEntry, ListedGuest, Search, StatusFilter};
use crate::domain::reason::GUEST_REMOVED;
use crate::domain::{
    EventId, FieldError, Guest, GuestId, Invitation, InvitationId, SeenOptOuts, Status, now,
};
use crate::ports::{EventStore, GuestStore, InvitationStore, OptOutStore};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::collections::HashMap;

/// What the guest list reads and writes.
pub trait GuestListStore: EventStore + GuestStore + InvitationStore + OptOutStore {}
impl<T: EventStore + GuestStore + InvitationStore + OptOutStore + ?Sized> GuestListStore for T {}

/// A listing reads at most this many guests to fill one filtered page, then
/// answers what it found with a cursor to go on from.
const MAX_SCAN: usize = 2_000;

/// Pages read when the whole list is needed (the import's merge).
const FULL_READ_PAGE: usize = 1_000;

/// A guest as the list shows them: everything about one row.
#[derive(Debug, Clone)]
pub struct GuestRow {
    pub listed: ListedGuest,
    /// Their latest invitation for the event.
    pub invitation: Option<Invitation>,
    pub opt_out: SeenOptOuts,
}

impl GuestRow {
    pub fn opted_out(&self) -> bool {
        self.opt_out.effective().is_some_and(|r| r.opted_out)
    }
}

/// What an import did with one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    Created(GuestId),
    Updated(GuestId),
    Unchanged(GuestId),
    /// Not written; the field is the entry's own (`phone`, `guest_id`).
    Rejected(FieldError),
    /// Not written: the same guest (by `guest_id`) or number (`phone`) as
    /// the entry at position `first` of this import, which the caller
    /// names in its own terms (a CSV's line, a JSON entry's index).
    Repeats {
        field: &'static str,
        first: usize,
    },
}

/// Filters of a listing; none: every guest.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<StatusFilter>,
    pub opted_out: Option<bool>,
    pub search: Option<Search>,
}

impl Filter {
    /// The listing's filters as a client gives them (query parameters).
    pub fn parse(
        status: Option<&str>,
        opted_out: Option<&str>,
        search: Option<&str>,
    ) -> Result<Self, AppError> {
        let status = status
            .map(str::parse::<StatusFilter>)
            .transpose()
            .map_err(|e| AppError::invalid("status", e))?;
        let opted_out = opted_out
            .map(|v| match v {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(AppError::invalid("opted_out", "must be true or false")),
            })
            .transpose()?;
        Ok(Filter {
            status,
            opted_out,
            search: search.and_then(Search::parse),
        })
    }

    fn is_empty(&self) -> bool {
        self.status.is_none() && self.opted_out.is_none() && self.search.is_none()
    }

    fn matches(&self, row: &GuestRow) -> bool {
        self.status
            .is_none_or(|s| s.matches(row.invitation.as_ref().map(|i| i.status)))
            && self.opted_out.is_none_or(|o| o == row.opted_out())
            && self
                .search
                .as_ref()
                .is_none_or(|q| q.matches(&row.listed.guest))
    }
}

/// A page of the listing.
#[derive(Debug, Clone)]
pub struct Listing {
    pub rows: Vec<GuestRow>,
    pub next_cursor: Option<String>,
}

/// What changed since a changes cursor.
#[derive(Debug, Clone)]
pub struct Changes {
    pub rows: Vec<GuestRow>,
    pub removed: Vec<GuestId>,
    pub cursor: String,
    pub more: bool,
}

/// Of these invitations (one event's), those a newer invitation has
/// replaced as their guest's latest: sending one of them again would give
/// the guest a second message beside the newer one. An invitation whose
/// guest is not on the list (written before the list was kept) replaces
/// nothing and is replaced by nothing.
pub async fn superseded(
    store: &dyn GuestStore,
    owner: &str,
    event_id: &EventId,
    invitations: &[Invitation],
) -> Result<HashMap<InvitationId, InvitationId>, AppError> {
    let ids: Vec<GuestId> = invitations
        .iter()
        .map(|i| i.guest.guest_id.clone())
        .collect();
    let latest: HashMap<GuestId, InvitationId> = store
        .get_guests(owner, event_id, &ids)
        .await?
        .into_iter()
        .filter_map(|g| Some((g.guest.guest_id, g.invitation_id?)))
        .collect();
    Ok(invitations
        .iter()
        .filter_map(|i| {
            let newer = latest.get(&i.guest.guest_id)?;
            (*newer != i.invitation_id).then(|| (i.invitation_id.clone(), newer.clone()))
        })
        .collect())
}

/// Every guest of the event.
pub(crate) async fn everyone(
    store: &dyn GuestStore,
    owner: &str,
    event: &EventId,
) -> Result<Vec<ListedGuest>, AppError> {
    let mut all: Vec<ListedGuest> = Vec::new();
    loop {
        let after = all.last().map(|g| g.guest.guest_id.clone());
        let page = store
            .guests_page(owner, event, after.as_ref(), FULL_READ_PAGE)
            .await?;
        all.extend(page.items);
        if !page.more {
            return Ok(all);
        }
    }
}

/// The list as the import sees it: each guest by id, and whose each number is
/// (as the WhatsApp user it reaches: two forms of one number are one guest).
struct Known {
    by_id: HashMap<GuestId, Guest>,
    by_phone: HashMap<String, GuestId>,
}

impl Known {
    fn new(guests: Vec<ListedGuest>) -> Self {
        let mut known = Known {
            by_id: HashMap::new(),
            by_phone: HashMap::new(),
        };
        for g in guests {
            known.set(g.guest);
        }
        known
    }

    fn set(&mut self, guest: Guest) {
        if let Some(old) = self.by_id.get(&guest.guest_id) {
            self.by_phone.remove(&old.phone.whatsapp_identity());
        }
        self.by_phone
            .insert(guest.phone.whatsapp_identity(), guest.guest_id.clone());
        self.by_id.insert(guest.guest_id.clone(), guest);
    }

    /// The guest an entry is (given id, else the number's guest, else the
    /// number's derived id), or why it cannot be written.
    fn place(&self, entry: GuestEntry) -> Result<(Guest, Option<&Guest>), FieldError> {
        let phone_of = self.by_phone.get(&entry.phone.whatsapp_identity());
        let id = match (&entry.guest_id, phone_of) {
            (Some(id), Some(owner)) if id != owner => {
                return Err(FieldError::new(
                    "phone",
                    format!(
                        "{} is already the number of guest {owner}",
                        entry.phone.as_str()
                    ),
                ));
            }
            (Some(id), _) => id.clone(),
            (None, Some(owner)) => owner.clone(),
            (None, None) => GuestEntry::id_from_phone(&entry.phone),
        };
        let existing = self.by_id.get(&id);
        let guest = entry.into_guest(id, existing.map(|g| &g.rsvp_token));
        Ok((guest, existing))
    }
}

/// Adds or changes the entries' guests; an entry repeating an earlier one
/// (same guest, or same number) or taking another guest's number is
/// rejected, the others are written. One answer per entry, in order.
pub async fn import(
    store: &dyn GuestListStore,
    owner: &str,
    event_id: &EventId,
    entries: Vec<GuestEntry>,
) -> Result<Vec<Imported>, AppError> {
    event(store, owner, event_id).await?;
    let mut known = Known::new(everyone(store, owner, event_id).await?);
    let mut first_at: HashMap<GuestId, usize> = HashMap::new();
    let mut answers = Vec::with_capacity(entries.len());
    let mut writes = Vec::new();
    for (position, entry) in entries.into_iter().enumerate() {
        let by_id = entry.guest_id.is_some();
        let (guest, existing) = match known.place(entry) {
            Ok(placed) => placed,
            Err(e) => {
                answers.push(Imported::Rejected(e));
                continue;
            }
        };
        if let Some(&first) = first_at.get(&guest.guest_id) {
            // Found by its number (no id given): the number is the repeat.
            let field = if by_id { "guest_id" } else { "phone" };
            answers.push(Imported::Repeats { field, first });
            continue;
        }
        first_at.insert(guest.guest_id.clone(), position);
        let id = guest.guest_id.clone();
        answers.push(match existing {
            None => Imported::Created(id),
            Some(old) if *old == guest => Imported::Unchanged(id),
            Some(_) => Imported::Updated(id),
        });
        if !matches!(answers.last(), Some(Imported::Unchanged(_))) {
            writes.push(guest.clone());
        }
        known.set(guest);
    }
    if !writes.is_empty() {
        store.put_guests(owner, event_id, &writes, &now()).await?;
    }
    Ok(answers)
}

/// A listing read: a page of guests, or (given `since`) what changed.
#[derive(Debug, Clone)]
pub enum Read {
    /// `changes`: a cursor taken before the read, from which following
    /// misses nothing changed while the pages are read.
    Page {
        listing: Listing,
        changes: String,
    },
    Changes(Changes),
}

/// A changes answer holds about this many guests at most; its cursor goes on.
const MAX_CHANGES: usize = 1_000;

/// Reads a page of the list (filtered, after `cursor`), or with `since`
/// every guest changed after that changes cursor.
pub async fn read(
    store: &dyn GuestListStore,
    owner: &str,
    event_id: &EventId,
    filter: Filter,
    since: Option<&str>,
    cursor: Option<&str>,
    limit: usize,
) -> Result<Read, AppError> {
    let Some(since) = since else {
        // Taken before the read: a change made while the pages are read is
        // after it, so following from it misses nothing.
        let changes = changes_from_now(store);
        let listing = list(store, owner, event_id, &filter, cursor, limit).await?;
        return Ok(Read::Page { listing, changes });
    };
    if !filter.is_empty() {
        return Err(AppError::invalid(
            "since",
            "answers every changed guest: leave out status, opted_out and q",
        ));
    }
    if cursor.is_some() {
        return Err(AppError::invalid(
            "cursor",
            "pages a listing; to go on with changes, pass their next_cursor as since",
        ));
    }
    changes(store, owner, event_id, since, limit.min(MAX_CHANGES))
        .await
        .map(Read::Changes)
        .map_err(|e| match e {
            AppError::Store(crate::ports::StoreError::BadCursor) => {
                AppError::invalid("since", "is not a cursor this listing gave")
            }
            other => other,
        })
}

/// Changes one guest as the organizer gave them (or adds them under `id`);
/// the entry's own `guest_id`, if any, must be the same.
pub async fn edit_entry(
    store: &dyn GuestListStore,
    owner: &str,
    event_id: &EventId,
    id: GuestId,
    input: crate::domain::guest::GuestEntryInput,
) -> Result<(Imported, GuestRow), AppError> {
    // A blank id is no id, as everywhere else in a guest's entry.
    let given = input
        .guest_id
        .as_deref()
        .map(str::trim)
        .filter(|g| !g.is_empty());
    if let Some(given) = given.filter(|g| *g != id.as_str()) {
        return Err(AppError::invalid(
            "guest_id",
            format!("'{given}' differs from the path's '{id}'; leave it out"),
        ));
    }
    let entry = input.parse("")?;
    edit(store, owner, event_id, id, entry).await
}

/// Changes one guest (or adds them under `id`).
pub async fn edit(
    store: &dyn GuestListStore,
    owner: &str,
    event_id: &EventId,
    id: GuestId,
    entry: GuestEntry,
) -> Result<(Imported, GuestRow), AppError> {
    let entry = GuestEntry {
        guest_id: Some(id.clone()),
        ..entry
    };
    let answer = import(store, owner, event_id, vec![entry]).await?.remove(0);
    if let Imported::Rejected(e) = answer {
        return Err(AppError::Invalid(e));
    }
    let mut rows = rows_of(
        store,
        owner,
        store.get_guests(owner, event_id, &[id]).await?,
    )
    .await?;
    let row = rows
        .pop()
        .ok_or_else(|| AppError::Conflict("the guest was removed meanwhile".into()))?;
    Ok((answer, row))
}

pub async fn remove(
    store: &dyn GuestListStore,
    owner: &str,
    event_id: &EventId,
    id: &GuestId,
) -> Result<(), AppError> {
    event(store, owner, event_id).await?;
    let listed = store
        .get_guests(owner, event_id, std::slice::from_ref(id))
        .await?
        .pop();
    if !store.remove_guest(owner, event_id, id).await? {
        return Err(AppError::NotFound(format!("guest {id}")));
    }
    // Their invitation still to go (queued, or waiting for the daily
    // limit) is not sent: skipped, in words. One the sender has claimed
    // already goes out; the sender checks the list before each claim.
    let latest = match listed.and_then(|g| g.invitation_id) {
        Some(invitation_id) => store.get_invitation(&invitation_id).await?,
        None => None,
    };
    if let Some(inv) = latest
        && matches!(inv.status, Status::Queued | Status::Waiting)
    {
        let error = Some(GUEST_REMOVED.into());
        if crate::app::lifecycle::force(store, &inv, Status::Skipped, &now(), None, error).await? {
            tracing::info!(invitation_id = %inv.invitation_id, "guest removed; their invitation still to go skipped");
        }
    }
    Ok(())
}

/// Each guest with their latest invitation and what the organizer may know
/// of their opt-out: two batch reads for the lot.
async fn rows_of(
    store: &dyn GuestListStore,
    owner: &str,
    guests: Vec<ListedGuest>,
) -> Result<Vec<GuestRow>, AppError> {
    let latest: Vec<_> = guests
        .iter()
        .filter_map(|g| g.invitation_id.clone())
        .collect();
    let mut invitations: HashMap<_, _> = store
        .get_invitations(&latest)
        .await?
        .into_iter()
        .map(|i| (i.invitation_id.clone(), i))
        .collect();
    let phones: Vec<_> = guests.iter().map(|g| g.guest.phone.clone()).collect();
    let views = store.opt_out_views(owner, &phones).await?;
    Ok(guests
        .into_iter()
        .zip(views)
        .map(|(listed, opt_out)| GuestRow {
            invitation: listed
                .invitation_id
                .as_ref()
                .and_then(|id| invitations.remove(id)),
            listed,
            opt_out,
        })
        .collect())
}

/// The listing's cursor: the last guest given, opaque to clients.
pub(crate) fn cursor_after(id: &GuestId) -> String {
    URL_SAFE_NO_PAD.encode(id.as_str())
}

pub(crate) fn guest_after(cursor: &str) -> Result<GuestId, AppError> {
    let bad = || AppError::invalid("cursor", "is not a cursor this listing gave");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    GuestId::parse(&text).map_err(|_| bad())
}

/// A page of the event's guests, in id order. With a filter a page may
/// hold fewer than `limit` guests and still have a next one.
pub async fn list(
    store: &dyn GuestListStore,
    owner: &str,
    event_id: &EventId,
    filter: &Filter,
    cursor: Option<&str>,
    limit: usize,
) -> Result<Listing, AppError> {
    let mut after = cursor.map(guest_after).transpose()?;
    event(store, owner, event_id).await?;
    let mut rows: Vec<GuestRow> = Vec::new();
    let mut scanned = 0;
    loop {
        let want = if filter.is_empty() {
            limit - rows.len()
        } else {
            // Read ahead: most guests may not match.
            (limit - rows.len()).max(200)
        };
        let page = store
            .guests_page(owner, event_id, after.as_ref(), want)
            .await?;
        scanned += page.items.len();
        let mut more = page.more;
        for row in rows_of(store, owner, page.items).await? {
            if rows.len() == limit {
                // The page held more than fit: go on after the last one given.
                more = true;
                break;
            }
            after = Some(row.listed.guest.guest_id.clone());
            if filter.matches(&row) {
                rows.push(row);
            }
        }
        if rows.len() >= limit || !more || scanned >= MAX_SCAN {
            return Ok(Listing {
                rows,
                next_cursor: more.then(|| after.as_ref().map(cursor_after)).flatten(),
            });
        }
    }
}

/// A cursor from which [`changes`] answers what changes from now on.
pub fn changes_from_now(store: &dyn GuestListStore) -> String {
    store.changes_from_now()
}

/// The guests changed after `since` (added, edited, or their invitation
/// moved), and those removed.
pub async fn changes(
    store: &dyn GuestListStore,
    owner: &str,
    event_id: &EventId,
    since: &str,
    limit: usize,
) -> Result<Changes, AppError> {
    event(store, owner, event_id).await?;
    let found = store
        .guest_changes(owner, event_id, Some(since), limit)
        .await?;
    let mut ids = found.changed.clone();
    ids.extend(found.removed.iter().cloned());
    let present = store.get_guests(owner, event_id, &ids).await?;
    let kept: std::collections::HashSet<GuestId> =
        present.iter().map(|g| g.guest.guest_id.clone()).collect();
    let mut seen = std::collections::HashSet::new();
    let removed: Vec<GuestId> = ids
        .into_iter()
        .filter(|id| !kept.contains(id) && seen.insert(id.clone()))
        .collect();
    let mut rows = rows_of(store, owner, present).await?;
    rows.sort_by(|a, b| a.listed.guest.guest_id.cmp(&b.listed.guest.guest_id));
    Ok(Changes {
        rows,
        removed,
        cursor: found.cursor,
        more: found.more,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fixtures::{OWNER, guest, with_event};
    use crate::app::send::{self, NewJob};
    use crate::domain::guest::GuestEntryInput;
    use crate::domain::{OptOut, Status};

    fn entry(id: Option<&str>, name: &str, phone: &str) -> GuestEntry {
        GuestEntryInput {
            guest_id: id.map(str::to_owned),
            name: Some(name.into()),
            phone: Some(phone.into()),
            rsvp_token: None,
        }
        .parse("")
        .unwrap()
    }

    #[tokio::test]
    async fn an_import_merges_by_id_then_by_phone_and_rejects_what_would_clash() {
        let (store, _, event) = with_event().await;
        let id = &event.event_id;
        let first = import(
            &store,
            OWNER,
            id,
            vec![
                entry(Some("ana"), "Ana", "+5511999990001"),
                entry(None, "Bruno", "+5511999990002"),
            ],
        )
        .await
        .unwrap();
        let gid = |s: &str| GuestId::parse(s).unwrap();
        assert_eq!(
            first,
            [
                Imported::Created(gid("ana")),
                Imported::Created(gid("p5511999990002"))
            ]
        );
        let again = import(
            &store,
            OWNER,
            id,
            vec![
                // Bruno's number, no id: Bruno, renamed.
                entry(None, "Bruno S.", "+5511999990002"),
                // Ana as she was.
                entry(Some("ana"), "Ana", "+5511999990001"),
                // Another id with Ana's number.
                entry(Some("carla"), "Carla", "+5511999990001"),
                // Ana twice in one import.
                entry(Some("ana"), "Ana", "+5511999990001"),
            ],
        )
        .await
        .unwrap();
        assert_eq!(again[0], Imported::Updated(gid("p5511999990002")));
        assert_eq!(again[1], Imported::Unchanged(gid("ana")));
        assert!(
            matches!(&again[2], Imported::Rejected(e) if e.field == "phone" && e.message.contains("guest ana"))
        );
        assert_eq!(
            again[3],
            Imported::Repeats {
                field: "guest_id",
                first: 1
            }
        );
        let all = list(&store, OWNER, id, &Filter::default(), None, 10)
            .await
            .unwrap();
        let names: Vec<&str> = all
            .rows
            .iter()
            .map(|r| r.listed.guest.name.as_str())
            .collect();
        assert_eq!(names, ["Ana", "Bruno S."]);
        // An unknown event is the event's error.
        let missing = EventId::parse("nope").unwrap();
        assert!(matches!(
            import(&store, OWNER, &missing, vec![]).await,
            Err(AppError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn the_listing_pages_filters_and_follows_changes() {
        let (store, queue, event) = with_event().await;
        let id = &event.event_id;
        let entries = (1..=7)
            .map(|n| {
                let g = guest(n);
                entry(Some(g.guest_id.as_str()), &g.name, g.phone.as_str())
            })
            .collect();
        import(&store, OWNER, id, entries).await.unwrap();
        let cursor = changes_from_now(&store);
        // Guest 2 opts out; guests 1 and 3 are invited.
        store
            .put_opt_out(
                &OptOut::by_organizer(guest(2).phone, OWNER, true, &now()),
                None,
            )
            .await
            .unwrap();
        let plan = send::plan(&store, OWNER, id, None).await.unwrap();
        send::send(
            &store,
            &queue,
            plan,
            vec![guest(1), guest(3)],
            NewJob::Fresh,
            false,
        )
        .await
        .unwrap();

        let mut seen = Vec::new();
        let mut next = None;
        loop {
            let page = list(&store, OWNER, id, &Filter::default(), next.as_deref(), 3)
                .await
                .unwrap();
            assert!(page.rows.len() <= 3);
            seen.extend(
                page.rows
                    .iter()
                    .map(|r| r.listed.guest.guest_id.to_string()),
            );
            match page.next_cursor {
                Some(c) => next = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, ["g1", "g2", "g3", "g4", "g5", "g6", "g7"]);

        let ids = |filter: Filter| {
            let store = &store;
            async move {
                let page = list(store, OWNER, id, &filter, None, 100).await.unwrap();
                page.rows
                    .iter()
                    .map(|r| r.listed.guest.guest_id.to_string())
                    .collect::<Vec<_>>()
            }
        };
        let queued = Filter {
            status: Some(StatusFilter::Is(Status::Queued)),
            ..Default::default()
        };
        assert_eq!(ids(queued).await, ["g1", "g3"]);
        let not_invited = Filter {
            status: Some(StatusFilter::NotInvited),
            opted_out: Some(false),
            ..Default::default()
        };
        assert_eq!(ids(not_invited).await, ["g4", "g5", "g6", "g7"]);
        let opted_out = Filter {
            opted_out: Some(true),
            ..Default::default()
        };
        assert_eq!(ids(opted_out).await, ["g2"]);
        let search = Filter {
            search: Search::parse("GUEST 5"),
            ..Default::default()
        };
        assert_eq!(ids(search).await, ["g5"]);
        // A filtered page that fills up goes on where it stopped.
        let page = list(
            &store,
            OWNER,
            id,
            &Filter {
                opted_out: Some(false),
                ..Default::default()
            },
            None,
            2,
        )
        .await
        .unwrap();
        let page2 = list(
            &store,
            OWNER,
            id,
            &Filter {
                opted_out: Some(false),
                ..Default::default()
            },
            page.next_cursor.as_deref(),
            2,
        )
        .await
        .unwrap();
        let ids2: Vec<String> = page2
            .rows
            .iter()
            .map(|r| r.listed.guest.guest_id.to_string())
            .collect();
        assert_eq!(ids2, ["g4", "g5"]);

        // Changes since the cursor: the two invited guests; then a removal.
        let changed = changes(&store, OWNER, id, &cursor, 1000).await.unwrap();
        let ids: Vec<String> = changed
            .rows
            .iter()
            .map(|r| r.listed.guest.guest_id.to_string())
            .collect();
        assert_eq!(ids, ["g1", "g3"]);
        assert_eq!(
            changed.rows[0].invitation.as_ref().map(|i| i.status),
            Some(Status::Queued)
        );
        remove(&store, OWNER, id, &guest(4).guest_id).await.unwrap();
        let after = changes(&store, OWNER, id, &changed.cursor, 1000)
            .await
            .unwrap();
        assert!(after.rows.is_empty());
        assert_eq!(after.removed, [guest(4).guest_id]);
        assert!(matches!(
            remove(&store, OWNER, id, &guest(4).guest_id).await,
            Err(AppError::NotFound(_))
        ));
        assert!(matches!(
            list(&store, OWNER, id, &Filter::default(), Some("%%"), 3).await,
            Err(AppError::Invalid(e)) if e.field == "cursor"
        ));
    }

    #[tokio::test]
    async fn removing_a_guest_skips_their_invitation_still_to_go() {
        let (store, _queue, invitations) = crate::app::fixtures::invited(2).await;
        let (gone, kept) = (&invitations[0], &invitations[1]);
        remove(&store, OWNER, &gone.event_id, &gone.guest.guest_id)
            .await
            .unwrap();
        let gone = store
            .get_invitation(&gone.invitation_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (gone.status, gone.error_code.as_deref()),
            (Status::Skipped, Some("guest_removed"))
        );
        let kept = store
            .get_invitation(&kept.invitation_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(kept.status, Status::Queued);
    }
}
