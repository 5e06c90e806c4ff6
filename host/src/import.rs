//! `scimlet import` / `scimlet export`: load an existing directory (users with roles and team
//! memberships, and teams) from CSV or JSON lines, and write it back in the same format.
//!
//! CSV columns (header row required, any order, unknown columns refused):
//! `type` (`user` or `team`), `userName`, `givenName`, `familyName`, `displayName`, `email`,
//! `externalId`, `active` (`true`/`false`), `role`, `teams` (names separated by `;`), `name`
//! (a team's name).

use std::io::{BufRead, Write};
use std::path::Path;

use scimlet_guest::import::{Outcome, Row, UserRow};
use serde_json::Value;

use crate::native::TenantStore;
use crate::store::{Backend, Tenant};

/// Rows per atomic commit.
const BATCH: usize = 1000;

const COLUMNS: &[&str] = &[
    "type",
    "userName",
    "givenName",
    "familyName",
    "displayName",
    "email",
    "externalId",
    "active",
    "role",
    "teams",
    "name",
];

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("CSV header: {0}")]
    Header(String),
    #[error("{0}")]
    Scim(String),
}

/// File formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
}

impl Format {
    /// By extension: `.csv` is CSV, anything else JSON lines.
    pub fn of(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("csv") => Format::Csv,
            _ => Format::JsonLines,
        }
    }
}

/// Totals of an import run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// (line number, reason) of every row that was not imported.
    pub failed: Vec<(usize, String)>,
}

impl Report {
    fn count(&mut self, line: usize, outcome: Outcome) {
        match outcome {
            Outcome::Created => self.created += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Unchanged => self.unchanged += 1,
            Outcome::Failed(why) => self.failed.push((line, why)),
        }
    }
}

/// Parsed rows with their line numbers, plus rows that could not be parsed.
type Parsed = (Vec<(usize, Row)>, Vec<(usize, String)>);

fn parse_json_lines(reader: impl BufRead) -> Result<Parsed, ImportError> {
    let (mut rows, mut bad) = (Vec::new(), Vec::new());
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| ImportError::Read("input".into(), e))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(&line)
            .map_err(|e| e.to_string())
            .and_then(|v| Row::from_json(&v))
        {
            Ok(row) => rows.push((i + 1, row)),
            Err(e) => bad.push((i + 1, e)),
        }
    }
    Ok((rows, bad))
}

fn parse_csv(reader: impl std::io::Read) -> Result<Parsed, ImportError> {
    let mut csv = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(reader);
    let header: Vec<String> = csv
        .headers()
        .map_err(|e| ImportError::Header(e.to_string()))?
        .iter()
        .map(str::to_string)
        .collect();
    if let Some(unknown) = header.iter().find(|h| !COLUMNS.contains(&h.as_str())) {
        return Err(ImportError::Header(format!(
            "unknown column '{unknown}' (expected: {})",
            COLUMNS.join(", ")
        )));
    }
    let (mut rows, mut bad) = (Vec::new(), Vec::new());
    for (i, record) in csv.records().enumerate() {
        let line = i + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                bad.push((line, e.to_string()));
                continue;
            }
        };
        let mut obj = serde_json::Map::new();
        for (name, value) in header.iter().zip(record.iter()) {
            let v = match name.as_str() {
                _ if value.is_empty() => continue,
                "teams" => Value::Array(
                    value
                        .split(';')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(Value::from)
                        .collect(),
                ),
                "active" => match value.to_ascii_lowercase().as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => {
                        bad.push((
                            line,
                            format!("'active' must be true or false, not '{value}'"),
                        ));
                        obj.clear();
                        break;
                    }
                },
                _ => Value::from(value),
            };
            obj.insert(name.clone(), v);
        }
        if obj.is_empty() {
            continue;
        }
        match Row::from_json(&Value::Object(obj)) {
            Ok(row) => rows.push((line, row)),
            Err(e) => bad.push((line, e)),
        }
    }
    Ok((rows, bad))
}

/// Imports a file into a tenant, in batches; bad rows are reported with their line numbers and
/// never stop the run. `progress` is called with (rows done, rows total).
pub fn import_file(
    backend: &dyn Backend,
    tenant: &Tenant,
    path: &Path,
    mut progress: impl FnMut(u64, u64),
) -> Result<Report, ImportError> {
    let file =
        std::fs::File::open(path).map_err(|e| ImportError::Read(path.display().to_string(), e))?;
    let reader = std::io::BufReader::new(file);
    let (rows, bad) = match Format::of(path) {
        Format::Csv => parse_csv(reader)?,
        Format::JsonLines => parse_json_lines(reader)?,
    };
    let mut report = Report {
        failed: bad,
        ..Report::default()
    };
    let store = TenantStore::new(backend, tenant);
    let svc = scimlet_guest::service::Service::new(&store, "", &tenant.policy.to_string())
        .map_err(|e| ImportError::Scim(e.detail))?;
    let total = rows.len() as u64;
    let mut done = 0;
    for chunk in rows.chunks(BATCH) {
        let batch: Vec<Row> = chunk.iter().map(|(_, r)| r.clone()).collect();
        let outcomes = svc
            .import_batch(&batch)
            .map_err(|e| ImportError::Scim(e.detail))?;
        for ((line, _), outcome) in chunk.iter().zip(outcomes) {
            report.count(*line, outcome);
        }
        done += chunk.len() as u64;
        progress(done, total);
    }
    report.failed.sort();
    Ok(report)
}

/// Writes every team and user of a tenant in the import format.
pub fn export(
    backend: &dyn Backend,
    tenant: &Tenant,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), ImportError> {
    let store = TenantStore::new(backend, tenant);
    let svc = scimlet_guest::service::Service::new(&store, "", &tenant.policy.to_string())
        .map_err(|e| ImportError::Scim(e.detail))?;
    let io = |e: std::io::Error| ImportError::Read("output".into(), e);
    let mut csv = (format == Format::Csv).then(|| csv::Writer::from_writer(Vec::new()));
    if let Some(w) = &mut csv {
        w.write_record(COLUMNS)
            .map_err(|e| ImportError::Scim(e.to_string()))?;
    }
    let mut failure: Option<ImportError> = None;
    svc.export(|row| {
        let written = match &mut csv {
            Some(w) => w
                .write_record(csv_record(&row))
                .map_err(|e| ImportError::Scim(e.to_string())),
            None => writeln!(out, "{}", row.to_json()).map_err(io),
        };
        if let Err(e) = written {
            failure.get_or_insert(e);
        }
        Ok(())
    })
    .map_err(|e| ImportError::Scim(e.detail))?;
    if let Some(e) = failure {
        return Err(e);
    }
    if let Some(w) = csv {
        let bytes = w
            .into_inner()
            .map_err(|e| ImportError::Scim(e.to_string()))?;
        out.write_all(&bytes).map_err(io)?;
    }
    Ok(())
}

fn csv_record(row: &Row) -> Vec<String> {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    match row {
        Row::Team { name } => {
            let mut r = vec![String::new(); COLUMNS.len()];
            r[0] = "team".into();
            r[10] = name.clone();
            r
        }
        Row::User(UserRow {
            user_name,
            given_name,
            family_name,
            display_name,
            email,
            external_id,
            active,
            role,
            teams,
        }) => vec![
            "user".into(),
            user_name.clone(),
            o(given_name),
            o(family_name),
            o(display_name),
            o(email),
            o(external_id),
            active.map(|a| a.to_string()).unwrap_or_default(),
            o(role),
            teams.join(";"),
            String::new(),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryBackend;

    #[test]
    fn csv_and_json_lines_import_alike_and_report_bad_lines() {
        let backend = MemoryBackend::new();
        let (tenant, _) = crate::tenants::create(&backend, "acme", "writer", None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let csv_path = dir.path().join("people.csv");
        std::fs::write(
            &csv_path,
            "type,userName,givenName,email,active,role,teams,name\n\
             team,,,,,,,Sales\n\
             user,ada@x.com,Ada,ada@x.com,true,admin,Sales;Ops,\n\
             user,bob@x.com,Bob,,maybe,,,\n\
             user,,NoName,,,,,\n",
        )
        .unwrap();
        let report = import_file(&backend, &tenant, &csv_path, |_, _| {}).unwrap();
        assert_eq!(
            (report.created, report.updated, report.unchanged),
            (2, 0, 0)
        );
        assert_eq!(
            report.failed.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
            [4, 5]
        );
        let again = import_file(&backend, &tenant, &csv_path, |_, _| {}).unwrap();
        assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 2));

        let mut out = Vec::new();
        export(&backend, &tenant, Format::JsonLines, &mut out).unwrap();
        let jsonl = dir.path().join("export.jsonl");
        std::fs::write(&jsonl, &out).unwrap();
        let back = import_file(&backend, &tenant, &jsonl, |_, _| {}).unwrap();
        assert_eq!((back.created, back.updated, back.failed.len()), (0, 0, 0));
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(r#""userName":"ada@x.com""#) && text.contains(r#""role":"admin""#),
            "{text}"
        );

        let mut out = Vec::new();
        export(&backend, &tenant, Format::Csv, &mut out).unwrap();
        let csv_back = dir.path().join("export.csv");
        std::fs::write(&csv_back, &out).unwrap();
        let back = import_file(&backend, &tenant, &csv_back, |_, _| {}).unwrap();
        assert_eq!((back.created, back.updated, back.failed.len()), (0, 0, 0));
    }
}
