-- Reference data the server owns and devices cache read-only (DESIGN §2),
-- accounts, devices and sessions. Times are milliseconds since the Unix epoch
-- (BIGINT); dates are ISO 8601 text (YYYY-MM-DD).

CREATE TABLE units (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    parent      TEXT REFERENCES units (code),
    created_at  BIGINT NOT NULL
);

CREATE TABLE users (
    username       TEXT PRIMARY KEY,
    display_name   TEXT NOT NULL,
    designation    TEXT NOT NULL DEFAULT '',
    password_hash  TEXT NOT NULL,
    disabled_at    BIGINT,
    created_at     BIGINT NOT NULL
);

-- A role held in a unit, in force from one date, optionally until another,
-- by an office order. Roles: auditor, process_owner, nodal_officer, admin.
CREATE TABLE role_assignments (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL REFERENCES users (username),
    unit          TEXT NOT NULL REFERENCES units (code),
    role          TEXT NOT NULL,
    valid_from    TEXT NOT NULL,
    valid_until   TEXT,
    office_order  TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX role_assignments_by_user ON role_assignments (username);
CREATE INDEX role_assignments_by_unit ON role_assignments (unit);

CREATE TABLE devices (
    id          TEXT PRIMARY KEY,
    username    TEXT NOT NULL REFERENCES users (username),
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX devices_by_user ON devices (username);

-- Every Automerge actor id belongs to one (user, device).
CREATE TABLE device_actors (
    actor       TEXT PRIMARY KEY,
    device_id   TEXT NOT NULL REFERENCES devices (id),
    username    TEXT NOT NULL REFERENCES users (username),
    created_at  BIGINT NOT NULL
);
CREATE INDEX device_actors_by_user ON device_actors (username);

-- A login session: one family of rotating refresh tokens.
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    username    TEXT NOT NULL REFERENCES users (username),
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    revoked_why TEXT
);
CREATE INDEX sessions_by_user ON sessions (username);

-- Refresh tokens, by the SHA-256 of their id: the token itself is never stored.
CREATE TABLE refresh_tokens (
    id_hash     TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions (id),
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);

CREATE TABLE processes (
    unit          TEXT NOT NULL REFERENCES units (code),
    code          TEXT NOT NULL,
    clause        TEXT NOT NULL,
    name          TEXT NOT NULL,
    standard      TEXT NOT NULL DEFAULT '',
    owner         TEXT NOT NULL REFERENCES users (username),
    deputy        TEXT REFERENCES users (username),
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (unit, code)
);
CREATE INDEX processes_by_owner ON processes (owner);
CREATE INDEX processes_by_deputy ON processes (deputy);

CREATE TABLE manual_issues (
    id            TEXT PRIMARY KEY,
    title         TEXT NOT NULL,
    based_on      TEXT NOT NULL,
    published_on  TEXT NOT NULL
);

CREATE TABLE checklist_templates (
    version       BIGINT PRIMARY KEY,
    manual_issue  TEXT NOT NULL REFERENCES manual_issues (id),
    published_on  TEXT NOT NULL,
    note          TEXT NOT NULL DEFAULT ''
);

-- Items keep their key across versions; `clause` is as printed in the manual issue.
CREATE TABLE template_items (
    version        BIGINT NOT NULL REFERENCES checklist_templates (version),
    key            TEXT NOT NULL,
    position       BIGINT NOT NULL,
    clause         TEXT NOT NULL,
    question       TEXT NOT NULL,
    response_type  TEXT NOT NULL,
    evidence       BIGINT NOT NULL DEFAULT 0,
    per_process    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (version, key)
);

CREATE TABLE programmes (
    id           TEXT PRIMARY KEY,
    unit         TEXT NOT NULL REFERENCES units (code),
    fy           TEXT NOT NULL,
    cycles       BIGINT NOT NULL,
    scope        TEXT NOT NULL,
    approved_on  TEXT,
    approved_by  TEXT
);

-- An audit on the programme and its team. The audit document (same id) is
-- made by the lead's device; the team decides who may write it.
CREATE TABLE planned_audits (
    id            TEXT PRIMARY KEY,
    unit          TEXT NOT NULL REFERENCES units (code),
    number        TEXT NOT NULL UNIQUE,
    scope         TEXT NOT NULL,
    planned_from  TEXT NOT NULL,
    planned_to    TEXT NOT NULL,
    template_version BIGINT NOT NULL,
    created_by    TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX planned_audits_by_unit ON planned_audits (unit);

CREATE TABLE audit_team (
    audit_id   TEXT NOT NULL REFERENCES planned_audits (id),
    username   TEXT NOT NULL REFERENCES users (username),
    team_role  TEXT NOT NULL,
    PRIMARY KEY (audit_id, username)
);
CREATE INDEX audit_team_by_user ON audit_team (username);
