//! A throwaway schema on the test PostgreSQL for each test that needs one.
//!
//! The database is `SCIMLET_TEST_DATABASE_URL` (default: the development and CI machines'
//! PostgreSQL, trust authentication). When it cannot be reached, a test is skipped with the
//! reason printed, except under CI (`CI` set), where it fails: CI must not pass by skipping.

use super::{PgOptions, PostgresBackend};

/// The URL tests connect to.
pub(crate) fn test_url() -> String {
    std::env::var("SCIMLET_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A schema created for one test and dropped with it.
pub(crate) struct TestDb {
    pub(crate) url: String,
    pub(crate) schema: String,
    admin: postgres::Client,
}

impl TestDb {
    /// A fresh empty schema; `None` (after printing why) when PostgreSQL is unreachable
    /// outside CI.
    pub(crate) fn new(test: &str) -> Option<TestDb> {
        let url = test_url();
        let connected = url.parse::<postgres::Config>().and_then(|mut c| {
            c.connect_timeout(std::time::Duration::from_secs(3))
                .connect(postgres::NoTls)
        });
        let mut admin = match connected {
            Ok(c) => c,
            Err(e) if std::env::var_os("CI").is_some() => {
                panic!("{test}: PostgreSQL at {url} is required under CI: {e}")
            }
            Err(e) => {
                eprintln!("skipped {test}: PostgreSQL at {url} is unreachable ({e})");
                return None;
            }
        };
        let schema = format!("scimlet_test_{:016x}", rand::random::<u64>());
        admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .expect("create the test schema");
        Some(TestDb { url, schema, admin })
    }

    /// Options that put the backend's tables in this schema.
    pub(crate) fn options(&self) -> PgOptions {
        PgOptions {
            schema: Some(self.schema.clone()),
            ..PgOptions::default()
        }
    }

    /// Runs `sql` in this schema, behind the backends' backs.
    pub(crate) fn sql(&mut self, sql: &str) {
        self.admin
            .batch_execute(&format!(
                "SET search_path TO {}; {sql}; RESET search_path",
                self.schema
            ))
            .expect("run test SQL");
    }

    /// A backend (one "host") on this schema.
    pub(crate) fn backend(&self) -> PostgresBackend {
        PostgresBackend::open(&self.url, self.options()).expect("open the test backend")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Best effort: a leftover schema holds test data only.
        let _ = self
            .admin
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
    }
}
