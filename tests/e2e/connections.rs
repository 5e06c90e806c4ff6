//! Slow clients and the data directory's privacy, seen from outside the process.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{cli, json, Server};

/// Host and port of the SCIM listener.
fn addr(s: &Server) -> String {
    let rest = s.base.strip_prefix("http://").unwrap();
    rest.split('/').next().unwrap().to_string()
}

/// A connection that sent the request line and one header, then nothing more.
fn half_request(s: &Server) -> TcpStream {
    let mut conn = TcpStream::connect(addr(s)).unwrap();
    conn.write_all(b"GET /scim/v2/Users HTTP/1.1\r\nHost: scimlet\r\n")
        .unwrap();
    conn
}

/// Whether the server closed `conn` (end of stream or reset) within `within`; `false` if the
/// connection is still open then. The bound is generous: this checks that the server closes,
/// not how fast.
fn closed_by_server(conn: &mut TcpStream, within: Duration) -> bool {
    conn.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // a 408 or similar answer before the close is fine too
            Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset) => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn half_sent_requests_are_closed_while_normal_requests_are_served() {
    let s = Server::start(&["--header-read-timeout-ms", "1000"]);
    let mut slow: Vec<TcpStream> = (0..200).map(|_| half_request(&s)).collect();
    // While they hang, the identity provider's requests are answered.
    for _ in 0..5 {
        assert_eq!(s.get("/Users").status(), 200);
    }
    let started = Instant::now();
    for conn in &mut slow {
        assert!(
            closed_by_server(conn, Duration::from_secs(60)),
            "a half-sent request still held after {:?}",
            started.elapsed()
        );
    }
    assert_eq!(s.get("/Users").status(), 200);
}

#[test]
fn a_connection_that_never_sends_is_closed() {
    let s = Server::start(&["--header-read-timeout-ms", "500"]);
    let mut silent = TcpStream::connect(addr(&s)).unwrap();
    assert!(closed_by_server(&mut silent, Duration::from_secs(60)));
}

#[test]
fn an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout() {
    let s = Server::start(&["--keep-alive-timeout-ms", "500"]);
    let mut conn = TcpStream::connect(addr(&s)).unwrap();
    // The response arrives and the connection stays open for the next request...
    assert_eq!(request_on(&s, &mut conn).unwrap(), "HTTP/1.1 200");
    // ...until it has been idle for the keep-alive timeout.
    assert!(closed_by_server(&mut conn, Duration::from_secs(60)));
}

/// Sends one complete request on `conn` and reads its answer's status line.
fn request_on(s: &Server, conn: &mut TcpStream) -> std::io::Result<String> {
    let request = format!(
        "GET /scim/v2/ServiceProviderConfig HTTP/1.1\r\nHost: scimlet\r\nAuthorization: Bearer {}\r\n\r\n",
        s.token
    );
    conn.write_all(request.as_bytes())?;
    let status = status_line(conn)?;
    // Drain the rest of this response so the next one starts clean.
    let mut rest = vec![0u8; 64 * 1024];
    conn.set_read_timeout(Some(Duration::from_millis(300)))?;
    let _ = conn.read(&mut rest);
    Ok(status)
}

/// The status line's start (`HTTP/1.1 200`) of the next response on `conn`.
fn status_line(conn: &mut TcpStream) -> std::io::Result<String> {
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut status = [0u8; 12];
    conn.read_exact(&mut status)?;
    Ok(String::from_utf8_lossy(&status).into_owned())
}

/// The first success of `attempt`, retried for up to a minute (the server frees a closed
/// connection's slot when it notices the close).
fn eventually<T, E: std::fmt::Display>(mut attempt: impl FnMut() -> Result<T, E>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match attempt() {
            Ok(value) => return value,
            Err(e) if Instant::now() < deadline => {
                eprintln!("not yet: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("gave up after a minute: {e}"),
        }
    }
}

#[test]
fn connections_beyond_max_connections_are_closed_at_once_and_slots_come_back() {
    let s = Server::start(&["--max-connections", "8"]);
    // Eight kept-alive connections, each proven to hold a slot by an answered request.
    let mut held: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut conn = TcpStream::connect(addr(&s)).unwrap();
            assert_eq!(request_on(&s, &mut conn).unwrap(), "HTTP/1.1 200");
            conn
        })
        .collect();
    // The ninth is closed without an answer, even with a complete request.
    let mut ninth = TcpStream::connect(addr(&s)).unwrap();
    assert!(
        request_on(&s, &mut ninth).is_err(),
        "served beyond max-connections"
    );
    // The held ones are still served.
    assert_eq!(request_on(&s, &mut held[0]).unwrap(), "HTTP/1.1 200");
    // Closing one frees its slot (once the server has seen the close).
    drop(held.pop());
    let status = eventually(|| {
        let mut conn = TcpStream::connect(addr(&s))?;
        request_on(&s, &mut conn)
    });
    assert_eq!(status, "HTTP/1.1 200");
    drop(held);
    let metrics = eventually(|| {
        s.raw()
            .get(format!("http://{}/metrics", addr(&s)))
            .send()
            .and_then(|r| r.text())
    });
    let refused: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("scimlet_connections_refused_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no refused counter in\n{metrics}"));
    assert!(refused >= 1, "{metrics}");
}

#[cfg(unix)]
#[test]
fn a_new_data_directory_and_its_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("scimlet-data");
    let data_arg = data.to_str().unwrap();
    cli(&["tenant", "create", "acme", "--data", data_arg]);
    assert_eq!(mode(&data), 0o700);
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
    assert!(data.join("scimlet.db").exists());

    // The server's own files (the journal, the component cache) are private too.
    let s = Server::start_in(tempfile::tempdir().unwrap(), &[]);
    let (status, _) = json(s.get("/Users"));
    assert_eq!(status, 200);
    let dir = s.data_dir();
    for name in ["scimlet.db", "scimlet.db-wal", "scimlet.db-shm"] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
}

#[cfg(unix)]
#[test]
fn a_data_directory_other_users_can_read_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("shared");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = crate::support::cli_output(&["tenant", "list", "--data", data.to_str().unwrap()]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("accessible to other users (mode 755)"),
        "{stderr}"
    );
    let mode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755, "left as the operator set it");
}

#[test]
fn a_request_body_that_never_arrives_gets_408_within_the_request_timeout() {
    let s = Server::start(&["--request-timeout-ms", "1000"]);
    let mut conn = TcpStream::connect(addr(&s)).unwrap();
    let head = format!(
        "POST /scim/v2/Users HTTP/1.1\r\nHost: scimlet\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/scim+json\r\nContent-Length: 100\r\n\r\n{{\"userName\":",
        s.token
    );
    conn.write_all(head.as_bytes()).unwrap();
    assert_eq!(status_line(&mut conn).unwrap(), "HTTP/1.1 408");
    assert_eq!(s.get("/Users").status(), 200, "and the slot is free");
}

#[test]
fn a_connection_idle_after_a_slow_request_is_still_closed() {
    // The request outlasts the header read timeout while it is served; once answered, the
    // connection must fall back to the keep-alive timeout rather than stay open for good.
    let s = Server::start(&[
        "--header-read-timeout-ms",
        "300",
        "--keep-alive-timeout-ms",
        "300",
    ]);
    let mut conn = TcpStream::connect(addr(&s)).unwrap();
    let body = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"slow@example.com"}"#;
    let head = format!(
        "POST /scim/v2/Users HTTP/1.1\r\nHost: scimlet\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n",
        s.token,
        body.len()
    );
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(&body.as_bytes()[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    conn.write_all(&body.as_bytes()[10..]).unwrap();
    assert_eq!(status_line(&mut conn).unwrap(), "HTTP/1.1 201");
    assert!(closed_by_server(&mut conn, Duration::from_secs(60)));
}
