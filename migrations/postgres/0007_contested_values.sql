-- Contested answers and findings (issue 15, DESIGN §3).
--
-- When auditors answer one checklist item, or write one finding, at the same
-- time on tablets that had not seen each other's value, the document keeps
-- every value. One row per value, in the order every replica shows them,
-- until the lead auditor settles the item; the writer replaces an audit's
-- rows together with its findings rows.

CREATE TABLE contested_values (
    audit_id  TEXT NOT NULL REFERENCES documents (id),
    place     TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    by_user   TEXT NOT NULL,
    at        TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (audit_id, place, seq)
);
