-- Checklist rules and amendments (issue 15). An item is required before the
-- audit goes to review ('always'), never ('optional'), or only when the
-- answer to another item of the same version is one of required_answers
-- ('when', naming it in required_item; the answers are comma-separated
-- stored values such as not_conform).
ALTER TABLE template_items ADD COLUMN required TEXT NOT NULL DEFAULT 'always';
ALTER TABLE template_items ADD COLUMN required_item TEXT;
ALTER TABLE template_items ADD COLUMN required_answers TEXT NOT NULL DEFAULT '';

-- An amendment to the manual, issued by an authority and implemented by
-- one template version; every unit acknowledges it once, by its nodal officer.
CREATE TABLE amendments (
    id                TEXT PRIMARY KEY,
    manual_issue      TEXT NOT NULL REFERENCES manual_issues (id),
    issued_on         TEXT NOT NULL,
    authority         TEXT NOT NULL,
    note              TEXT NOT NULL DEFAULT '',
    template_version  INTEGER NOT NULL UNIQUE REFERENCES checklist_templates (version),
    published_by      TEXT NOT NULL,
    published_at      INTEGER NOT NULL
);

CREATE TABLE amendment_acks (
    amendment_id  TEXT NOT NULL REFERENCES amendments (id),
    unit          TEXT NOT NULL REFERENCES units (code),
    acked_by      TEXT NOT NULL,
    acked_at      INTEGER NOT NULL,
    PRIMARY KEY (amendment_id, unit)
);
