//! Connections: a bounded pool (r2d2) of blocking clients, each with its settings applied once
//! and its prepared statements kept, and the schema created idempotently on start.

use std::collections::HashMap;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::{Client, NoTls, Statement};

use crate::store::StoreError;

/// Bumped when the schema changes incompatibly, so an old binary refuses a newer database.
pub(super) const SCHEMA_VERSION: i64 = 2;

/// Every table is keyed by tenant first (tenants and tokens by the tenant id), so that Citus can
/// distribute them by it and one tenant's keys stay together on YugabyteDB; keys and values are
/// `bytea`, which compares bytewise and holds NUL. Order comes from the per-tenant counter in
/// `scimlet_seq`, never from a sequence. Statements one by one: `IF NOT EXISTS` still races
/// when two hosts start at once, and a failed one is retried alone (see [`init_schema`]).
const SCHEMA: [&str; 12] = [
    "CREATE TABLE IF NOT EXISTS scimlet_meta (k text PRIMARY KEY, v bigint NOT NULL)",
    "CREATE TABLE IF NOT EXISTS scimlet_seq (tenant text PRIMARY KEY, seq bigint NOT NULL)",
    "CREATE TABLE IF NOT EXISTS scimlet_kv (
        tenant text NOT NULL,
        key bytea NOT NULL,
        value bytea NOT NULL,
        version bigint NOT NULL,
        PRIMARY KEY (tenant, key))",
    "CREATE TABLE IF NOT EXISTS scimlet_tenants (
        id text PRIMARY KEY,
        name text NOT NULL UNIQUE,
        policy text NOT NULL,
        created_at bigint NOT NULL)",
    "CREATE TABLE IF NOT EXISTS scimlet_tokens (
        tenant_id text NOT NULL REFERENCES scimlet_tenants(id) ON DELETE CASCADE,
        id text NOT NULL,
        token_hash bytea NOT NULL UNIQUE,
        created_at bigint NOT NULL,
        created_us bigint NOT NULL,
        revoked boolean NOT NULL DEFAULT false,
        PRIMARY KEY (tenant_id, id))",
    "CREATE TABLE IF NOT EXISTS scimlet_events (
        tenant text NOT NULL,
        seq bigint NOT NULL,
        idx integer NOT NULL,
        id text NOT NULL,
        kind text NOT NULL,
        time_ms bigint NOT NULL,
        request_id text NOT NULL,
        data text NOT NULL,
        previous text,
        PRIMARY KEY (tenant, seq, idx))",
    "CREATE INDEX IF NOT EXISTS scimlet_events_by_time ON scimlet_events (time_ms)",
    "CREATE TABLE IF NOT EXISTS scimlet_event_horizons (
        tenant text PRIMARY KEY,
        seq bigint NOT NULL,
        idx integer NOT NULL)",
    // Version 2: commits raise these stamps, which the remembered counts rely on; a version-1
    // binary would commit without raising them, so it must refuse the database from now on.
    "CREATE TABLE IF NOT EXISTS scimlet_stamps (
        tenant text NOT NULL,
        class bytea NOT NULL,
        n bigint NOT NULL,
        PRIMARY KEY (tenant, class))",
    "CREATE TABLE IF NOT EXISTS scimlet_webhooks (
        tenant text NOT NULL,
        id text NOT NULL,
        url text NOT NULL,
        types text NOT NULL,
        secret bytea NOT NULL,
        created_at bigint NOT NULL,
        created_us bigint NOT NULL,
        disabled text,
        cursor_seq bigint,
        cursor_idx integer,
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_ms bigint NOT NULL DEFAULT 0,
        last_error text,
        failing_since_ms bigint NOT NULL DEFAULT 0,
        lease_owner text,
        lease_expiry_ms bigint NOT NULL DEFAULT 0,
        lease_epoch bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (tenant, id))",
    "INSERT INTO scimlet_meta(k, v) VALUES ('schema', 2) ON CONFLICT (k) DO NOTHING",
    "UPDATE scimlet_meta SET v = 2 WHERE k = 'schema' AND v < 2",
];

/// Opens connections for the pool.
pub(super) struct Manager {
    pub(super) config: postgres::Config,
    /// Run once on each new connection: search path and timeouts.
    pub(super) init: String,
}

/// A pooled connection with the statements it has prepared: every statement of this backend
/// is parsed once per connection, not once per call.
pub(super) struct PgConn {
    pub(super) client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl PgConn {
    /// `sql` prepared on this connection (once).
    pub(super) fn stmt(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PgConn, postgres::Error> {
        let mut client = self.config.connect(NoTls)?;
        client.batch_execute(&self.init)?;
        Ok(PgConn {
            client,
            statements: HashMap::new(),
        })
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<(), postgres::Error> {
        // A connection broken by a database restart is found here, before a request uses it.
        conn.client.simple_query("").map(|_| ())
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.client.is_closed()
    }
}

/// The statements each new connection runs: the schema to use (quoted, so any name works) and
/// the timeouts.
pub(super) fn init_sql(
    schema: Option<&str>,
    statement_timeout: Duration,
    lock_timeout: Duration,
) -> String {
    let mut sql = String::new();
    if let Some(schema) = schema {
        sql.push_str(&format!(
            "SET search_path TO \"{}\";",
            schema.replace('"', "\"\"")
        ));
    }
    sql.push_str(&format!(
        "SET statement_timeout = {}; SET lock_timeout = {};",
        statement_timeout.as_millis(),
        lock_timeout.as_millis()
    ));
    sql
}

/// Creates the tables if needed and refuses a database written by a newer schema. Several
/// hosts may run this at once on an empty database: `IF NOT EXISTS` can still fail on the
/// catalog's unique index when two create the same table together, so such a failure is taken
/// as "the other host created it" and the statement is run again (no advisory lock needed).
pub(super) fn init_schema(conn: &mut PgConn) -> Result<(), StoreError> {
    for sql in SCHEMA {
        let mut attempts = 0;
        loop {
            match conn.client.batch_execute(sql) {
                Ok(()) => break,
                Err(e) if attempts < 10 && created_concurrently(&e) => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(20 * attempts));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    let row = conn
        .client
        .query_one("SELECT v FROM scimlet_meta WHERE k = 'schema'", &[])?;
    let found: i64 = row.get(0);
    if found > SCHEMA_VERSION {
        return Err(StoreError::Unavailable(format!(
            "database schema {found} is newer than this binary's {SCHEMA_VERSION}"
        )));
    }
    Ok(())
}

/// The errors of a DDL statement that raced the same statement of another host.
fn created_concurrently(e: &postgres::Error) -> bool {
    [
        SqlState::UNIQUE_VIOLATION,
        SqlState::DUPLICATE_TABLE,
        SqlState::DUPLICATE_OBJECT,
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::T_R_DEADLOCK_DETECTED,
    ]
    .iter()
    .any(|s| e.code() == Some(s))
}
