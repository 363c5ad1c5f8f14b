-- pgAgentOS: the extensions the kernel needs. Applied by the manual install (`aos install`, or psql
-- -f of the files in sql/MANIFEST order); CREATE EXTENSION pgagentos CASCADE gets the same from the
-- control file's `requires`.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS pgcrypto;
