//! The response body of [`super::ScimService`]: complete bytes (almost every response, sent
//! with a `Content-Length`), or a first part followed by chunks the component produces while
//! the client reads — a streamed body that cannot be completed ends with an error, so hyper
//! aborts the transfer and the client never takes a truncated document for a whole one.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

/// Why a streamed body ended early.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the response body could not be completed: {0}")]
pub struct BodyError(pub String);

/// A SCIM response body.
#[derive(Debug)]
pub struct ScimBody {
    /// Sent first; `None` once sent.
    first: Option<Bytes>,
    /// The chunks after `first`, for a streamed body.
    rest: Option<mpsc::Receiver<Result<Bytes, BodyError>>>,
}

impl ScimBody {
    /// A complete body.
    pub fn full(bytes: impl Into<Bytes>) -> ScimBody {
        let bytes = bytes.into();
        ScimBody {
            first: (!bytes.is_empty()).then_some(bytes),
            rest: None,
        }
    }

    /// An empty body.
    pub fn empty() -> ScimBody {
        ScimBody::full(Bytes::new())
    }

    /// `first`, then what arrives on `rest` until its sender is dropped.
    pub(crate) fn streamed(
        first: Bytes,
        rest: mpsc::Receiver<Result<Bytes, BodyError>>,
    ) -> ScimBody {
        ScimBody {
            first: (!first.is_empty()).then_some(first),
            rest: Some(rest),
        }
    }
}

impl Body for ScimBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        let Some(rest) = self.rest.as_mut() else {
            return Poll::Ready(None);
        };
        match rest.poll_recv(cx) {
            Poll::Ready(Some(Ok(chunk))) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
            Poll::Ready(Some(Err(e))) => {
                self.rest = None;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                self.rest = None;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.first, &self.rest) {
            (first, None) => SizeHint::with_exact(first.as_ref().map_or(0, |b| b.len() as u64)),
            (first, Some(_)) => {
                let mut hint = SizeHint::new();
                hint.set_lower(first.as_ref().map_or(0, |b| b.len() as u64));
                hint
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_streamed_body_is_its_first_part_then_its_chunks_and_fails_loudly() {
        let (tx, rx) = mpsc::channel(4);
        tx.send(Ok(Bytes::from_static(b"b"))).await.unwrap();
        tx.send(Ok(Bytes::from_static(b"c"))).await.unwrap();
        drop(tx);
        let body = ScimBody::streamed(Bytes::from_static(b"a"), rx);
        assert_eq!(body.collect().await.unwrap().to_bytes(), "abc");

        let (tx, rx) = mpsc::channel(4);
        tx.send(Err(BodyError("store down".into()))).await.unwrap();
        let body = ScimBody::streamed(Bytes::from_static(b"a"), rx);
        assert!(body.collect().await.is_err());

        let full = ScimBody::full("xyz");
        assert_eq!(full.size_hint().exact(), Some(3));
        assert!(ScimBody::empty().is_end_stream());
    }
}
