-- Due-date rules per unit (issue 15): days from raising an NC to its
-- response and to its actions being due, by the NC's class, set by the
-- unit's nodal officer. A unit with no row follows the defaults of DESIGN §3
-- (7 and 7 days for a response; 30 and 60 days for the actions).

CREATE TABLE due_rules (
    unit                 TEXT PRIMARY KEY REFERENCES units (code),
    response_days_major  BIGINT NOT NULL,
    response_days_minor  BIGINT NOT NULL,
    action_days_major    BIGINT NOT NULL,
    action_days_minor    BIGINT NOT NULL,
    updated_by           TEXT NOT NULL,
    updated_at           BIGINT NOT NULL
);
