use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {0} characters")]
    TooLong(usize),
    #[error("may contain only letters, digits, '-', '_' and '.'")]
    BadChar,
}

fn check(raw: &str, max: usize) -> Result<(), IdError> {
    if raw.is_empty() {
        return Err(IdError::Empty);
    }
    if raw.len() > max {
        return Err(IdError::TooLong(max));
    }
    if !raw
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(IdError::BadChar);
    }
    Ok(())
}

/// Declares an opaque string id that parses on the way in.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, IdError> {
                check(raw, $max).map(|()| Self(raw.to_owned()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                check(&value, $max).map(|()| Self(value))
            }
        }
        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// Chosen by the organizer's client.
    EventId, 64
);
id_type!(
    /// The organizer's own id for a guest, unique within a send.
    GuestId, 64
);
id_type!(
    /// The secret part of a guest's RSVP link.
    RsvpToken, 128
);
id_type!(InvitationId, 64);
id_type!(JobId, 64);
id_type!(
    /// A message template, named by the organizer (or generated).
    TemplateId, 64
);

fn random_id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

impl InvitationId {
    pub fn generate() -> Self {
        Self(random_id("inv_"))
    }

    /// A guest's invitation in a job: the same id every time that job is
    /// written, so a request repeated after a failure rewrites, never adds.
    pub fn for_guest(job: &JobId, guest: &GuestId) -> Self {
        use sha1::{Digest, Sha1};
        let digest = Sha1::digest(format!("{job}\n{guest}").as_bytes());
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        Self(format!("inv_{hex}"))
    }
}

impl JobId {
    pub fn generate() -> Self {
        Self(random_id("job_"))
    }
}

impl TemplateId {
    pub fn generate() -> Self {
        Self(random_id("tpl_"))
    }
}

impl RsvpToken {
    /// 122 random bits: unguessable, so the link alone identifies the guest.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse() {
        assert!(EventId::parse("gala-2027_v1.0").is_ok());
        assert_eq!(EventId::parse(""), Err(IdError::Empty));
        assert_eq!(EventId::parse("a b"), Err(IdError::BadChar));
        assert_eq!(EventId::parse("x/y"), Err(IdError::BadChar));
        assert_eq!(EventId::parse(&"a".repeat(65)), Err(IdError::TooLong(64)));
        let id = InvitationId::generate();
        assert_eq!(InvitationId::parse(id.as_str()), Ok(id));
        assert_ne!(RsvpToken::generate(), RsvpToken::generate());
    }
}
