-- Contested values of any document (issue 15 item 1): an NC's description,
-- correction, root cause, verification and actions, and an audit's notes,
-- keep every concurrent value as an audit's answers and findings do. The
-- rows name their document, whatever its kind.

ALTER TABLE contested_values RENAME COLUMN audit_id TO doc_id;

-- An NC on a clause no process carries (3.4, management review) names no
-- process: its unit's nodal officers answer it. SQLite drops a NOT NULL
-- only by making the table again (its rows are derived, kept as they are).
CREATE TABLE ncs_new (
    doc_id        TEXT PRIMARY KEY REFERENCES documents (id),
    number        TEXT,
    unit          TEXT NOT NULL,
    audit_id      TEXT NOT NULL,
    finding_id    TEXT NOT NULL,
    process       TEXT,
    clause        TEXT NOT NULL,
    class         TEXT NOT NULL,
    state         TEXT NOT NULL,
    raised_on     TEXT NOT NULL,
    response_due  TEXT NOT NULL,
    action_due    TEXT NOT NULL,
    closed_on     TEXT,
    conflicts     INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
INSERT INTO ncs_new SELECT doc_id, number, unit, audit_id, finding_id, process, clause, class,
    state, raised_on, response_due, action_due, closed_on, conflicts, updated_at FROM ncs;
DROP TABLE ncs;
ALTER TABLE ncs_new RENAME TO ncs;
CREATE INDEX ncs_by_unit ON ncs (unit, state);
