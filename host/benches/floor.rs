//! The HTTP floor of `host/benches/compare.sh`: the HTTP stack `scimlet serve` runs — a tokio
//! multi-thread runtime, `axum_server` with the same connection limits ([`LimitedAcceptor`]),
//! an axum `Router` — answering every request with a fixed `200` from memory (a SCIM user
//! document of typical size). Whatever a SCIM request costs on top of this is scimlet's own
//! work, so compare.sh reads every scenario as "× the HTTP floor". A bench binary, never part
//! of `scimlet`: no production listener can reach it.
//!
//! ```text
//! cargo bench -p scimlet --bench floor -- --listen 127.0.0.1:PORT
//! ```
//!
//! Run by `cargo bench` without arguments it prints this usage and exits successfully.

use std::net::SocketAddr;

use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::Router;
use axum_server::Handle;
use scimlet::http::connections::{ConnectionLimits, LimitedAcceptor};
use scimlet::metrics::Metrics;

/// About what `GET /Users/{id}` answers for a bench user.
const BODY: &str = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"u_0123456789abcdef0123456789abcdef","userName":"user-000042@bench.example","name":{"givenName":"Bench","familyName":"User 42","formatted":"Bench User 42"},"displayName":"Bench User 42","emails":[{"value":"user-000042@bench.example","type":"work","primary":true}],"active":true,"groups":[{"value":"g_0123456789abcdef0123456789abcdef","display":"Big","$ref":"http://127.0.0.1/scim/v2/Groups/g_0123456789abcdef0123456789abcdef","type":"direct"}],"meta":{"resourceType":"User","created":"2026-12-01T00:00:00Z","lastModified":"2026-12-01T00:00:00Z","version":"W/\"42\"","location":"http://127.0.0.1/scim/v2/Users/u_0123456789abcdef0123456789abcdef"}}"#;

fn main() {
    // `cargo bench` appends `--bench`; it means nothing here.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let listen = match args.as_slice() {
        [flag, addr] if flag == "--listen" => addr.parse::<SocketAddr>().expect("--listen ADDR"),
        _ => {
            println!("floor (used by host/benches/compare.sh): --listen ADDR");
            return;
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let listener = std::net::TcpListener::bind(listen).expect("bind");
        println!("floor serving at http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(|| async {
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/scim+json"),
                )],
                BODY,
            )
                .into_response()
        });
        let acceptor = LimitedAcceptor::new(ConnectionLimits::default(), Metrics::new());
        axum_server::from_tcp(listener)
            .expect("listener")
            .handle(Handle::<SocketAddr>::new())
            .acceptor(acceptor)
            .serve(app.into_make_service())
            .await
            .expect("serve");
    });
}
