-- Receipts keep their hash chain without a unique index on `hash`. No query
-- looks a receipt up by its hash (`sqm verify` walks the chain in `seq`
-- order), and each hash covers the one before it, so two receipts cannot
-- share one without breaking the chain, which `verify` reports. The index
-- cost every change a write to a random page of it: with every commit of a
-- mass reconnect spread over the whole index, it was about half of what
-- SQLite spent storing a change.
--
-- SQLite cannot drop a column's UNIQUE constraint, so the table is rebuilt
-- with the same rows, and its AUTOINCREMENT counter is carried over so that
-- no receipt number is ever given twice.

CREATE TABLE receipts_rebuilt (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id       TEXT NOT NULL,
    change_hash  TEXT NOT NULL,
    username     TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    at           INTEGER NOT NULL,
    prev         TEXT NOT NULL,
    hash         TEXT NOT NULL
);
INSERT INTO receipts_rebuilt (seq, doc_id, change_hash, username, device_id, at, prev, hash)
    SELECT seq, doc_id, change_hash, username, device_id, at, prev, hash FROM receipts ORDER BY seq;
DELETE FROM sqlite_sequence WHERE name = 'receipts_rebuilt';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'receipts_rebuilt', seq FROM sqlite_sequence WHERE name = 'receipts';
DROP TABLE receipts;
ALTER TABLE receipts_rebuilt RENAME TO receipts;
