-- Who made an account through the API (NULL: the command line or the demo).
-- While an account holds no role, its maker may manage it besides the admins
-- (server/src/http/admin/manage.rs says why).
ALTER TABLE users ADD COLUMN created_by TEXT;
