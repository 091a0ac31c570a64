//! The schema's version: which of the embedded migrations a database has applied, which are
//! pending, and whether it has some this binary does not know (a newer Cairn ran on it).
//! `cairn migrate` and `GET /v1/ready` read it; `cairn serve` migrates at startup.

use async_trait::async_trait;
use sqlx::migrate::Migrator;

use super::StoreError;

/// The PostgreSQL schema's migrations, embedded.
pub static POSTGRES: Migrator = sqlx::migrate!("../../migrations/postgres");
/// The SQLite schema's migrations, embedded.
pub static SQLITE: Migrator = sqlx::migrate!("../../migrations/sqlite");

/// Where a database's schema stands against this binary's migrations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaStatus {
    /// The newest applied migration known to this binary.
    pub current: Option<i64>,
    /// Migrations this binary has that the database has not applied: version, description.
    pub pending: Vec<(i64, String)>,
    /// Applied migrations this binary does not know (the database is newer than it).
    pub unknown: Vec<i64>,
    /// Migrations recorded as failed (a previous run stopped half-way).
    pub failed: Vec<i64>,
}

impl SchemaStatus {
    /// Compares what a database applied (`(version, success)`) with `migrator`.
    pub fn of(migrator: &Migrator, applied: &[(i64, bool)]) -> Self {
        let known = |v: i64| migrator.iter().any(|m| m.version == v);
        let done = |v: i64| applied.iter().any(|&(a, ok)| a == v && ok);
        Self {
            current: migrator
                .iter()
                .map(|m| m.version)
                .filter(|&v| done(v))
                .max(),
            pending: migrator
                .iter()
                .filter(|m| m.migration_type.is_up_migration() && !done(m.version))
                .map(|m| (m.version, m.description.to_string()))
                .collect(),
            unknown: applied
                .iter()
                .filter(|&&(v, _)| !known(v))
                .map(|&(v, _)| v)
                .collect(),
            failed: applied
                .iter()
                .filter(|&&(_, ok)| !ok)
                .map(|&(v, _)| v)
                .collect(),
        }
    }

    /// Whether the schema is exactly what this binary expects.
    pub fn is_current(&self) -> bool {
        self.pending.is_empty() && self.unknown.is_empty() && self.failed.is_empty()
    }

    /// What is wrong, in one line, if anything.
    pub fn problem(&self) -> Option<String> {
        if !self.unknown.is_empty() {
            return Some(format!(
                "the database has migrations this cairn does not know ({:?}): it was used by a \
                 newer version",
                self.unknown
            ));
        }
        if !self.failed.is_empty() {
            return Some(format!("migrations {:?} failed half-way", self.failed));
        }
        if !self.pending.is_empty() {
            let versions: Vec<i64> = self.pending.iter().map(|(v, _)| *v).collect();
            return Some(format!(
                "{} migration(s) pending ({versions:?}): run `cairn migrate`",
                versions.len()
            ));
        }
        None
    }
}

/// Reading and applying a database's migrations.
#[async_trait]
pub trait SchemaStore: Send + Sync + 'static {
    /// Where the schema stands.
    async fn schema_status(&self) -> Result<SchemaStatus, StoreError>;

    /// Applies the pending migrations; returns the status afterwards.
    async fn migrate(&self) -> Result<SchemaStatus, StoreError>;
}

/// `impl SchemaStore for $store` (with a `pool` field) given the migrator and the SQL that
/// says whether the migrations table exists (one boolean row).
macro_rules! schema_store {
    ($store:ty, $migrator:expr, $table_exists:expr) => {
        #[async_trait::async_trait]
        impl $crate::store::schema::SchemaStore for $store {
            async fn schema_status(
                &self,
            ) -> Result<$crate::store::schema::SchemaStatus, $crate::store::StoreError> {
                let (exists,): (bool,) =
                    sqlx::query_as($table_exists).fetch_one(&self.pool).await?;
                let applied: Vec<(i64, bool)> = if exists {
                    sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
                        .fetch_all(&self.pool)
                        .await?
                } else {
                    Vec::new()
                };
                Ok($crate::store::schema::SchemaStatus::of(
                    &$migrator, &applied,
                ))
            }

            async fn migrate(
                &self,
            ) -> Result<$crate::store::schema::SchemaStatus, $crate::store::StoreError> {
                $migrator.run(&self.pool).await?;
                self.schema_status().await
            }
        }
    };
}
pub(super) use schema_store;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_of_applied_migrations() {
        let all: Vec<i64> = POSTGRES.iter().map(|m| m.version).collect();
        let newest = *all.last().unwrap_or(&0);
        let applied: Vec<(i64, bool)> = all.iter().map(|&v| (v, true)).collect();
        let status = SchemaStatus::of(&POSTGRES, &applied);
        assert!(status.is_current(), "{status:?}");
        assert_eq!(status.current, Some(newest));

        let status = SchemaStatus::of(&POSTGRES, &applied[..applied.len() - 1]);
        assert_eq!(status.pending.len(), 1);
        assert!(
            status
                .problem()
                .unwrap_or_default()
                .contains("cairn migrate")
        );

        let mut newer = applied.clone();
        newer.push((newest + 1, true));
        let status = SchemaStatus::of(&POSTGRES, &newer);
        assert_eq!(status.unknown, vec![newest + 1]);
        assert!(!status.is_current());

        assert_eq!(
            SchemaStatus::of(&SQLITE, &[]).pending.len(),
            SQLITE.iter().count()
        );
    }
}
