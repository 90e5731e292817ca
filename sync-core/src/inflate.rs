//! A bound on the work the Automerge chunks of a sync message ask for,
//! checked before Automerge reads them.
//!
//! Two things grow past the bytes sent. Deflate: a compressed change is one
//! deflate stream and a whole document or a bundle deflates some of its
//! columns; these are inflated here within the budget, so a deflate bomb
//! stops at the budget. Column encodings: a run of a million equal values,
//! or a group count of a million entries, takes a few bytes, and Automerge
//! decodes every one of them (a change of about a hundred bytes declaring
//! four million operations held the server for most of a second). So every
//! column of every chunk is walked here by its run lengths
//! ([`columns`]), and what it declares is counted before Automerge expands
//! anything:
//!
//! - rows: every value a reader decodes, [`ROW_WEIGHT`] bytes each, counted
//!   with the decompressed bytes against one budget;
//! - operations: the rows of the operation table (or its group entries,
//!   predecessors and successors, when more), bounded per message, and per
//!   change as the change's own header (or a bundle's or document's change
//!   table) declares them.
//!
//! A chunk that declares more than it holds (a group count past its grouped
//! columns, value lengths past the value bytes, a dependency index past the
//! changes) is malformed: Automerge would allocate for such a count, or index
//! past its tables and panic.

use std::borrow::Cow;
use std::io::Read;

mod columns;

use columns::{Cursor, Declared, Kind, Spec, declared, delta_values, uint_values};

/// The bytes each declared row counts for. A value Automerge decodes from a
/// column becomes at least a machine word in memory (an op id, a counter, a
/// slot of the operation it builds), and usually more: 16 bytes keeps the
/// cost of a row of work no lower than what it allocates, so the byte budget
/// bounds both.
pub const ROW_WEIGHT: usize = 16;

/// Why a chunk is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    /// It would grow past the budget (decompressed bytes and declared rows together).
    #[error("the changes would take more than {budget} bytes once decompressed")]
    TooLarge {
        /// The budget.
        budget: usize,
    },
    /// One change in it declares more operations than one change may hold.
    #[error("a change declares {declared} operations, over the limit of {limit}")]
    ChangeOps {
        /// The operations declared.
        declared: u64,
        /// The limit per change.
        limit: u64,
    },
    /// It declares more operations than the rest of the message may carry.
    #[error("the changes declare more operations than the {left} left for this message")]
    BatchOps {
        /// The operations the message had left.
        left: u64,
    },
    /// It is not a well-formed chunk.
    #[error("a chunk is malformed: {0}")]
    Malformed(&'static str),
}

fn malformed(what: &'static str) -> InflateError {
    InflateError::Malformed(what)
}

/// What a chunk may still take: the rest of its message's budgets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Bytes (decompressed, with [`ROW_WEIGHT`] per declared row).
    pub budget: usize,
    /// Operations, all changes together.
    pub ops: u64,
    /// Operations in any one change.
    pub ops_per_change: u64,
}

/// What one chunk declares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Measure {
    /// Its size once decompressed.
    pub bytes: usize,
    /// Values its columns declare, all columns together.
    pub rows: u64,
    /// Operations it holds, counted against the message's bound (the
    /// largest of its operation rows, its predecessor or successor entries
    /// and its changes: an empty change still costs a row of metadata).
    pub ops: u64,
    /// The most operations any one change in it declares.
    pub change_ops: u64,
}

impl Measure {
    /// What it counts against the byte budget.
    pub fn cost(&self) -> usize {
        let rows = usize::try_from(self.rows).unwrap_or(usize::MAX);
        self.bytes.saturating_add(rows.saturating_mul(ROW_WEIGHT))
    }
}

/// Measures one storage chunk (magic, checksum, type, length, data) within
/// `bounds`, without Automerge: refused past any of them, or when malformed.
pub fn measure(chunk: &[u8], bounds: Bounds) -> Result<Measure, InflateError> {
    let kind = *chunk.get(8).ok_or(malformed("truncated header"))?;
    let mut c = Cursor {
        bytes: chunk,
        at: 9,
    };
    let len = c.len()?;
    let header = c.at;
    let data = c.skip(len)?;
    let too_large = InflateError::TooLarge {
        budget: bounds.budget,
    };
    let inner = Bounds {
        budget: bounds.budget.checked_sub(header).ok_or(too_large.clone())?,
        ..bounds
    };
    let mut m = match kind {
        1 => change(data, inner),
        2 => inflate(data, inner.budget).and_then(|d| change(&d, inner)),
        0 => document(data, inner),
        3 => bundle(data, inner),
        _ => Err(malformed("unknown chunk type")),
    }
    .map_err(|e| match e {
        InflateError::TooLarge { .. } => too_large.clone(),
        other => other,
    })?;
    m.bytes += header;
    if m.cost() > bounds.budget {
        return Err(too_large);
    }
    Ok(m)
}

/// A deflate stream inflated, refused past `budget` bytes.
fn inflate(data: &[u8], budget: usize) -> Result<Vec<u8>, InflateError> {
    let limit = u64::try_from(budget).unwrap_or(u64::MAX).saturating_add(1);
    let mut out = Vec::new();
    flate2::bufread::DeflateDecoder::new(data)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|_| malformed("bad deflate data"))?;
    if out.len() > budget {
        return Err(InflateError::TooLarge { budget });
    }
    Ok(out)
}

/// A column table: each column's spec, its bytes (inflated) and what it declares.
struct Table<'a> {
    cols: Vec<Column<'a>>,
}

type Column<'a> = (Spec, Cow<'a, [u8]>, Declared);

/// Reads a column table's specs and lengths.
fn specs(c: &mut Cursor<'_>) -> Result<Vec<(Spec, usize)>, InflateError> {
    let count = c.uleb()?;
    let mut out = Vec::new();
    for _ in 0..count {
        let spec = u32::try_from(c.uleb()?).map_err(|_| malformed("bad column"))?;
        out.push((Spec(spec), c.len()?));
    }
    Ok(out)
}

impl<'a> Table<'a> {
    /// Reads a table's column data (at `c`), inflating deflated columns
    /// within `budget` (less `used`); adds the bytes to `used`.
    fn read(
        specs: Vec<(Spec, usize)>,
        c: &mut Cursor<'a>,
        budget: usize,
        used: &mut usize,
    ) -> Result<Table<'a>, InflateError> {
        let mut cols = Vec::with_capacity(specs.len());
        for (spec, len) in specs {
            let raw = c.skip(len)?;
            let bytes = if spec.deflated() {
                Cow::Owned(inflate(raw, budget.saturating_sub(*used))?)
            } else {
                Cow::Borrowed(raw)
            };
            *used = used.saturating_add(bytes.len());
            if *used > budget {
                return Err(InflateError::TooLarge { budget });
            }
            let d = declared(spec.kind(), &bytes)?;
            cols.push((spec, bytes, d));
        }
        let table = Table { cols };
        table.check_groups()?;
        Ok(table)
    }

    /// Every value a reader decodes from the table.
    fn rows(&self) -> u64 {
        self.cols
            .iter()
            .fold(0u64, |n, (_, _, d)| n.saturating_add(d.rows))
    }

    /// The table's rows as one table of operations: the most rows of any
    /// column that is not grouped under another, or the most entries of a group.
    fn op_rows(&self) -> u64 {
        self.cols
            .iter()
            .map(|(spec, _, d)| match spec.kind() {
                Kind::Group => d.rows.max(d.sum),
                Kind::Value => 0,
                _ if self.grouped(*spec) => 0,
                _ => d.rows,
            })
            .max()
            .unwrap_or(0)
    }

    fn grouped(&self, spec: Spec) -> bool {
        spec.kind() != Kind::Group
            && self
                .cols
                .iter()
                .any(|(s, _, _)| s.kind() == Kind::Group && s.id() == spec.id())
    }

    /// Groups declare no more entries than their grouped columns hold, and
    /// value lengths no more bytes than their value column: Automerge would
    /// reserve room for such counts, or slice past the data, before noticing.
    fn check_groups(&self) -> Result<(), InflateError> {
        for (spec, _, d) in &self.cols {
            let short = |of: &Column<'_>| {
                let held = if of.0.kind() == Kind::Value {
                    of.2.sum
                } else {
                    of.2.rows
                };
                held < d.sum
            };
            let same_id = || self.cols.iter().filter(|o| o.0.id() == spec.id());
            match spec.kind() {
                Kind::Group if same_id().any(|o| o.0 != *spec && short(o)) => {
                    return Err(malformed("a group declares more entries than it holds"));
                }
                Kind::ValueMeta if d.sum > 0 => {
                    let held: u64 = same_id()
                        .filter(|o| o.0.kind() == Kind::Value)
                        .map(|o| o.2.sum)
                        .sum();
                    if held < d.sum {
                        return Err(malformed("values declare more bytes than they hold"));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn column(&self, id: u32, kind: Kind) -> Option<&[u8]> {
        self.cols
            .iter()
            .find(|(s, _, _)| s.is(id, kind))
            .map(|(_, b, _)| b.as_ref())
    }
}

/// Refuses what passes the bounds so far: first what one change declares
/// (the clearest reason to give), then the message's operations, then its
/// bytes and rows. Called before any value is decoded, and again once the
/// operations of each change are known.
fn within(m: &Measure, bounds: Bounds) -> Result<(), InflateError> {
    if m.change_ops > bounds.ops_per_change {
        return Err(InflateError::ChangeOps {
            declared: m.change_ops,
            limit: bounds.ops_per_change,
        });
    }
    if m.ops > bounds.ops {
        return Err(InflateError::BatchOps { left: bounds.ops });
    }
    if m.cost() > bounds.budget {
        return Err(InflateError::TooLarge {
            budget: bounds.budget,
        });
    }
    Ok(())
}

/// A change chunk's data (automerge's `Change::parse_following_header`):
/// dependencies, actor, seq, start op, time, message, other actors, the
/// operation columns, extra bytes.
fn change(data: &[u8], bounds: Bounds) -> Result<Measure, InflateError> {
    let mut c = Cursor::new(data);
    let deps = c.len()?;
    c.skip(
        deps.checked_mul(32)
            .ok_or(malformed("too many dependencies"))?,
    )?;
    let actor = c.len()?;
    c.skip(actor)?;
    c.uleb()?;
    c.uleb()?;
    c.sleb()?;
    let message = c.len()?;
    c.skip(message)?;
    for _ in 0..c.uleb()? {
        let n = c.len()?;
        c.skip(n)?;
    }
    let specs = specs(&mut c)?;
    if specs.iter().any(|(s, _)| s.deflated()) {
        return Err(malformed("a change's columns are compressed"));
    }
    let mut bytes = 0;
    let table = Table::read(specs, &mut c, bounds.budget, &mut bytes)?;
    let ops = table.op_rows();
    let m = Measure {
        bytes: data.len(),
        rows: table.rows(),
        ops,
        change_ops: ops,
    };
    within(&m, bounds)?;
    Ok(m)
}

/// Column ids of a document's change table (automerge `change_graph::ids`).
mod doc_changes {
    pub(super) const MAX_OP: u32 = 1;
    pub(super) const DEPS: u32 = 4;
}

/// A document chunk's data (automerge's `Document::parse`): actors, heads,
/// the change and operation column tables, their data, head indices.
fn document(data: &[u8], bounds: Bounds) -> Result<Measure, InflateError> {
    let mut c = Cursor::new(data);
    for _ in 0..c.uleb()? {
        let n = c.len()?;
        c.skip(n)?;
    }
    let heads = c.len()?;
    c.skip(heads.checked_mul(32).ok_or(malformed("too many heads"))?)?;
    let change_specs = specs(&mut c)?;
    let op_specs = specs(&mut c)?;
    let mut bytes = c.at;
    let changes = Table::read(change_specs, &mut c, bounds.budget, &mut bytes)?;
    let ops_table = Table::read(op_specs, &mut c, bounds.budget, &mut bytes)?;
    bytes = bytes.saturating_add(c.rest().len());
    let mut m = Measure {
        bytes,
        rows: changes.rows().saturating_add(ops_table.rows()),
        ops: ops_table.op_rows().max(changes.op_rows()),
        change_ops: 0,
    };
    within(&m, bounds)?;
    // Automerge rebuilds each change with room for the operations its
    // metadata declares: its max op less the largest max op of its dependencies.
    let max_ops = changes
        .column(doc_changes::MAX_OP, Kind::Delta)
        .map(delta_values)
        .transpose()?
        .unwrap_or_default();
    let counts = changes
        .column(doc_changes::DEPS, Kind::Group)
        .map(uint_values)
        .transpose()?
        .unwrap_or_default();
    let deps = changes
        .column(doc_changes::DEPS, Kind::Delta)
        .map(delta_values)
        .transpose()?
        .unwrap_or_default();
    let mut deps = deps.into_iter();
    let mut total = 0u64;
    for (i, max_op) in max_ops.iter().enumerate() {
        let mut last = 0i64;
        for _ in 0..counts.get(i).copied().unwrap_or(0) {
            let dep = deps.next().ok_or(malformed("a dependency is missing"))?;
            let of = usize::try_from(dep)
                .ok()
                .and_then(|d| max_ops.get(d))
                .ok_or(malformed("a dependency names no change"))?;
            last = last.max(*of);
        }
        let n = max_op
            .checked_sub(last)
            .and_then(|n| u64::try_from(n).ok())
            .ok_or(malformed("a change ends before its dependencies"))?;
        m.change_ops = m.change_ops.max(n);
        total = total.saturating_add(n);
    }
    m.ops = m.ops.max(total);
    within(&m, bounds)?;
    Ok(m)
}

/// Column ids of a bundle's change table (automerge `bundle::builder::change`).
mod bundle_changes {
    pub(super) const START_OP: u32 = 1;
    pub(super) const MAX_OP: u32 = 2;
}

/// A bundle chunk's data (automerge's `BundleStorage::parse_following_header`):
/// dependencies, actors, the change table and its data, the operation table
/// and its data.
fn bundle(data: &[u8], bounds: Bounds) -> Result<Measure, InflateError> {
    let mut c = Cursor::new(data);
    let deps = c.len()?;
    c.skip(
        deps.checked_mul(32)
            .ok_or(malformed("too many dependencies"))?,
    )?;
    for _ in 0..c.uleb()? {
        let n = c.len()?;
        c.skip(n)?;
    }
    let mut bytes = c.at;
    let change_specs = specs(&mut c)?;
    let changes = Table::read(change_specs, &mut c, bounds.budget, &mut bytes)?;
    let op_specs = specs(&mut c)?;
    let ops_table = Table::read(op_specs, &mut c, bounds.budget, &mut bytes)?;
    bytes = bytes.saturating_add(c.rest().len());
    let mut m = Measure {
        bytes,
        rows: changes.rows().saturating_add(ops_table.rows()),
        ops: ops_table.op_rows().max(changes.op_rows()),
        change_ops: 0,
    };
    within(&m, bounds)?;
    // Automerge makes room for each change's operations from its start
    // and max op, and computes their number without checking the order.
    let starts = changes
        .column(bundle_changes::START_OP, Kind::Delta)
        .map(delta_values)
        .transpose()?
        .unwrap_or_default();
    let maxes = changes
        .column(bundle_changes::MAX_OP, Kind::Delta)
        .map(delta_values)
        .transpose()?
        .unwrap_or_default();
    let mut total = 0u64;
    for (start, max) in starts.iter().zip(&maxes) {
        let n = max
            .checked_add(1)
            .and_then(|m| m.checked_sub(*start))
            .and_then(|n| u64::try_from(n).ok())
            .ok_or(malformed("a change ends before it starts"))?;
        m.change_ops = m.change_ops.max(n);
        total = total.saturating_add(n);
    }
    m.ops = m.ops.max(total);
    within(&m, bounds)?;
    Ok(m)
}

/// Hand-made chunks for tests: the bytes of a change whose columns are given.
#[cfg(any(test, feature = "testing"))]
pub mod forge {
    /// Appends `n` as unsigned LEB128.
    pub fn uleb(mut n: u64, out: &mut Vec<u8>) {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            out.push(if n > 0 { b | 0x80 } else { b });
            if n == 0 {
                return;
            }
        }
    }

    /// Appends `n` as signed LEB128.
    pub fn sleb(mut n: i64, out: &mut Vec<u8>) {
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

    /// A run-length column holding one run of `count` copies of the unsigned `value`.
    pub fn run(count: i64, value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        sleb(count, &mut out);
        uleb(value, &mut out);
        out
    }

    /// A storage chunk of `kind` around `data` (the checksum is left zero:
    /// it is checked only when a document is loaded whole).
    pub fn chunk(kind: u8, data: &[u8]) -> Vec<u8> {
        let mut out = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, kind];
        uleb(data.len() as u64, &mut out);
        out.extend_from_slice(data);
        out
    }

    /// A change chunk by `actor` (seq 1, start op 1) whose operation columns
    /// are `columns`: (spec, bytes), in Automerge's column order.
    pub fn change(actor: &[u8], columns: &[(u32, Vec<u8>)]) -> Vec<u8> {
        let mut d = Vec::new();
        uleb(0, &mut d); // no dependencies
        uleb(actor.len() as u64, &mut d);
        d.extend_from_slice(actor);
        uleb(1, &mut d); // seq
        uleb(1, &mut d); // start op
        sleb(0, &mut d); // time
        uleb(0, &mut d); // no message
        uleb(0, &mut d); // no other actors
        uleb(columns.len() as u64, &mut d);
        for (spec, bytes) in columns {
            uleb(u64::from(*spec), &mut d);
            uleb(bytes.len() as u64, &mut d);
        }
        for (_, bytes) in columns {
            d.extend_from_slice(bytes);
        }
        chunk(1, &d)
    }

    /// A change of `ops` operations, each a put of null to the root key
    /// `k`, in a few dozen bytes whatever `ops` is: one run per column.
    pub fn many_ops(actor: &[u8], ops: i64) -> Vec<u8> {
        let mut key = Vec::new();
        sleb(ops, &mut key);
        uleb(1, &mut key);
        key.push(b'k');
        let mut insert = Vec::new();
        uleb(ops as u64, &mut insert);
        change(
            actor,
            &[
                (1 << 4 | 5, key),         // key strings: `ops` times "k"
                (3 << 4 | 4, insert),      // insert: `ops` times false
                (4 << 4 | 2, run(ops, 1)), // action: `ops` puts
                (5 << 4 | 6, run(ops, 0)), // value metadata: `ops` nulls
                (7 << 4, run(ops, 0)),     // predecessors: none each
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ROOT};

    use super::forge::{change, chunk, many_ops, run, sleb, uleb};
    use super::*;

    fn deflate(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        let _ = e.write_all(bytes);
        e.finish().unwrap_or_default()
    }

    fn roomy(budget: usize) -> Bounds {
        Bounds {
            budget,
            ops: u64::MAX,
            ops_per_change: u64::MAX,
        }
    }

    #[test]
    fn a_deflate_bomb_is_refused_just_over_the_budget_and_passes_at_it() {
        let bomb = deflate(&vec![0u8; 1 << 20]);
        let c = chunk(2, &bomb);
        let header = c.len() - bomb.len();
        let at = (1 << 20) + header;
        assert_eq!(measure(&c, roomy(at)).map(|m| m.cost()), Ok(at));
        assert_eq!(
            measure(&c, roomy(at - 1)),
            Err(InflateError::TooLarge { budget: at - 1 })
        );
    }

    #[test]
    fn real_documents_measure_at_least_their_saved_size() -> Result<(), automerge::AutomergeError> {
        let mut doc = AutoCommit::new();
        for i in 0..2000 {
            doc.put(ROOT, format!("k{i}"), "the same text again and again")?;
        }
        let saved = doc.save();
        let m = measure(&saved, roomy(1 << 30));
        assert!(
            m.as_ref()
                .is_ok_and(|m| m.bytes >= saved.len() && m.ops == 2000),
            "{m:?}"
        );
        assert!(matches!(
            measure(&saved, roomy(saved.len())),
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
            let r = measure(&saved[..cut], roomy(8));
            assert!(r.is_err(), "cut at {cut}: {r:?}");
        }
    }

    #[test]
    fn a_hundred_bytes_declaring_four_million_operations_are_refused_unread() {
        let bomb = many_ops(&[7; 16], 4_000_000);
        assert!(bomb.len() < 100, "{} bytes", bomb.len());
        let bounds = Bounds {
            budget: 64 << 20,
            ops: 100_000,
            ops_per_change: 10_000,
        };
        assert_eq!(
            measure(&bomb, bounds),
            Err(InflateError::ChangeOps {
                declared: 4_000_000,
                limit: 10_000
            })
        );
        let m = measure(&bomb, roomy(usize::MAX)).expect("measures");
        assert_eq!(
            (m.ops, m.change_ops, m.rows),
            (4_000_000, 4_000_000, 20_000_000)
        );
        // Five columns of four million rows: past the bytes budget too.
        assert_eq!(
            measure(&bomb, roomy(64 << 20)),
            Err(InflateError::TooLarge { budget: 64 << 20 })
        );
    }

    #[test]
    fn operations_pass_at_each_limit_and_are_refused_one_over() {
        let bounds = Bounds {
            budget: 64 << 20,
            ops: 800,
            ops_per_change: 500,
        };
        let at = measure(&many_ops(&[7; 16], 500), bounds).expect("at the limit");
        assert_eq!(at.change_ops, 500);
        assert_eq!(
            measure(&many_ops(&[7; 16], 501), bounds),
            Err(InflateError::ChangeOps {
                declared: 501,
                limit: 500
            })
        );
        // What is left of the message's operations: 300 after a change of 500.
        let left = Bounds { ops: 300, ..bounds };
        assert!(measure(&many_ops(&[7; 16], 300), left).is_ok());
        assert_eq!(
            measure(&many_ops(&[7; 16], 301), left),
            Err(InflateError::BatchOps { left: 300 })
        );
    }

    /// One put whose predecessor group declares `preds` entries, with
    /// predecessor columns of `held` rows.
    fn pred_bomb(preds: u64, held: i64) -> Vec<u8> {
        let mut key = Vec::new();
        sleb(1, &mut key);
        uleb(1, &mut key);
        key.push(b'k');
        let mut insert = Vec::new();
        uleb(1, &mut insert);
        let mut ctr = Vec::new();
        sleb(held, &mut ctr);
        sleb(1, &mut ctr);
        change(
            &[7; 16],
            &[
                (1 << 4 | 5, key),
                (3 << 4 | 4, insert),
                (4 << 4 | 2, run(1, 1)),
                (5 << 4 | 6, run(1, 0)),
                (7 << 4, run(1, preds)),
                (7 << 4 | 1, run(held, 0)),
                (7 << 4 | 3, ctr),
            ],
        )
    }

    #[test]
    fn predecessors_count_as_operations_and_may_not_pass_their_columns() {
        let bounds = Bounds {
            budget: 64 << 20,
            ops: 100_000,
            ops_per_change: 10_000,
        };
        // One operation with a million predecessors: a million operations' work.
        assert_eq!(
            measure(&pred_bomb(1_000_000, 1_000_000), bounds),
            Err(InflateError::ChangeOps {
                declared: 1_000_000,
                limit: 10_000
            })
        );
        // A count past what its columns hold: Automerge would reserve room for it.
        assert_eq!(
            measure(&pred_bomb(1 << 50, 2), bounds),
            Err(InflateError::Malformed(
                "a group declares more entries than it holds"
            ))
        );
        assert!(measure(&pred_bomb(2, 2), bounds).is_ok());
    }

    #[test]
    fn a_change_measures_its_operations_exactly() -> Result<(), automerge::AutomergeError> {
        let mut doc = AutoCommit::new();
        for i in 0..40 {
            doc.put(ROOT, format!("k{i}"), i)?;
        }
        let change = doc.get_last_local_change().map(|c| c.raw_bytes().to_vec());
        let m = measure(&change.unwrap_or_default(), roomy(1 << 20));
        assert_eq!(m.map(|m| (m.ops, m.change_ops)), Ok((40, 40)));
        Ok(())
    }
}
