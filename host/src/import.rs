//! `scimlet import` / `scimlet export`: load an existing directory (users with roles and team
//! memberships, and teams) from CSV or JSON lines, and write it back in the same format.
//!
//! CSV columns (header row required, any order, unknown columns refused):
//! `type` (`user` or `team`), `userName`, `givenName`, `familyName`, `displayName`, `email`,
//! `externalId`, `active` (`true`/`false`), `role`, `teams` (names separated by `;`), `name`
//! (a team's name).

//!
//! The host reads and writes the file formats; what a row means — matching users by userName,
//! creating teams, roles, memberships — is the component's (`operator.import-rows`,
//! `operator.export-rows`), so a row is handed over as a JSON object and its outcome comes back.

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use serde_json::{Map, Value};

use crate::runtime::operator::{OperatorError, RowOutcome};
use crate::runtime::{Runtime, Turns};
use crate::store::{Backend, Tenant};

/// Rows per atomic commit.
const BATCH: usize = 1000;

/// Batches planned at once: one per core, at most four (the offline runtime's instances).
fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

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

/// Why an import or export stopped; a row that fails is reported, not an error.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The input (or output) could not be read (or written): what, and why.
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    /// The CSV header row is missing or names an unknown column.
    #[error("CSV header: {0}")]
    Header(String),
    /// A CSV record could not be written.
    #[error("{0}")]
    Scim(String),
    /// The component failed to handle the rows.
    #[error(transparent)]
    Component(#[from] OperatorError),
}

/// File formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CSV with a header row.
    Csv,
    /// One JSON object a line.
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
    /// Rows that created a user or team.
    pub created: u64,
    /// Rows that changed an existing one.
    pub updated: u64,
    /// Rows that matched an existing one exactly.
    pub unchanged: u64,
    /// (line number, reason) of every row that was not imported.
    pub failed: Vec<(usize, String)>,
}

impl Report {
    fn count(&mut self, line: usize, outcome: RowOutcome) {
        match outcome {
            RowOutcome::Created => self.created += 1,
            RowOutcome::Updated => self.updated += 1,
            RowOutcome::Unchanged => self.unchanged += 1,
            RowOutcome::Failed(why) => self.failed.push((line, why)),
        }
    }
}

/// Rows (JSON object text) with their line numbers, plus lines that could not be read as rows.
type Parsed = (Vec<(usize, String)>, Vec<(usize, String)>);

/// Each non-blank line is one row; the component says what is wrong with a bad one.
fn parse_json_lines(reader: impl BufRead) -> Result<Parsed, ImportError> {
    let mut rows = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| ImportError::Read("input".into(), e))?;
        if !line.trim().is_empty() {
            rows.push((i + 1, line));
        }
    }
    Ok((rows, Vec::new()))
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
        let mut obj = Map::new();
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
        rows.push((line, Value::Object(obj).to_string()));
    }
    Ok((rows, bad))
}

/// Imports a file into a tenant, in batches; bad rows are reported with their line numbers and
/// never stop the run. `progress` is called with (rows done, rows total).
pub fn import_file(
    runtime: &Runtime,
    backend: &Arc<dyn Backend>,
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
    let total = rows.len() as u64;
    let batches: Vec<&[(usize, String)]> = rows.chunks(BATCH).collect();
    // Batches are planned side by side, each in an instance of its own, and committed in input
    // order (`Turns`): a later row still wins over an earlier one, as in a sequential import.
    let turns = Arc::new(Turns::new());
    // Every change event of this import names it.
    let request_id = format!("import-{:016x}", rand::random::<u64>());
    let request_id = request_id.as_str();
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|scope| {
        for _ in 0..workers().min(batches.len()) {
            let (tx, turns, next, batches) = (tx.clone(), &turns, &next, &batches);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(batch) = batches.get(i) else { break };
                let texts: Vec<String> = batch.iter().map(|(_, r)| r.clone()).collect();
                let result = runtime.import_rows(
                    backend,
                    tenant,
                    &texts,
                    Some((turns, i as u64)),
                    request_id,
                );
                match &result {
                    Ok(_) => turns.finish(i as u64),
                    // Later batches must not apply without this one: stop them all.
                    Err(_) => {
                        turns.abort();
                        next.store(batches.len(), Ordering::Relaxed);
                    }
                }
                if tx.send((i, result)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut done = 0;
        let mut first_failure: Option<(usize, ImportError)> = None;
        for (i, result) in rx {
            match result {
                Ok(outcomes) => {
                    for ((line, _), outcome) in batches[i].iter().zip(outcomes) {
                        report.count(*line, outcome);
                    }
                    done += batches[i].len() as u64;
                    progress(done, total);
                }
                // The earliest batch's failure is the cause; later ones were stopped by it.
                Err(e) if first_failure.as_ref().is_none_or(|(at, _)| i < *at) => {
                    first_failure = Some((i, e.into()));
                }
                Err(_) => {}
            }
        }
        match first_failure {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    })?;
    report.failed.sort();
    Ok(report)
}

/// Writes every team and user of a tenant in the import format, page by page.
pub fn export(
    runtime: &Runtime,
    backend: &Arc<dyn Backend>,
    tenant: &Tenant,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), ImportError> {
    let io = |e: std::io::Error| ImportError::Read("output".into(), e);
    let csv_error = |e: csv::Error| ImportError::Scim(e.to_string());
    let mut cursor: Option<String> = None;
    let mut first = true;
    loop {
        let page = runtime.export_rows(backend, tenant, cursor.as_deref(), BATCH as u32)?;
        match format {
            // A writer per page, straight onto `out`: the export never holds more than a page.
            Format::Csv => {
                let mut w = csv::Writer::from_writer(&mut *out);
                if first {
                    w.write_record(COLUMNS).map_err(csv_error)?;
                }
                for row in &page.rows {
                    w.write_record(csv_record(row)).map_err(csv_error)?;
                }
                w.flush().map_err(io)?;
            }
            Format::JsonLines => {
                for row in &page.rows {
                    writeln!(out, "{row}").map_err(io)?;
                }
            }
        }
        first = false;
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(())
}

/// A row's CSV fields in [`COLUMNS`] order: text as is, booleans as `true`/`false`, lists (the
/// teams) joined with `;`.
fn csv_record(row: &Value) -> Vec<String> {
    COLUMNS
        .iter()
        .map(|column| match row.get(*column) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(";"),
            Some(other) => other.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryBackend;

    #[test]
    fn csv_and_json_lines_import_alike_and_report_bad_lines() {
        let rt = crate::runtime::test_runtime();
        let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let (tenant, _) =
            crate::tenancy::create(backend.as_ref(), &rt, "acme", "writer", None).unwrap();
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
        let report = import_file(&rt, &backend, &tenant, &csv_path, |_, _| {}).unwrap();
        assert_eq!(
            (report.created, report.updated, report.unchanged),
            (2, 0, 0)
        );
        assert_eq!(
            report.failed.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
            [4, 5]
        );
        let again = import_file(&rt, &backend, &tenant, &csv_path, |_, _| {}).unwrap();
        assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 2));

        let mut out = Vec::new();
        export(&rt, &backend, &tenant, Format::JsonLines, &mut out).unwrap();
        let jsonl = dir.path().join("export.jsonl");
        std::fs::write(&jsonl, &out).unwrap();
        let back = import_file(&rt, &backend, &tenant, &jsonl, |_, _| {}).unwrap();
        assert_eq!((back.created, back.updated, back.failed.len()), (0, 0, 0));
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(r#""userName":"ada@x.com""#) && text.contains(r#""role":"admin""#),
            "{text}"
        );

        let mut out = Vec::new();
        export(&rt, &backend, &tenant, Format::Csv, &mut out).unwrap();
        let csv_back = dir.path().join("export.csv");
        std::fs::write(&csv_back, &out).unwrap();
        let back = import_file(&rt, &backend, &tenant, &csv_back, |_, _| {}).unwrap();
        assert_eq!((back.created, back.updated, back.failed.len()), (0, 0, 0));
    }

    #[test]
    fn batches_planned_side_by_side_apply_in_file_order() {
        let rt = crate::runtime::test_runtime();
        let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let (tenant, _) =
            crate::tenants::create(backend.as_ref(), &rt, "acme", "standard", None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.jsonl");
        let mut rows = vec![
            r#"{"type":"user","userName":"dup@x.com","givenName":"First","teams":["A"]}"#
                .to_string(),
        ];
        let filler =
            |i: usize| format!(r#"{{"type":"user","userName":"u{i}@x.com","teams":["A","B"]}}"#);
        rows.extend((1..BATCH).map(filler));
        // The first row of the second batch, which is planned while the first one is.
        rows.push(
            r#"{"type":"user","userName":"DUP@x.com","givenName":"Last","teams":["B"]}"#.into(),
        );
        rows.extend((BATCH..2 * BATCH).map(filler));
        std::fs::write(&path, rows.join("\n")).unwrap();
        let report = import_file(&rt, &backend, &tenant, &path, |_, _| {}).unwrap();
        assert_eq!(report.failed, []);
        assert_eq!((report.created, report.updated), (2 * BATCH as u64, 1));
        let mut out = Vec::new();
        export(&rt, &backend, &tenant, Format::JsonLines, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let dup: Value = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|r| {
                r["userName"]
                    .as_str()
                    .unwrap_or_default()
                    .eq_ignore_ascii_case("dup@x.com")
            })
            .unwrap();
        assert_eq!(dup["givenName"], "Last", "the later row wins: {dup}");
        assert_eq!(dup["teams"], serde_json::json!(["A", "B"]));
        assert_eq!(
            text.lines()
                .filter(|l| l.contains(r#""type":"team""#))
                .count(),
            2
        );
    }
}
