//! The versioned binary envelope around every sync frame (DESIGN §5).
//!
//! One WebSocket carries many documents, so each binary frame says which
//! document it is about and what kind of message it holds:
//!
//! ```text
//! byte 0       magic 0x53 ('S')
//! byte 1       version, 1
//! byte 2       body tag: 1 sync, 2 rejection, 3 new document, 4 withdrawn, 5 error
//! bytes 3..19  document id (16 bytes)
//! then the body, all lengths big-endian:
//!   sync         u32 length + the Automerge sync message
//!   rejection    u8 rule length + rule (ASCII), u16 message length + message (UTF-8),
//!                u16 count + count × 32-byte change hashes
//!   new document u8 document kind code
//!   withdrawn    nothing
//!   error        u16 error code + u16 message length + message (UTF-8)
//! ```
//!
//! The encoding is canonical: a frame that decodes re-encodes to the same
//! bytes. [`Envelope::decode`] checks the total size before anything else and
//! every length against both its limit and the bytes that remain, so it never
//! allocates more than its input, never panics, and refuses trailing bytes.

use automerge::ChangeHash;

use crate::ids::DocumentId;
use crate::kind::DocKind;

/// The largest frame in bytes, header included (8 MiB).
pub const MAX_ENVELOPE_BYTES: usize = 8 * 1024 * 1024;
/// The longest rule code of a rejection, in bytes.
pub const MAX_RULE_BYTES: usize = 64;
/// The longest message of a rejection or an error, in bytes of UTF-8.
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// The most change hashes one rejection may list.
pub const MAX_REJECTED_CHANGES: usize = 4096;

const MAGIC: u8 = 0x53;
const VERSION: u8 = 1;
/// Magic, version, body tag and document id.
const HEADER_BYTES: usize = 3 + 16;
/// The largest sync message that fits in a frame with its u32 length.
const MAX_SYNC_BYTES: usize = MAX_ENVELOPE_BYTES - HEADER_BYTES - 4;

/// One frame: which document, and what about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The document the frame is about.
    pub doc: DocumentId,
    /// What the frame says about it.
    pub body: Body,
}

/// What a frame says about its document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// An Automerge sync message's bytes, opaque here.
    Sync(Vec<u8>),
    /// The server refused some changes of this document.
    Rejection {
        /// A short machine code naming the broken rule (ASCII, at most [`MAX_RULE_BYTES`]).
        rule: String,
        /// A sentence for the user (UTF-8, at most [`MAX_MESSAGE_BYTES`]).
        message: String,
        /// The refused changes (at most [`MAX_REJECTED_CHANGES`]).
        changes: Vec<ChangeHash>,
    },
    /// The user may now see this document.
    NewDocument {
        /// The document's kind.
        kind: DocKind,
    },
    /// The user may no longer see this document.
    Withdrawn,
    /// A protocol error about this document.
    Error {
        /// What went wrong, as a code.
        code: ErrorCode,
        /// A sentence for the user (UTF-8, at most [`MAX_MESSAGE_BYTES`]).
        message: String,
    },
}

/// The code of a protocol error, a u16 on the wire.
///
/// A code this build does not know decodes as [`ErrorCode::Unknown`] rather
/// than failing, so newer peers can add codes. `Unknown(c)` with a code that
/// has a name encodes as that code and so decodes as the named variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The sender may not do that with this document (code 1).
    NotPermitted,
    /// The receiver knows no such document (code 2).
    UnknownDocument,
    /// The frame or its payload could not be read (code 3).
    Malformed,
    /// A limit on size, count or rate was exceeded (code 4).
    LimitExceeded,
    /// The receiver failed on its side; try again later (code 5).
    Internal,
    /// A code this build does not know (0 and 6 and up).
    Unknown(u16),
}

impl ErrorCode {
    /// The code sent on the wire.
    pub fn code(self) -> u16 {
        match self {
            ErrorCode::NotPermitted => 1,
            ErrorCode::UnknownDocument => 2,
            ErrorCode::Malformed => 3,
            ErrorCode::LimitExceeded => 4,
            ErrorCode::Internal => 5,
            ErrorCode::Unknown(code) => code,
        }
    }

    /// The error code for a wire code; never fails.
    pub fn from_code(code: u16) -> ErrorCode {
        match code {
            1 => ErrorCode::NotPermitted,
            2 => ErrorCode::UnknownDocument,
            3 => ErrorCode::Malformed,
            4 => ErrorCode::LimitExceeded,
            5 => ErrorCode::Internal,
            other => ErrorCode::Unknown(other),
        }
    }
}

/// Why a frame could not be encoded or decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The whole frame is over [`MAX_ENVELOPE_BYTES`].
    #[error("a frame of {len} bytes is over the limit of {max} bytes")]
    TooLarge {
        /// The frame's size in bytes (for a decoded sync message, the size its length claims).
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The first byte is not the magic byte 0x53.
    #[error("this is not a sync frame: its first byte is {0:#04x}, not 0x53")]
    BadMagic(u8),
    /// The frame's version is not one this build speaks.
    #[error("frame version {0} is not supported; this build speaks version 1")]
    UnsupportedVersion(u8),
    /// The body tag is not one this build knows.
    #[error("frame body type {0} is unknown")]
    UnknownBody(u8),
    /// The frame ends before one of its parts.
    #[error("the frame ends before its {what}")]
    Truncated {
        /// The part that is missing.
        what: &'static str,
    },
    /// Bytes follow the end of the body.
    #[error("the frame has {0} unexpected bytes after its body")]
    TrailingBytes(usize),
    /// A text field is not valid UTF-8 or, for a rule, not ASCII.
    #[error("the frame's {what} is not valid text")]
    InvalidText {
        /// The field.
        what: &'static str,
    },
    /// A field is longer than its limit.
    #[error("the frame's {what} has length {len}, over the limit of {max}")]
    LimitExceeded {
        /// The field.
        what: &'static str,
        /// Its length (bytes, or hashes for a list of changes).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The document kind code is not one this build knows.
    #[error("document kind code {0} is unknown")]
    UnknownDocKind(u8),
}

/// Checks `len` against `max` and converts it to the wire integer.
fn fit<T: TryFrom<usize>>(what: &'static str, len: usize, max: usize) -> Result<T, EnvelopeError> {
    let over = || EnvelopeError::LimitExceeded { what, len, max };
    if len > max {
        return Err(over());
    }
    T::try_from(len).map_err(|_| over())
}

fn too_large(len: usize) -> EnvelopeError {
    EnvelopeError::TooLarge {
        len,
        max: MAX_ENVELOPE_BYTES,
    }
}

impl Body {
    fn tag(&self) -> u8 {
        match self {
            Body::Sync(_) => 1,
            Body::Rejection { .. } => 2,
            Body::NewDocument { .. } => 3,
            Body::Withdrawn => 4,
            Body::Error { .. } => 5,
        }
    }
}

impl Envelope {
    /// Encodes the frame, refusing any field over its limit and a rule that is not ASCII.
    pub fn encode(&self) -> Result<Vec<u8>, EnvelopeError> {
        let mut out = Vec::with_capacity(HEADER_BYTES + 8);
        out.extend_from_slice(&[MAGIC, VERSION, self.body.tag()]);
        out.extend_from_slice(self.doc.as_bytes());
        match &self.body {
            Body::Sync(payload) => {
                let len: u32 =
                    fit("sync message", payload.len(), MAX_SYNC_BYTES).map_err(|_| {
                        too_large(HEADER_BYTES.saturating_add(4).saturating_add(payload.len()))
                    })?;
                out.reserve_exact(4 + payload.len());
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(payload);
            }
            Body::Rejection {
                rule,
                message,
                changes,
            } => {
                let rule_len: u8 = fit("rule", rule.len(), MAX_RULE_BYTES)?;
                if !rule.is_ascii() {
                    return Err(EnvelopeError::InvalidText { what: "rule" });
                }
                let message_len: u16 = fit("message", message.len(), MAX_MESSAGE_BYTES)?;
                let count: u16 = fit(
                    "list of refused changes",
                    changes.len(),
                    MAX_REJECTED_CHANGES,
                )?;
                out.push(rule_len);
                out.extend_from_slice(rule.as_bytes());
                out.extend_from_slice(&message_len.to_be_bytes());
                out.extend_from_slice(message.as_bytes());
                out.extend_from_slice(&count.to_be_bytes());
                for change in changes {
                    out.extend_from_slice(&change.0);
                }
            }
            Body::NewDocument { kind } => out.push(kind.code()),
            Body::Withdrawn => {}
            Body::Error { code, message } => {
                let message_len: u16 = fit("message", message.len(), MAX_MESSAGE_BYTES)?;
                out.extend_from_slice(&code.code().to_be_bytes());
                out.extend_from_slice(&message_len.to_be_bytes());
                out.extend_from_slice(message.as_bytes());
            }
        }
        Ok(out)
    }

    /// The document a frame is about, read from its header alone (`None` if
    /// the header is not an envelope's). Routing needs no more than this.
    pub fn peek_doc(bytes: &[u8]) -> Option<DocumentId> {
        let id: [u8; 16] = bytes.get(3..19)?.try_into().ok()?;
        (bytes.first() == Some(&MAGIC) && bytes.get(1) == Some(&VERSION))
            .then(|| DocumentId::from_bytes(id))
    }

    /// Decodes exactly one frame; any malformed input is an [`EnvelopeError`], never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(too_large(bytes.len()));
        }
        let mut r = Reader(bytes);
        let [magic] = r.array("magic byte")?;
        if magic != MAGIC {
            return Err(EnvelopeError::BadMagic(magic));
        }
        let [version] = r.array("version")?;
        if version != VERSION {
            return Err(EnvelopeError::UnsupportedVersion(version));
        }
        let [tag] = r.array("body type")?;
        let doc = DocumentId::from_bytes(r.array("document id")?);
        let body = match tag {
            1 => {
                let len = u32::from_be_bytes(r.array("sync message length")?);
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                if len > MAX_SYNC_BYTES {
                    return Err(too_large(
                        HEADER_BYTES.saturating_add(4).saturating_add(len),
                    ));
                }
                Body::Sync(r.take(len, "sync message")?.to_vec())
            }
            2 => {
                let [len] = r.array("rule length")?;
                let rule = r.text(usize::from(len), MAX_RULE_BYTES, "rule")?;
                if !rule.is_ascii() {
                    return Err(EnvelopeError::InvalidText { what: "rule" });
                }
                let len = u16::from_be_bytes(r.array("message length")?);
                let message = r.text(usize::from(len), MAX_MESSAGE_BYTES, "message")?;
                let count = usize::from(u16::from_be_bytes(r.array("change count")?));
                let _: u16 = fit("list of refused changes", count, MAX_REJECTED_CHANGES)?;
                let (hashes, _) = r.take(count * 32, "refused changes")?.as_chunks::<32>();
                let changes = hashes.iter().map(|h| ChangeHash(*h)).collect();
                Body::Rejection {
                    rule,
                    message,
                    changes,
                }
            }
            3 => {
                let [code] = r.array("document kind")?;
                let kind = DocKind::from_code(code).ok_or(EnvelopeError::UnknownDocKind(code))?;
                Body::NewDocument { kind }
            }
            4 => Body::Withdrawn,
            5 => {
                let code = ErrorCode::from_code(u16::from_be_bytes(r.array("error code")?));
                let len = u16::from_be_bytes(r.array("message length")?);
                let message = r.text(usize::from(len), MAX_MESSAGE_BYTES, "message")?;
                Body::Error { code, message }
            }
            other => return Err(EnvelopeError::UnknownBody(other)),
        };
        if !r.0.is_empty() {
            return Err(EnvelopeError::TrailingBytes(r.0.len()));
        }
        Ok(Envelope { doc, body })
    }
}

/// The unread rest of a frame; every read checks that the bytes are there.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], EnvelopeError> {
        let (head, rest) = self
            .0
            .split_at_checked(n)
            .ok_or(EnvelopeError::Truncated { what })?;
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], EnvelopeError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(EnvelopeError::Truncated { what })?;
        self.0 = rest;
        Ok(*head)
    }

    /// Reads `len` bytes of UTF-8, checking the limit before the remaining input.
    fn text(
        &mut self,
        len: usize,
        max: usize,
        what: &'static str,
    ) -> Result<String, EnvelopeError> {
        if len > max {
            return Err(EnvelopeError::LimitExceeded { what, len, max });
        }
        let bytes = self.take(len, what)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| EnvelopeError::InvalidText { what })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> DocumentId {
        DocumentId::from_bytes([7; 16])
    }

    fn env(body: Body) -> Envelope {
        Envelope { doc: doc(), body }
    }

    fn round_trips(body: Body) {
        let env = env(body);
        let bytes = env.encode().expect("encodes");
        assert_eq!(Envelope::decode(&bytes), Ok(env));
    }

    /// A hand-made frame: header for `tag`, then `body` as given.
    fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![MAGIC, VERSION, tag];
        out.extend_from_slice(doc().as_bytes());
        out.extend_from_slice(body);
        out
    }

    /// The body of a hand-made rejection frame with the given lengths.
    fn rejection_body(rule: usize, message: usize, changes: usize) -> Vec<u8> {
        let mut b = vec![u8::try_from(rule).expect("rule length fits a byte")];
        b.extend(std::iter::repeat_n(b'r', rule));
        b.extend_from_slice(&u16::try_from(message).expect("fits").to_be_bytes());
        b.extend(std::iter::repeat_n(b'm', message));
        b.extend_from_slice(&u16::try_from(changes).expect("fits").to_be_bytes());
        b.extend(std::iter::repeat_n(9u8, changes * 32));
        b
    }

    fn rejection(rule: usize, message: usize, changes: usize) -> Envelope {
        env(Body::Rejection {
            rule: "r".repeat(rule),
            message: "m".repeat(message),
            changes: vec![ChangeHash([9; 32]); changes],
        })
    }

    fn error(message: usize) -> Envelope {
        env(Body::Error {
            code: ErrorCode::Malformed,
            message: "m".repeat(message),
        })
    }

    fn is_limit(result: Result<impl std::fmt::Debug, EnvelopeError>, field: &str) -> bool {
        matches!(result, Err(EnvelopeError::LimitExceeded { what, .. }) if what == field)
    }

    #[test]
    fn every_body_kind_round_trips() {
        round_trips(Body::Sync(vec![]));
        round_trips(Body::Sync(vec![0x42, 1, 2, 3]));
        round_trips(Body::Rejection {
            rule: "nc.owner_fields".into(),
            message: "Only the process owner may write the root cause — ask them.".into(),
            changes: vec![ChangeHash([1; 32]), ChangeHash([2; 32])],
        });
        for kind in DocKind::ALL {
            round_trips(Body::NewDocument { kind });
        }
        round_trips(Body::Withdrawn);
        for code in [0, 1, 2, 3, 4, 5, 6, 999, u16::MAX].map(ErrorCode::from_code) {
            round_trips(Body::Error {
                code,
                message: "Try again later.".into(),
            });
        }
    }

    #[test]
    fn layout_matches_the_documented_format() {
        let bytes = env(Body::Error {
            code: ErrorCode::LimitExceeded,
            message: "hi".into(),
        })
        .encode()
        .expect("encodes");
        assert_eq!(bytes, frame(5, &[0, 4, 0, 2, b'h', b'i']));
        let bytes = env(Body::Sync(vec![0xaa])).encode().expect("encodes");
        assert_eq!(bytes, frame(1, &[0, 0, 0, 1, 0xaa]));
        let bytes = env(Body::NewDocument {
            kind: DocKind::Review,
        })
        .encode()
        .expect("encodes");
        assert_eq!(bytes, frame(3, &[3]));
        assert_eq!(
            rejection(2, 3, 1).encode(),
            Ok(frame(2, &rejection_body(2, 3, 1)))
        );
    }

    #[test]
    fn unknown_error_codes_with_a_name_encode_as_the_named_code() {
        let bytes = env(Body::Error {
            code: ErrorCode::Unknown(1),
            message: String::new(),
        })
        .encode()
        .expect("encodes");
        let decoded = Envelope::decode(&bytes).expect("decodes");
        assert_eq!(
            decoded.body,
            Body::Error {
                code: ErrorCode::NotPermitted,
                message: String::new()
            }
        );
    }

    #[test]
    fn rule_is_accepted_at_64_bytes_and_refused_at_65() {
        let ok = rejection(MAX_RULE_BYTES, 0, 0);
        assert_eq!(
            Envelope::decode(&ok.encode().expect("at the limit")),
            Ok(ok)
        );
        assert!(is_limit(
            rejection(MAX_RULE_BYTES + 1, 0, 0).encode(),
            "rule"
        ));
        assert!(is_limit(
            Envelope::decode(&frame(2, &rejection_body(65, 0, 0))),
            "rule"
        ));
    }

    #[test]
    fn message_is_accepted_at_1024_bytes_and_refused_at_1025() {
        for ok in [rejection(1, MAX_MESSAGE_BYTES, 0), error(MAX_MESSAGE_BYTES)] {
            assert_eq!(
                Envelope::decode(&ok.encode().expect("at the limit")).as_ref(),
                Ok(&ok)
            );
        }
        assert!(is_limit(
            rejection(1, MAX_MESSAGE_BYTES + 1, 0).encode(),
            "message"
        ));
        assert!(is_limit(error(MAX_MESSAGE_BYTES + 1).encode(), "message"));
        assert!(is_limit(
            Envelope::decode(&frame(2, &rejection_body(1, 1025, 0))),
            "message"
        ));
        let mut body = vec![0, 3];
        body.extend_from_slice(&1025u16.to_be_bytes());
        body.extend(std::iter::repeat_n(b'm', 1025));
        assert!(is_limit(Envelope::decode(&frame(5, &body)), "message"));
    }

    #[test]
    fn rejection_lists_4096_changes_and_refuses_4097() {
        let ok = rejection(1, 1, MAX_REJECTED_CHANGES);
        assert_eq!(
            Envelope::decode(&ok.encode().expect("at the limit")),
            Ok(ok)
        );
        let field = "list of refused changes";
        assert!(is_limit(
            rejection(1, 1, MAX_REJECTED_CHANGES + 1).encode(),
            field
        ));
        assert!(is_limit(
            Envelope::decode(&frame(2, &rejection_body(1, 1, 4097))),
            field
        ));
    }

    #[test]
    fn the_document_is_read_from_the_header_alone_and_only_from_an_envelope() {
        let bytes = env(Body::Withdrawn).encode().expect("encodes");
        assert_eq!(Envelope::peek_doc(&bytes), Some(doc()));
        let mut other_magic = bytes.clone();
        other_magic[0] ^= 1;
        assert_eq!(Envelope::peek_doc(&other_magic), None);
        let mut other_version = bytes.clone();
        other_version[1] ^= 1;
        assert_eq!(Envelope::peek_doc(&other_version), None);
        assert_eq!(Envelope::peek_doc(&bytes[..HEADER_BYTES - 1]), None);
    }

    #[test]
    fn frame_is_accepted_at_8_mib_and_refused_one_byte_over() {
        assert_eq!(
            MAX_ENVELOPE_BYTES,
            8 << 20,
            "the limit the server and README state"
        );
        let ok = env(Body::Sync(vec![0; MAX_SYNC_BYTES]));
        let bytes = ok.encode().expect("at the limit");
        assert_eq!(bytes.len(), MAX_ENVELOPE_BYTES);
        assert_eq!(Envelope::decode(&bytes), Ok(ok));
        let over = env(Body::Sync(vec![0; MAX_SYNC_BYTES + 1]));
        let too_large = EnvelopeError::TooLarge {
            len: MAX_ENVELOPE_BYTES + 1,
            max: MAX_ENVELOPE_BYTES,
        };
        assert_eq!(over.encode(), Err(too_large.clone()));
        // A hand-made frame one byte over, with its length field telling the truth.
        let claim = u32::try_from(MAX_SYNC_BYTES + 1)
            .expect("fits")
            .to_be_bytes();
        let mut bytes = frame(1, &claim);
        bytes.resize(MAX_ENVELOPE_BYTES + 1, 0);
        assert_eq!(Envelope::decode(&bytes), Err(too_large.clone()));
        // A small frame whose length field claims too much is refused before it is read.
        assert_eq!(Envelope::decode(&frame(1, &claim)), Err(too_large));
    }

    #[test]
    fn lengths_beyond_the_input_are_truncation_not_allocation() {
        let claims_4_gib = frame(1, &u32::MAX.to_be_bytes());
        assert!(matches!(
            Envelope::decode(&claims_4_gib),
            Err(EnvelopeError::TooLarge { .. })
        ));
        let claims_more_than_sent = frame(1, &1000u32.to_be_bytes());
        assert_eq!(
            Envelope::decode(&claims_more_than_sent),
            Err(EnvelopeError::Truncated {
                what: "sync message"
            })
        );
        let mut body = rejection_body(1, 1, 0);
        body.truncate(body.len() - 2);
        body.extend_from_slice(&4096u16.to_be_bytes());
        assert_eq!(
            Envelope::decode(&frame(2, &body)),
            Err(EnvelopeError::Truncated {
                what: "refused changes"
            })
        );
    }

    #[test]
    fn bad_headers_bodies_and_text_are_refused() {
        assert_eq!(
            Envelope::decode(&[]),
            Err(EnvelopeError::Truncated { what: "magic byte" })
        );
        assert_eq!(Envelope::decode(&[0x00]), Err(EnvelopeError::BadMagic(0)));
        assert_eq!(
            Envelope::decode(&[MAGIC, 9]),
            Err(EnvelopeError::UnsupportedVersion(9))
        );
        assert_eq!(
            Envelope::decode(&[MAGIC, VERSION, 4, 1]),
            Err(EnvelopeError::Truncated {
                what: "document id"
            })
        );
        assert_eq!(
            Envelope::decode(&frame(0, &[])),
            Err(EnvelopeError::UnknownBody(0))
        );
        assert_eq!(
            Envelope::decode(&frame(6, &[])),
            Err(EnvelopeError::UnknownBody(6))
        );
        assert_eq!(
            Envelope::decode(&frame(3, &[0])),
            Err(EnvelopeError::UnknownDocKind(0))
        );
        assert_eq!(
            Envelope::decode(&frame(4, &[0])),
            Err(EnvelopeError::TrailingBytes(1))
        );
        let mut body = rejection_body(2, 0, 0);
        body[1] = 0xc3; // "é" is UTF-8 but not ASCII
        body[2] = 0xa9;
        assert_eq!(
            Envelope::decode(&frame(2, &body)),
            Err(EnvelopeError::InvalidText { what: "rule" })
        );
        assert_eq!(
            Envelope::decode(&frame(5, &[0, 1, 0, 1, 0xff])),
            Err(EnvelopeError::InvalidText { what: "message" })
        );
        let non_ascii = env(Body::Rejection {
            rule: "é".into(),
            message: String::new(),
            changes: vec![],
        });
        assert_eq!(
            non_ascii.encode(),
            Err(EnvelopeError::InvalidText { what: "rule" })
        );
    }
}
