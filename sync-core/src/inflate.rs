//! A bound on how large the Automerge chunks of a sync message grow once
//! decompressed, checked before Automerge decompresses them (it would
//! allocate whatever a deflate bomb asks for). A compressed change is one
//! deflate stream; a whole document (sent by sync when the peer lacks most of
//! it) deflates some of its columns; both are measured by inflating with a
//! budget, without keeping the output.
//!
//! Uncompressed changes (most of them: Automerge only compresses large ones)
//! cost nothing to measure. A bundle is counted at deflate's worst-case
//! expansion (about 1032 times), which keeps any bundle bomb under the budget.

use std::io::Read;

/// Deflate's worst-case expansion ratio.
const MAX_RATIO: usize = 1032;

/// Why a chunk is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    /// It would grow past the budget.
    #[error("the changes would take more than {budget} bytes once decompressed")]
    TooLarge {
        /// The budget.
        budget: usize,
    },
    /// It is not a well-formed chunk.
    #[error("a chunk is malformed: {0}")]
    Malformed(&'static str),
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn uleb(&mut self) -> Result<u64, InflateError> {
        let mut value: u64 = 0;
        let mut shift = 0;
        loop {
            let b = *self
                .bytes
                .get(self.at)
                .ok_or(InflateError::Malformed("truncated number"))?;
            self.at += 1;
            value |= u64::from(b & 0x7f)
                .checked_shl(shift)
                .ok_or(InflateError::Malformed("number too long"))?;
            if b & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
            if shift > 63 {
                return Err(InflateError::Malformed("number too long"));
            }
        }
    }

    fn len(&mut self) -> Result<usize, InflateError> {
        usize::try_from(self.uleb()?).map_err(|_| InflateError::Malformed("length too large"))
    }

    fn skip(&mut self, n: usize) -> Result<&'a [u8], InflateError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or(InflateError::Malformed("length beyond the data"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
}

/// The size of a deflate stream once inflated, refused past `budget`.
fn inflated(data: &[u8], budget: usize) -> Result<usize, InflateError> {
    let limit = u64::try_from(budget).unwrap_or(u64::MAX).saturating_add(1);
    let mut decoder = flate2::bufread::DeflateDecoder::new(data).take(limit);
    let n = std::io::copy(&mut decoder, &mut std::io::sink())
        .map_err(|_| InflateError::Malformed("bad deflate data"))?;
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    if n > budget {
        Err(InflateError::TooLarge { budget })
    } else {
        Ok(n)
    }
}

/// The decompressed size of one storage chunk (magic, checksum, type, length,
/// data), refused past `budget`.
pub fn chunk_size(chunk: &[u8], budget: usize) -> Result<usize, InflateError> {
    let mut c = Cursor {
        bytes: chunk,
        at: 9,
    };
    let kind = *chunk
        .get(8)
        .ok_or(InflateError::Malformed("truncated header"))?;
    let len = c.len()?;
    let header = c.at;
    let data = c.skip(len)?;
    let size = match kind {
        1 => Ok(chunk.len()),
        2 => inflated(data, budget.saturating_sub(header)).map(|n| n + header),
        0 => document_size(data, budget.saturating_sub(header)).map(|n| n + header),
        _ => {
            let worst = chunk.len().saturating_mul(MAX_RATIO);
            if worst <= budget {
                Ok(worst)
            } else {
                Err(InflateError::TooLarge { budget })
            }
        }
    }
    .map_err(|e| match e {
        InflateError::TooLarge { .. } => InflateError::TooLarge { budget },
        other => other,
    })?;
    if size > budget {
        return Err(InflateError::TooLarge { budget });
    }
    Ok(size)
}

/// A document chunk's data: actors, heads, two column tables, their data, head indices.
fn document_size(data: &[u8], budget: usize) -> Result<usize, InflateError> {
    let mut c = Cursor { bytes: data, at: 0 };
    for _ in 0..c.uleb()? {
        let n = c.len()?;
        c.skip(n)?;
    }
    let heads = c.len()?;
    c.skip(
        heads
            .checked_mul(32)
            .ok_or(InflateError::Malformed("too many heads"))?,
    )?;
    let mut columns = Vec::new();
    for _ in 0..2 {
        let count = c.len()?;
        if count > 1024 {
            return Err(InflateError::Malformed("too many columns"));
        }
        for _ in 0..count {
            let spec = c.uleb()?;
            columns.push((spec & 0b1000 != 0, c.len()?));
        }
    }
    let mut total = c.at;
    for (deflated, len) in columns {
        let bytes = c.skip(len)?;
        total = total.saturating_add(if deflated {
            inflated(bytes, budget.saturating_sub(total))?
        } else {
            len
        });
        if total > budget {
            return Err(InflateError::TooLarge { budget });
        }
    }
    Ok(total + (data.len() - c.at))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ROOT};

    use super::*;

    fn deflate(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        let _ = e.write_all(bytes);
        e.finish().unwrap_or_default()
    }

    fn chunk(kind: u8, data: &[u8]) -> Vec<u8> {
        let mut out = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, kind];
        let mut n = data.len();
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            out.push(if n > 0 { b | 0x80 } else { b });
            if n == 0 {
                break;
            }
        }
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn a_deflate_bomb_is_refused_just_over_the_budget_and_passes_at_it() {
        let bomb = deflate(&vec![0u8; 1 << 20]);
        let c = chunk(2, &bomb);
        let header = c.len() - bomb.len();
        assert_eq!(chunk_size(&c, (1 << 20) + header), Ok((1 << 20) + header));
        assert_eq!(
            chunk_size(&c, (1 << 20) + header - 1),
            Err(InflateError::TooLarge {
                budget: (1 << 20) + header - 1
            })
        );
    }

    #[test]
    fn real_documents_measure_at_least_their_saved_size() -> Result<(), automerge::AutomergeError> {
        let mut doc = AutoCommit::new();
        for i in 0..2000 {
            doc.put(ROOT, format!("k{i}"), "the same text again and again")?;
        }
        let saved = doc.save();
        let size = chunk_size(&saved, 1 << 30);
        assert!(size.as_ref().is_ok_and(|n| *n >= saved.len()), "{size:?}");
        assert!(matches!(
            chunk_size(&saved, saved.len()),
            Err(InflateError::TooLarge { .. })
        ));
        Ok(())
    }

    #[test]
    fn truncated_chunks_are_malformed_not_panics() {
        let mut doc = AutoCommit::new();
        let _ = doc.put(ROOT, "k", "v".repeat(5000));
        let saved = doc.save();
        for cut in [9, 10, 12, saved.len() / 2, saved.len() - 1] {
            let r = chunk_size(&saved[..cut], 8);
            assert!(r.is_err(), "cut at {cut}: {r:?}");
        }
    }
}
