-- Search (issue 15): what a user types to find an NC besides its number (the
-- `documents` row holds the server's number): the provisional number the
-- raising tablet gave it and its description, written with the `ncs` row.
-- `GET /api/v1/search?q=` returns only documents the caller may read.

CREATE TABLE search_terms (
    doc_id       TEXT PRIMARY KEY REFERENCES documents (id),
    provisional  TEXT NOT NULL,
    words        TEXT NOT NULL
);
