//! A throwaway schema on the test PostgreSQL for each test that needs one.
//!
//! One file for both test suites: the library's tests use it as `store::postgres::testdb`, the
//! end-to-end tests include this very file (`tests/e2e/main.rs`, `#[path]`), so it uses only
//! the `postgres` and `rand` crates. The database is the development and CI machines'
//! PostgreSQL (`127.0.0.1:5432`, database `test`, trust authentication). When it cannot be
//! reached, a test is skipped with the reason printed, except under CI (`CI` set), where it
//! fails: CI must not pass by skipping.

#![allow(dead_code)]

/// Where the test PostgreSQL listens.
pub(crate) const PG_HOST: &str = "127.0.0.1";
/// Its port; the outage test puts a relay in front of it.
pub(crate) const PG_PORT: u16 = 5432;

/// A schema created for one test and dropped with it.
pub(crate) struct TestDb {
    /// The schema's name, `scimlet_test_` + 16 hex characters.
    pub(crate) schema: String,
    admin: postgres::Client,
}

impl TestDb {
    /// A fresh empty schema; `None` (after printing why) when PostgreSQL is unreachable
    /// outside CI.
    pub(crate) fn new(test: &str) -> Option<TestDb> {
        let url = format!("postgres://postgres@{PG_HOST}:{PG_PORT}/test");
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
        Some(TestDb { schema, admin })
    }

    /// The database URL of a host using this schema.
    pub(crate) fn url(&self) -> String {
        self.url_via(PG_PORT)
    }

    /// The database URL of a host using this schema, reaching PostgreSQL through `port` (a
    /// relay's).
    pub(crate) fn url_via(&self, port: u16) -> String {
        format!(
            "postgres://postgres@{PG_HOST}:{port}/test?options=-csearch_path%3D{}",
            self.schema
        )
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
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Best effort: a leftover schema holds test data only.
        let _ = self
            .admin
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
    }
}
