//! Automerge's column encodings, walked without expanding them: how many
//! rows each column declares, and the sums a few kinds of column stand for,
//! read from run lengths in time proportional to the bytes.
//!
//! The encodings (automerge 0.12, `columnar/encoding`, and hexane, which
//! reads the same bytes): a run-length column is a sequence of a signed
//! count and then one value (a run), `-count` values (a literal run) or, for
//! a count of zero, an unsigned count of nulls; a delta column is a
//! run-length column of differences; a boolean column alternates unsigned
//! counts of false and true; a value column is raw bytes whose lengths are in
//! its value-metadata column (`length << 4 | type`); a group column is a
//! run-length column of counts of entries in the columns that share its id.

use super::InflateError;

fn malformed(what: &'static str) -> InflateError {
    InflateError::Malformed(what)
}

/// Reads LEB128 numbers from a column or chunk.
pub(super) struct Cursor<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) at: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Cursor<'a> {
        Cursor { bytes, at: 0 }
    }

    pub(super) fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn byte(&mut self) -> Result<u8, InflateError> {
        let b = *self
            .bytes
            .get(self.at)
            .ok_or(malformed("truncated number"))?;
        self.at += 1;
        Ok(b)
    }

    pub(super) fn uleb(&mut self) -> Result<u64, InflateError> {
        let mut value: u64 = 0;
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            let part = u64::from(b & 0x7f);
            if shift == 63 && part > 1 || shift > 63 {
                return Err(malformed("number too long"));
            }
            value |= part << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
        }
    }

    pub(super) fn sleb(&mut self) -> Result<i64, InflateError> {
        let mut value: i64 = 0;
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            if shift > 63 {
                return Err(malformed("number too long"));
            }
            value |= i64::from(b & 0x7f).wrapping_shl(shift);
            shift += 7;
            if b & 0x80 == 0 {
                if shift < 64 && b & 0x40 != 0 {
                    value |= -1i64 << shift;
                }
                return Ok(value);
            }
        }
    }

    pub(super) fn len(&mut self) -> Result<usize, InflateError> {
        usize::try_from(self.uleb()?).map_err(|_| malformed("length too large"))
    }

    pub(super) fn skip(&mut self, n: usize) -> Result<&'a [u8], InflateError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or(malformed("length beyond the data"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    pub(super) fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.at..).unwrap_or_default()
    }
}

/// A column specification: id, type and whether its data is deflated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Spec(pub(super) u32);

/// How a column's bytes are encoded (the low three bits of its spec).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Group,
    Actor,
    Integer,
    Delta,
    Boolean,
    Text,
    ValueMeta,
    Value,
}

impl Spec {
    pub(super) fn id(self) -> u32 {
        self.0 >> 4
    }

    pub(super) fn deflated(self) -> bool {
        self.0 & 0b1000 != 0
    }

    pub(super) fn kind(self) -> Kind {
        match self.0 & 0b111 {
            0 => Kind::Group,
            1 => Kind::Actor,
            2 => Kind::Integer,
            3 => Kind::Delta,
            4 => Kind::Boolean,
            5 => Kind::Text,
            6 => Kind::ValueMeta,
            _ => Kind::Value,
        }
    }

    pub(super) fn is(self, id: u32, kind: Kind) -> bool {
        self.id() == id && self.kind() == kind
    }
}

/// What one column declares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Declared {
    /// Values a reader decodes from it (a value column: none, its bytes are counted as bytes).
    pub(super) rows: u64,
    /// A group column: the entries it declares in its grouped columns. A
    /// value-metadata column: the bytes its values take. A value column: its bytes.
    pub(super) sum: u64,
}

/// Reads what a column declares from its (inflated) bytes.
pub(super) fn declared(kind: Kind, data: &[u8]) -> Result<Declared, InflateError> {
    match kind {
        Kind::Value => Ok(Declared {
            rows: 0,
            sum: u64::try_from(data.len()).unwrap_or(u64::MAX),
        }),
        Kind::Boolean => {
            let mut c = Cursor::new(data);
            let mut rows = 0u64;
            while !c.done() {
                rows = rows.saturating_add(c.uleb()?);
            }
            Ok(Declared { rows, sum: 0 })
        }
        Kind::Group => runs(data, |c| c.uleb()),
        Kind::ValueMeta => runs(data, |c| Ok(c.uleb()? >> 4)),
        Kind::Actor | Kind::Integer => runs(data, |c| c.uleb().map(|_| 0)),
        Kind::Delta => runs(data, |c| c.sleb().map(|_| 0)),
        Kind::Text => runs(data, |c| {
            let n = c.len()?;
            c.skip(n).map(|_| 0)
        }),
    }
}

/// Walks a run-length column: its rows, and the sum of `value` over them.
/// Each value read consumes at least one byte, so the walk is linear in the bytes.
fn runs(
    data: &[u8],
    mut value: impl FnMut(&mut Cursor<'_>) -> Result<u64, InflateError>,
) -> Result<Declared, InflateError> {
    let mut c = Cursor::new(data);
    let mut d = Declared::default();
    while !c.done() {
        let count = c.sleb()?;
        if count > 0 {
            let n = count.unsigned_abs();
            let v = value(&mut c)?;
            d.rows = d.rows.saturating_add(n);
            d.sum = d.sum.saturating_add(n.saturating_mul(v));
        } else if count < 0 {
            // Automerge negates the count: the most negative one cannot be.
            if count == i64::MIN {
                return Err(malformed("literal run too long"));
            }
            let n = count.unsigned_abs();
            for _ in 0..n {
                d.sum = d.sum.saturating_add(value(&mut c)?);
            }
            d.rows = d.rows.saturating_add(n);
        } else {
            d.rows = d.rows.saturating_add(c.uleb()?);
        }
    }
    Ok(d)
}

/// The values of a delta column, one per row (nulls refused: the columns
/// this is used for never hold them). Only called once the rows are known
/// to be within bounds.
pub(super) fn delta_values(data: &[u8]) -> Result<Vec<i64>, InflateError> {
    let mut out = Vec::new();
    let mut c = Cursor::new(data);
    let mut last: i64 = 0;
    let mut push = |delta: i64, out: &mut Vec<i64>| -> Result<(), InflateError> {
        last = last
            .checked_add(delta)
            .ok_or(malformed("a counter overflows"))?;
        out.push(last);
        Ok(())
    };
    while !c.done() {
        let count = c.sleb()?;
        if count > 0 {
            let delta = c.sleb()?;
            for _ in 0..count {
                push(delta, &mut out)?;
            }
        } else if count < 0 && count != i64::MIN {
            for _ in 0..count.unsigned_abs() {
                let delta = c.sleb()?;
                push(delta, &mut out)?;
            }
        } else {
            return Err(malformed("a counter is missing"));
        }
    }
    Ok(out)
}

/// The values of a run-length column of unsigned numbers, one per row
/// (nulls read as zero). Only called once the rows are known to be within bounds.
pub(super) fn uint_values(data: &[u8]) -> Result<Vec<u64>, InflateError> {
    let mut out = Vec::new();
    let mut c = Cursor::new(data);
    while !c.done() {
        let count = c.sleb()?;
        if count > 0 {
            let v = c.uleb()?;
            out.extend(std::iter::repeat_n(v, count.unsigned_abs() as usize));
        } else if count < 0 && count != i64::MIN {
            for _ in 0..count.unsigned_abs() {
                out.push(c.uleb()?);
            }
        } else if count == 0 {
            let n = c.len()?;
            out.extend(std::iter::repeat_n(0, n));
        } else {
            return Err(malformed("literal run too long"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uleb(mut n: u64, out: &mut Vec<u8>) {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            out.push(if n > 0 { b | 0x80 } else { b });
            if n == 0 {
                return;
            }
        }
    }

    fn sleb(mut n: i64, out: &mut Vec<u8>) {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            let done = (n == 0 && b & 0x40 == 0) || (n == -1 && b & 0x40 != 0);
            out.push(if done { b } else { b | 0x80 });
            if done {
                return;
            }
        }
    }

    #[test]
    fn signed_numbers_read_back_at_the_edges() -> Result<(), InflateError> {
        for n in [
            0,
            1,
            -1,
            63,
            64,
            -64,
            -65,
            i64::MAX,
            i64::MIN,
            1 << 40,
            -(1 << 40),
        ] {
            let mut b = Vec::new();
            sleb(n, &mut b);
            assert_eq!(Cursor::new(&b).sleb()?, n, "{n}");
        }
        for n in [0, 1, 127, 128, u64::MAX] {
            let mut b = Vec::new();
            uleb(n, &mut b);
            assert_eq!(Cursor::new(&b).uleb()?, n, "{n}");
        }
        Ok(())
    }

    #[test]
    fn runs_literals_and_nulls_count_their_rows_and_sums() -> Result<(), InflateError> {
        // A run of 4 million 3s, a literal run of 2, 5 nulls: in 12 bytes.
        let mut b = Vec::new();
        sleb(4_000_000, &mut b);
        uleb(3, &mut b);
        sleb(-2, &mut b);
        uleb(7, &mut b);
        uleb(9, &mut b);
        sleb(0, &mut b);
        uleb(5, &mut b);
        assert!(b.len() < 12);
        let d = declared(Kind::Group, &b)?;
        assert_eq!(d.rows, 4_000_007);
        assert_eq!(d.sum, 12_000_016);
        assert_eq!(uint_values(&b)?.len(), 4_000_007);
        Ok(())
    }

    #[test]
    fn a_literal_run_longer_than_its_bytes_is_malformed() {
        let mut b = Vec::new();
        sleb(-1_000_000, &mut b);
        uleb(1, &mut b);
        assert!(declared(Kind::Integer, &b).is_err());
    }
}
