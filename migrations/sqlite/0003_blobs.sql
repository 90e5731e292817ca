-- Blobs (photos, scans) travel outside the documents (DESIGN §5): the
-- documents whose evidence names a blob, written with the projection rows.
-- A blob is served only to a caller who may read one of these documents; the
-- media type is the evidence's own, given when the blob is downloaded.

CREATE TABLE blob_refs (
    doc_id  TEXT NOT NULL REFERENCES documents (id),
    sha256  TEXT NOT NULL,
    mime    TEXT NOT NULL,
    PRIMARY KEY (doc_id, sha256)
);
CREATE INDEX blob_refs_by_sha256 ON blob_refs (sha256);
