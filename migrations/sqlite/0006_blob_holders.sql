-- Blobs by user (issue 14).
--
-- An unfinished upload is its uploader's own: nobody else can restart, fill
-- or discard it, its declared size counts toward its uploader's quota, and
-- it is dropped once it has not moved for the configured time
-- (`--upload-ttl`). `blobs` keeps complete files only.
--
-- A file's holders are the users who sent all of its content, matching its
-- hash. A file is served only for evidence that one of its holders wrote
-- (see server/src/http/blob_access.rs): knowing a hash is not enough.

CREATE TABLE blob_uploads (
    sha256      TEXT NOT NULL,
    username    TEXT NOT NULL,
    size        INTEGER NOT NULL,
    received    INTEGER NOT NULL,
    data        BLOB NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (sha256, username)
);
CREATE INDEX blob_uploads_by_user ON blob_uploads (username);
CREATE INDEX blob_uploads_by_age ON blob_uploads (updated_at);

CREATE TABLE blob_holders (
    sha256   TEXT NOT NULL,
    username TEXT NOT NULL,
    size     INTEGER NOT NULL,
    held_at  INTEGER NOT NULL,
    PRIMARY KEY (sha256, username)
);
CREATE INDEX blob_holders_by_user ON blob_holders (username);

-- Uploads in progress become their uploader's; whoever completed a file holds it.
INSERT INTO blob_uploads (sha256, username, size, received, data, updated_at)
    SELECT sha256, uploaded_by, size, received, data, created_at
    FROM blobs WHERE complete_at IS NULL;
INSERT INTO blob_holders (sha256, username, size, held_at)
    SELECT sha256, uploaded_by, size, complete_at
    FROM blobs WHERE complete_at IS NOT NULL;
DELETE FROM blobs WHERE complete_at IS NULL;
