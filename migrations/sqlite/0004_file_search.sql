-- Same contract as postgres/0004_file_search.sql, in SQLite's dialect: an FTS5 table over
-- `search_text`, kept in step with `files` by triggers. It holds its own copy, keyed by
-- (owner, cid) rather than by rowid, which VACUUM may renumber.
ALTER TABLE files ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
ALTER TABLE files ADD COLUMN search_text TEXT NOT NULL DEFAULT '';

CREATE VIRTUAL TABLE files_fts USING fts5(search_text, cid, owner UNINDEXED, tokenize = 'unicode61');
CREATE TRIGGER files_fts_insert AFTER INSERT ON files BEGIN
    INSERT INTO files_fts (search_text, cid, owner) VALUES (new.search_text, new.cid, new.owner);
END;
CREATE TRIGGER files_fts_delete AFTER DELETE ON files BEGIN
    DELETE FROM files_fts WHERE files_fts MATCH 'cid : ' || old.cid AND owner = old.owner;
END;
CREATE TRIGGER files_fts_update AFTER UPDATE OF search_text ON files BEGIN
    DELETE FROM files_fts WHERE files_fts MATCH 'cid : ' || old.cid AND owner = old.owner;
    INSERT INTO files_fts (search_text, cid, owner) VALUES (new.search_text, new.cid, new.owner);
END;
