//! Response bodies: complete bytes, or a first part and a stream of further chunks that the host
//! pulls (WIT `handler.body-stream`), and the rendering of resources into them.
//!
//! RFC 7643 §4.2 puts no bound on a group's `members`, and the complete JSON text of a group
//! with a million of them does not fit the guest's memory. A response whose groups carry more
//! than [`Limits::inline`] members is therefore streamed: the text up to the first streamed
//! group's members comes first, then each streamed group's members are read from its membership
//! edges ([`crate::persist::members`]) [`Limits::page`] at a time, each page's `display` names with one
//! batched read, one page per chunk. Memory and work per chunk are bounded by a page whatever
//! the group size, and each chunk gets its own CPU budget from the host. A smaller response is
//! one complete body: a per-request host resource costs more than it saves there.
//!
//! A streamed group's members are read page by page as the host pulls them, not from one
//! snapshot: a membership change made while the body is sent may or may not show in the pages
//! not read yet, and `meta.version` (the ETag) is the one read before the first page. A client
//! that needs a consistent view compares the ETags of two reads (RFC 7644 §3.14).
//!
//! The streamed text is the text the complete rendering has: `members` is the last attribute of
//! a presented group in both, and a list's projection (RFC 7644 §3.4.2.5) is applied to each
//! page as [`resource::render`] applies it to the whole array (per value, dropping empty ones).

use std::collections::VecDeque;
use std::fmt;

use serde_json::{json, Map, Value};

use crate::model::error::ScimResult;
use crate::model::resource_type::Kind;
use crate::model::schema::{urn, ResourceSchema};
use crate::ops::service::{Page, Service};
use crate::persist::members::{MemberFields, Membership};
use crate::persist::store::Store;
use crate::rules::resource::{self, Projection};

/// The rest of a body, pulled chunk by chunk until `None`.
pub trait BodyStream {
    /// The next chunk, `None` when the body is complete. An error means the body cannot be
    /// completed (the store failed): the response must be aborted, never sent truncated.
    fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, String>;
}

/// A response body; `'s` is the lifetime of the store a stream reads from.
pub enum Body<'s> {
    /// The complete body.
    Bytes(Vec<u8>),
    /// The first part, then the chunks of `rest`.
    Stream {
        /// The text before the first streamed chunk.
        first: Vec<u8>,
        /// The remaining chunks, pulled one at a time.
        rest: Box<dyn BodyStream + 's>,
    },
}

impl Body<'_> {
    /// Whether the body is streamed rather than complete.
    pub fn is_stream(&self) -> bool {
        matches!(self, Body::Stream { .. })
    }

    /// The whole body (tests, and hosts that cannot stream).
    pub fn collect(self) -> Result<Vec<u8>, String> {
        self.collect_chunks().map(|chunks| chunks.concat())
    }

    /// The body as it would be sent: the first part, then each chunk.
    pub fn collect_chunks(self) -> Result<Vec<Vec<u8>>, String> {
        match self {
            Body::Bytes(b) => Ok(vec![b]),
            Body::Stream { first, mut rest } => {
                let mut chunks = vec![first];
                while let Some(chunk) = rest.next_chunk()? {
                    chunks.push(chunk);
                }
                Ok(chunks)
            }
        }
    }
}

impl fmt::Debug for Body<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Body::Stream { first, .. } => write!(f, "Stream(first {} bytes, ...)", first.len()),
        }
    }
}

/// When to stream and how much a chunk holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most members a response renders in one piece (over all its groups).
    pub inline: u32,
    /// Membership edges per streamed chunk.
    pub page: u32,
}

impl Limits {
    /// The limits the component serves with.
    pub const DEFAULT: Limits = Limits {
        inline: 1000,
        page: 1000,
    };
}

/// Text of further groups is glued to a chunk only while the chunk is smaller than this.
const FLUSH: usize = 64 * 1024;

/// One resource (`GET`, `POST`, `PUT`, `PATCH` answers), its members when the projection keeps
/// them, as they are appended to a single group's text (unfiltered, as [`MemberFields::of`]
/// picks them).
pub fn resource<'s>(
    svc: &Service<'s>,
    kind: Kind,
    doc: &Value,
    proj: &Projection,
    limits: Limits,
) -> ScimResult<Body<'s>> {
    let text = svc.render(kind, doc, proj).to_string();
    if kind != Kind::Group || !proj.wants(svc.schema(kind), "members") {
        return Ok(Body::Bytes(text.into_bytes()));
    }
    let mut b = Builder::new(svc, MemberFields::of(proj), None, limits);
    b.group(text, doc)?;
    Ok(b.finish())
}

/// A `ListResponse` (RFC 7644 §3.4.2) for a page. Lists expand members only when `attributes`
/// asks for them, so a page costs the same for any group size unless they are asked for.
pub fn list<'s>(
    svc: &Service<'s>,
    page: &Page,
    proj: &Projection,
    limits: Limits,
) -> ScimResult<Body<'s>> {
    let stamp_keys: Vec<String> = page
        .resources
        .iter()
        .filter(|(k, _)| *k == Kind::Group)
        .filter_map(|(_, d)| d.get("id").and_then(Value::as_str))
        .map(crate::persist::keys::group_stamp)
        .collect();
    let mut stamps = svc.store().get_many(&stamp_keys)?.into_iter();
    let envelope = json!({
        "schemas": [urn::LIST_RESPONSE],
        "totalResults": page.total,
        "startIndex": page.start_index,
        "itemsPerPage": page.resources.len(),
        "Resources": [],
    })
    .to_string();
    let members = proj.requests("members");
    let filter = (svc.schema(Kind::Group).clone(), proj.clone());
    let mut b = Builder::new(svc, MemberFields::of(proj), Some(filter), limits);
    // The envelope ends with `[]}`: the resources go between the brackets.
    b.text(&envelope[..envelope.len() - 2]);
    for (i, (kind, doc)) in page.resources.iter().enumerate() {
        if i > 0 {
            b.text(",");
        }
        match kind {
            Kind::User => {
                let presented = svc.present_user(doc, proj.requests("groups"))?;
                b.text(&svc.render(*kind, &presented, proj).to_string());
            }
            Kind::Group => {
                let stamp = stamps.next().flatten();
                let presented = svc.present_group(doc, stamp.as_ref(), None)?;
                let text = svc.render(*kind, &presented, proj).to_string();
                if members {
                    b.group(text, &presented)?;
                } else {
                    b.text(&text);
                }
            }
        }
    }
    b.text("]}");
    Ok(b.finish())
}

/// A part of a body still to be produced.
enum Part {
    Text(String),
    Members(Members),
}

/// A group's members still to be read.
struct Members {
    group: String,
    /// The last member id read.
    after: Option<String>,
    /// Whether `"members":[` has been written (it is written before the first value kept).
    opened: bool,
}

/// What reading members needs, owned by the stream (the service does not outlive the call).
struct Reader<'s> {
    store: &'s dyn Store,
    base_url: String,
    fields: MemberFields,
    /// For lists: the projection, applied to each page as to a whole group.
    filter: Option<(ResourceSchema, Projection)>,
    page: u32,
}

impl Reader<'_> {
    /// The `members` values of these users that the response keeps.
    fn values(&self, ids: &[String]) -> ScimResult<Vec<Value>> {
        let items = Membership::new(self.store).items(ids, self.fields, &self.base_url)?;
        let Some((rs, proj)) = &self.filter else {
            return Ok(items);
        };
        let mut doc = Map::new();
        doc.insert("members".into(), Value::Array(items));
        let rendered = resource::render(&Value::Object(doc), rs, proj, &self.base_url);
        Ok(match rendered.get("members") {
            Some(Value::Array(kept)) => kept.clone(),
            _ => Vec::new(),
        })
    }

    /// Writes the next page of a group's members to `out`; answers whether the group is done.
    fn next_page(&self, m: &mut Members, out: &mut String) -> ScimResult<bool> {
        let mut ids = Membership::new(self.store).page(&m.group, m.after.as_deref(), self.page)?;
        write_values(&self.values(&ids)?, &mut m.opened, out);
        let done = ids.len() < self.page as usize;
        m.after = ids.pop();
        if done && m.opened {
            out.push(']');
        }
        Ok(done)
    }
}

fn write_values(values: &[Value], opened: &mut bool, out: &mut String) {
    for v in values {
        out.push_str(if *opened { "," } else { ",\"members\":[" });
        *opened = true;
        out.push_str(&v.to_string());
    }
}

/// Builds a body: members within the inline budget are written at once; from the first group
/// over budget on, every group's members are streamed.
struct Builder<'s> {
    reader: Reader<'s>,
    /// Members that may still be written at once; `None` once streaming.
    inline_left: Option<u32>,
    parts: VecDeque<Part>,
    pending: String,
}

impl<'s> Builder<'s> {
    fn new(
        svc: &Service<'s>,
        fields: MemberFields,
        filter: Option<(ResourceSchema, Projection)>,
        limits: Limits,
    ) -> Self {
        Builder {
            reader: Reader {
                store: svc.store(),
                base_url: svc.base_url.clone(),
                fields,
                filter,
                page: limits.page.max(1),
            },
            inline_left: Some(limits.inline),
            parts: VecDeque::new(),
            pending: String::new(),
        }
    }

    fn text(&mut self, t: &str) {
        self.pending.push_str(t);
    }

    /// A group's rendered text (without members) followed by its members.
    fn group(&mut self, text: String, doc: &Value) -> ScimResult<()> {
        let gid = doc.get("id").and_then(Value::as_str).unwrap_or_default();
        let open = text.strip_suffix('}').unwrap_or(&text);
        if let Some(left) = self.inline_left {
            let m = Membership::new(self.reader.store);
            let ids = m.page(gid, None, left.saturating_add(1))?;
            if ids.len() <= left as usize {
                self.inline_left = Some(left - ids.len() as u32);
                self.pending.push_str(open);
                let mut opened = false;
                write_values(&self.reader.values(&ids)?, &mut opened, &mut self.pending);
                if opened {
                    self.pending.push(']');
                }
                self.pending.push('}');
                return Ok(());
            }
            self.inline_left = None;
        }
        self.pending.push_str(open);
        let before = std::mem::replace(&mut self.pending, "}".into());
        self.parts.push_back(Part::Text(before));
        self.parts.push_back(Part::Members(Members {
            group: gid.to_string(),
            after: None,
            opened: false,
        }));
        Ok(())
    }

    fn finish(mut self) -> Body<'s> {
        let first = match self.parts.pop_front() {
            None => return Body::Bytes(self.pending.into_bytes()),
            Some(Part::Text(t)) => t,
            Some(members) => {
                self.parts.push_front(members);
                String::new()
            }
        };
        self.parts.push_back(Part::Text(self.pending));
        Body::Stream {
            first: first.into_bytes(),
            rest: Box::new(Stream {
                reader: self.reader,
                parts: self.parts,
            }),
        }
    }
}

/// The streamed rest of a body: text parts, and pages of members.
struct Stream<'s> {
    reader: Reader<'s>,
    parts: VecDeque<Part>,
}

impl BodyStream for Stream<'_> {
    fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, String> {
        let mut out = String::new();
        let mut paged = false;
        while let Some(part) = self.parts.front_mut() {
            match part {
                Part::Text(t) => {
                    out.push_str(t);
                    self.parts.pop_front();
                }
                Part::Members(m) => {
                    // At most one page of members per chunk (an empty group's page adds
                    // nothing, so the next group's may follow).
                    if (paged && !out.is_empty()) || out.len() >= FLUSH {
                        break;
                    }
                    paged = true;
                    if self
                        .reader
                        .next_page(m, &mut out)
                        .map_err(|e| e.to_string())?
                    {
                        self.parts.pop_front();
                    }
                }
            }
        }
        Ok((!out.is_empty()).then(|| out.into_bytes()))
    }
}
