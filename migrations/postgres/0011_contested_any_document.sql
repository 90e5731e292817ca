-- Contested values of any document (issue 15 item 1): an NC's description,
-- correction, root cause, verification and actions, and an audit's notes,
-- keep every concurrent value as an audit's answers and findings do. The
-- rows name their document, whatever its kind.

ALTER TABLE contested_values RENAME COLUMN audit_id TO doc_id;

-- An NC on a clause no process carries (3.4, management review) names no
-- process: its unit's nodal officers answer it.
ALTER TABLE ncs ALTER COLUMN process DROP NOT NULL;
