-- File metadata and full-text search. `metadata` is the JSON object the uploader attached;
-- `search_text` is what search looks at (name, type and the metadata's string values, joined
-- by the server), indexed as a `simple` tsvector so any language and any name works.
ALTER TABLE files ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
ALTER TABLE files ADD COLUMN search_text TEXT NOT NULL DEFAULT '';
ALTER TABLE files ADD COLUMN search tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', search_text)) STORED;
CREATE INDEX files_search ON files USING GIN (search);
