-- Same contract as postgres/0010_pin_copies.sql, in SQLite's dialect.
ALTER TABLE pins ADD COLUMN copies TEXT;
