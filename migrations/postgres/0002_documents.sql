-- Documents: append-only changes, a compacted snapshot, projection rows for
-- reports (DESIGN §6), quarantine, receipts and blobs.

CREATE TABLE documents (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    unit        TEXT NOT NULL REFERENCES units (code),
    audit       TEXT,
    process     TEXT,
    number      TEXT,
    snapshot    BYTEA,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX documents_by_unit ON documents (unit);
CREATE INDEX documents_by_audit ON documents (audit);

CREATE TABLE changes (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    doc_id       TEXT NOT NULL REFERENCES documents (id),
    hash         TEXT NOT NULL,
    bytes        BYTEA NOT NULL,
    in_snapshot  BIGINT NOT NULL DEFAULT 0,
    stored_at    BIGINT NOT NULL,
    UNIQUE (doc_id, hash)
);
CREATE INDEX changes_by_doc ON changes (doc_id, seq);

CREATE TABLE audits (
    doc_id            TEXT PRIMARY KEY REFERENCES documents (id),
    unit              TEXT NOT NULL,
    number            TEXT NOT NULL,
    state             TEXT NOT NULL,
    lead              TEXT NOT NULL,
    start_on          TEXT NOT NULL,
    end_on            TEXT,
    template_version  BIGINT NOT NULL,
    responses         BIGINT NOT NULL,
    conflicts         BIGINT NOT NULL,
    late_edits        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

CREATE TABLE findings (
    audit_id    TEXT NOT NULL REFERENCES documents (id),
    finding_id  TEXT NOT NULL,
    class       TEXT NOT NULL,
    clause      TEXT NOT NULL,
    process     TEXT,
    text        TEXT NOT NULL,
    PRIMARY KEY (audit_id, finding_id)
);

CREATE TABLE ncs (
    doc_id        TEXT PRIMARY KEY REFERENCES documents (id),
    number        TEXT,
    unit          TEXT NOT NULL,
    audit_id      TEXT NOT NULL,
    finding_id    TEXT NOT NULL,
    process       TEXT NOT NULL,
    clause        TEXT NOT NULL,
    class         TEXT NOT NULL,
    state         TEXT NOT NULL,
    raised_on     TEXT NOT NULL,
    response_due  TEXT NOT NULL,
    action_due    TEXT NOT NULL,
    closed_on     TEXT,
    conflicts     BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX ncs_by_unit ON ncs (unit, state);

-- Refused changes: never merged, never dropped.
CREATE TABLE quarantine (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    doc_id       TEXT NOT NULL,
    username     TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    rule         TEXT NOT NULL,
    message      TEXT NOT NULL,
    bytes        BYTEA NOT NULL,
    received_at  BIGINT NOT NULL
);
CREATE INDEX quarantine_by_doc ON quarantine (doc_id);

-- One receipt per accepted change, each hashing the one before it.
CREATE TABLE receipts (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    doc_id       TEXT NOT NULL,
    change_hash  TEXT NOT NULL,
    username     TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    at           BIGINT NOT NULL,
    prev         TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE
);

CREATE TABLE blobs (
    sha256       TEXT PRIMARY KEY,
    size         BIGINT NOT NULL,
    received     BIGINT NOT NULL,
    data         BYTEA NOT NULL,
    complete_at  BIGINT,
    uploaded_by  TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

-- Human numbers (NC-<n> per unit), one counter per scope. The row 'receipts'
-- is bumped first by every transaction that writes receipts: its row lock
-- keeps the hash chain a single line on both databases.
CREATE TABLE counters (
    scope  TEXT PRIMARY KEY,
    value  BIGINT NOT NULL
);
INSERT INTO counters (scope, value) VALUES ('receipts', 0);
