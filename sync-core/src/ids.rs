//! Identifiers and keys. Each is a newtype that only exists when valid:
//! parse with `FromStr`, never build from an unchecked string.

use std::fmt;
use std::str::FromStr;

/// Why an identifier or key did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{}' is not a valid {what}: {rule}", crate::text::quote(.value))]
pub struct IdError {
    /// What kind of identifier was expected.
    pub what: &'static str,
    /// The offending text (cut to 64 characters).
    pub value: String,
    /// The rule it breaks, in words.
    pub rule: &'static str,
}

fn id_error(what: &'static str, value: &str, rule: &'static str) -> IdError {
    IdError {
        what,
        value: value.chars().take(64).collect(),
        rule,
    }
}

/// A document id: a UUID (made on the device as UUIDv7), 16 bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DocumentId([u8; 16]);

impl DocumentId {
    /// A UUIDv7 from a time and ten random bytes (the caller supplies both: no I/O here).
    pub fn new_v7(unix_ms: i64, random: [u8; 10]) -> DocumentId {
        let mut b = [0u8; 16];
        let ms = (unix_ms.max(0) as u64).to_be_bytes();
        b[..6].copy_from_slice(&ms[2..]);
        b[6..].copy_from_slice(&random);
        b[6] = 0x70 | (b[6] & 0x0f);
        b[8] = 0x80 | (b[8] & 0x3f);
        DocumentId(b)
    }

    /// The id from its 16 bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> DocumentId {
        DocumentId(bytes)
    }

    /// The 16 bytes of the id.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for DocumentId {
    /// Lowercase hex in the UUID's five groups, written in one piece: the
    /// server spells several ids for every change it stores, and formatting
    /// them byte by byte took about 3% of its CPU through a mass reconnect.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = [b'-'; 36];
        let mut at = 0;
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                at += 1;
            }
            text[at] = DIGITS[usize::from(b >> 4)];
            text[at + 1] = DIGITS[usize::from(b & 0x0f)];
            at += 2;
        }
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocumentId({self})")
    }
}

impl FromStr for DocumentId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            id_error(
                "document id",
                s,
                "expected a UUID like 0190f5a2-7c1e-7d3a-9b1c-2f4e6a8b0c1d",
            )
        };
        let bytes = s.as_bytes();
        if bytes.len() != 36 || [8, 13, 18, 23].iter().any(|&i| bytes[i] != b'-') {
            return Err(bad());
        }
        let hex: Vec<u8> = bytes.iter().copied().filter(|b| *b != b'-').collect();
        if hex.len() != 32 {
            return Err(bad());
        }
        let mut out = [0u8; 16];
        for (i, pair) in hex.chunks(2).enumerate() {
            let hi = hex_val(pair[0]).ok_or_else(bad)?;
            let lo = hex_val(pair[1]).ok_or_else(bad)?;
            out[i] = hi << 4 | lo;
        }
        Ok(DocumentId(out))
    }
}

pub(crate) fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Defines a string newtype checked by a predicate.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, $rule:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let check: fn(&str) -> bool = $check;
                if check(s) {
                    Ok($name(s.to_owned()))
                } else {
                    Err(id_error($what, s, $rule))
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

fn word_chars(s: &str, max: usize, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || extra.contains(&b))
}

string_id!(
    /// A user's login name: 1 to 64 of a-z, 0-9, '.', '_' and '-'.
    UserId,
    "user id",
    "use 1 to 64 lowercase letters, digits, '.', '_' or '-'",
    |s| word_chars(s, 64, b"._-") && s.as_bytes()[0].is_ascii_alphanumeric()
);

string_id!(
    /// A unit's short code, e.g. `DEMO-I`: 1 to 32 of A-Z, 0-9 and '-'.
    UnitCode,
    "unit code",
    "use 1 to 32 capital letters, digits or '-'",
    |s| !s.is_empty()
        && s.len() <= 32
        && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
);

string_id!(
    /// A process code, `P` and two or three digits, e.g. `P04`.
    ProcessCode,
    "process code",
    "use 'P' followed by two or three digits, e.g. P04",
    |s| (3..=4).contains(&s.len())
        && s.starts_with('P')
        && s[1..].bytes().all(|b| b.is_ascii_digit())
);

string_id!(
    /// A stable checklist item key, e.g. `sd.timeliness`: lowercase words joined by dots.
    ItemKey,
    "checklist item key",
    "use lowercase words joined by dots, e.g. sd.timeliness",
    |s| s.len() <= 64
        && s.split('.').count() >= 2
        && s.split('.').all(|w| {
            !w.is_empty() && w.as_bytes()[0].is_ascii_lowercase() && word_chars(w, 64, b"_")
        })
);

string_id!(
    /// A clause key as printed in a manual issue, e.g. `3.2.1.4` or `2.2`.
    ClauseKey,
    "clause",
    "use numbers joined by dots, e.g. 3.2.1.4",
    |s| s.len() <= 16 && !s.is_empty() && s.split('.').all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()))
);

string_id!(
    /// A short id for an item inside a document (a finding, an action): 1 to 40 of a-z, 0-9, '-'.
    ItemId,
    "item id",
    "use 1 to 40 lowercase letters, digits or '-'",
    |s| word_chars(s, 40, b"-")
);

string_id!(
    /// A SHA-256 content hash in lowercase hex (64 characters).
    Sha256Hex,
    "SHA-256 hash",
    "use 64 lowercase hexadecimal characters",
    |s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
);

/// The key of one checklist response: an item key, or `<item key>@<process>`
/// for the 3.2.1 items that apply once per process in scope.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResponseKey {
    item: ItemKey,
    process: Option<ProcessCode>,
}

impl ResponseKey {
    /// A response key for an item, optionally for one process.
    pub fn new(item: ItemKey, process: Option<ProcessCode>) -> ResponseKey {
        ResponseKey { item, process }
    }

    /// The template item answered.
    pub fn item(&self) -> &ItemKey {
        &self.item
    }

    /// The process the answer is for, when the item applies per process.
    pub fn process(&self) -> Option<&ProcessCode> {
        self.process.as_ref()
    }
}

impl FromStr for ResponseKey {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('@') {
            Some((item, process)) => Ok(ResponseKey {
                item: item.parse()?,
                process: Some(process.parse()?),
            }),
            None => Ok(ResponseKey {
                item: s.parse()?,
                process: None,
            }),
        }
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for ResponseKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for ResponseKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for ResponseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.process {
            Some(p) => write!(f, "{}@{}", self.item, p),
            None => write!(f, "{}", self.item),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_ids_round_trip_and_are_version_7() {
        let id = DocumentId::new_v7(1_736_900_000_000, [0xab; 10]);
        let text = id.to_string();
        assert_eq!(text, "0194674e-b900-7bab-abab-abababababab");
        assert_eq!(text.as_bytes()[14], b'7');
        assert_eq!(text.parse::<DocumentId>(), Ok(id));
        assert!("not-a-uuid".parse::<DocumentId>().is_err());
        assert!(
            "0190f5a2-7c1e-7d3a-9b1c-2f4e6a8b0c1z"
                .parse::<DocumentId>()
                .is_err()
        );
    }

    #[test]
    fn every_document_id_spells_its_bytes_in_uuid_groups_and_parses_back() {
        let mut bytes = [0u8; 16];
        for seed in 0..=255u8 {
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = seed.wrapping_mul(31).wrapping_add(i as u8 * 17) ^ (seed >> 3);
            }
            let id = DocumentId::from_bytes(bytes);
            let text = id.to_string();
            let groups: Vec<&str> = text.split('-').collect();
            let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
            assert_eq!(lens, [8, 4, 4, 4, 12], "{text}");
            let digits: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(groups.concat(), digits);
            assert_eq!(text.parse::<DocumentId>(), Ok(id));
        }
    }

    #[test]
    fn response_keys_parse_with_and_without_process() {
        let k: ResponseKey = "sd.timeliness@P04".parse().expect("valid");
        assert_eq!(k.item().as_str(), "sd.timeliness");
        assert_eq!(k.process().map(ProcessCode::as_str), Some("P04"));
        assert_eq!(k.to_string(), "sd.timeliness@P04");
        let plain: ResponseKey = "chr.display".parse().expect("valid");
        assert_eq!(plain.process(), None);
        for bad in [
            "sd",
            "sd.",
            ".x",
            "Sd.timeliness",
            "sd.timeliness@",
            "sd.timeliness@X4",
            "a b.c",
        ] {
            assert!(bad.parse::<ResponseKey>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn names_and_codes_follow_their_rules() {
        assert!("k.iyer".parse::<UserId>().is_ok());
        assert!("K.Iyer".parse::<UserId>().is_err());
        assert!("-x".parse::<UserId>().is_err());
        assert!("DEMO-I".parse::<UnitCode>().is_ok());
        assert!("P04".parse::<ProcessCode>().is_ok());
        assert!("P4".parse::<ProcessCode>().is_err());
        assert!("3.2.1.4".parse::<ClauseKey>().is_ok());
        assert!("3..2".parse::<ClauseKey>().is_err());
        assert!("a".repeat(64).parse::<Sha256Hex>().is_ok());
        assert!("A".repeat(64).parse::<Sha256Hex>().is_err());
    }
}
