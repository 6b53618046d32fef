//! Several topics on one stream: one feed per topic, merged, each event's `id` rewritten to
//! the composite cursor of the whole set ([`TopicSet`]).
//!
//! Each topic keeps the single-topic machinery (join the ring first, replay from the log in
//! pages, the gap rule, catch-up), so each topic's events arrive in its order with no gap and
//! no duplicate. The merge only interleaves them and keeps one position per topic: the id of
//! the last event of that topic it passed on. Every event then leaves with
//! `id: <topic> <composite cursor>`, which names every topic's position, so a client that
//! reconnects with it resumes every topic where it stood.
//!
//! A topic that has had no event on this stream yet stands at its head as read when the
//! stream started ([`EventLog::head`]), after its feed joined the live ring: an event published
//! to it while the client is away is replayed on reconnect, not lost.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};
use tower_sse_core::{EventLog, TopicSet};

use super::{
    Hub, HubError,
    subscription::{Start, Subscription, SubscriptionError},
};
use crate::id_field;

/// What a log reports as unknown: NUL is in no log id (the conformance suite checks it).
const UNKNOWN_CURSOR: &str = "\0unknown-composite-cursor";

impl<L: EventLog> Hub<L> {
    /// Subscribes to every topic of `set` on one stream (see [`Hub::subscribe_topics`]);
    /// authorization is the caller's.
    pub(super) async fn subscribe_set(
        &self,
        set: &TopicSet,
        cursor: Option<&str>,
    ) -> Result<Subscription, HubError<L::Error>> {
        let cursor = cursor.filter(|c| !c.is_empty());
        if let [topic] = set.names() {
            // One topic: the log's own ids, as before multi-topic streams existed.
            return self.subscribe_one(topic, cursor).await;
        }
        // `None`: a cursor this set cannot read (another set, a plain id, garbage).
        let parsed = cursor.map(|c| set.parse_cursor(c));
        let mut feeds = Vec::with_capacity(set.len());
        let mut positions = Vec::with_capacity(set.len());
        for (i, name) in set.names().iter().enumerate() {
            let topic_ref = self.inner.acquire(name);
            let receiver = topic_ref.topic.state().sender.subscribe();
            if let Some(mode) = &self.inner.tail {
                mode.follow(&self.inner, &topic_ref)
                    .await
                    .map_err(HubError::Log)?;
            }
            let resume = match &parsed {
                Some(Some(positions)) => Some(positions[i].clone()),
                _ => None,
            };
            let (position, start) = match resume {
                Some(position) => (position, None),
                // Fresh, or an unknown cursor: the head, read after joining the ring.
                None => {
                    let head = self.inner.log.head(name).await.map_err(HubError::Log)?;
                    let start = match parsed {
                        Some(None) => Some(Start::After(UNKNOWN_CURSOR)),
                        _ => None,
                    };
                    (head, start)
                }
            };
            let start = start.unwrap_or(match &position {
                Some(position) => Start::After(position),
                None => Start::Beginning,
            });
            let feed =
                Subscription::start(Arc::clone(&self.inner), topic_ref, receiver, start).await;
            feeds.push(feed.map(move |frame| (i, frame)));
            positions.push(position);
        }
        let merge = Merge {
            set: set.clone(),
            positions,
        };
        let feed = Merged {
            feeds: Some(stream::select_all(feeds)),
            merge,
        };
        Ok(Subscription::from_feed(Box::pin(feed)))
    }
}

/// The frames of every topic of a stream, ids rewritten to the composite cursor; ends after
/// the first error (one topic cannot catch up: the client resumes them all). A plain stream,
/// not `stream::unfold`, which would build a future and move the state for every frame.
struct Merged<S> {
    /// `None` after an error.
    feeds: Option<S>,
    merge: Merge,
}

impl<S> Stream for Merged<S>
where
    S: Stream<Item = (usize, Result<Bytes, SubscriptionError>)> + Unpin,
{
    type Item = Result<Bytes, SubscriptionError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(feeds) = this.feeds.as_mut() else {
            return Poll::Ready(None);
        };
        match ready!(feeds.poll_next_unpin(cx)) {
            Some((topic, Ok(frame))) => Poll::Ready(Some(Ok(this.merge.rewrite(topic, &frame)))),
            Some((_, Err(error))) => {
                this.feeds = None;
                Poll::Ready(Some(Err(error)))
            }
            None => {
                this.feeds = None;
                Poll::Ready(None)
            }
        }
    }
}

/// The positions of a multi-topic stream.
struct Merge {
    set: TopicSet,
    positions: Vec<Option<Arc<str>>>,
}

impl Merge {
    /// Records the frame's id as its topic's position and writes the composite cursor in its
    /// place. A frame with an empty id (a gap signal without a position) leaves the position.
    fn rewrite(&mut self, topic: usize, frame: &Bytes) -> Bytes {
        let found = id_field::last_id(frame);
        if let Some(id) = found
            .as_ref()
            .and_then(|(_, id)| std::str::from_utf8(id).ok())
            .filter(|id| !id.is_empty())
        {
            self.positions[topic] = Some(Arc::from(id));
        }
        let cursor = self.set.encode_cursor(topic, &self.positions);
        id_field::with_id(frame, found.map(|(line, _)| line), &cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_sse_core::TopicName;

    #[test]
    fn the_id_line_is_replaced_in_place() {
        let set = TopicSet::new(
            [TopicName::new("a").unwrap(), TopicName::new("b").unwrap()],
            32,
        )
        .unwrap();
        let mut merge = Merge {
            positions: vec![None, Some("h".into())],
            set,
        };
        let frame = Bytes::from_static(b":c\nid: 5\nevent: x\ndata: id: 9\n\n");
        let out = merge.rewrite(0, &frame);
        let text = std::str::from_utf8(&out).unwrap();
        let expected = merge
            .set
            .encode_cursor(0, &[Some("5".into()), Some("h".into())]);
        assert_eq!(
            text,
            format!(":c\nid: {expected}\nevent: x\ndata: id: 9\n\n")
        );
        // A gap signal without a position keeps the topic's position.
        let gap = Bytes::from_static(b"id:\nevent: sse-gap\ndata: {}\n\n");
        let out = merge.rewrite(1, &gap);
        assert!(std::str::from_utf8(&out).unwrap().starts_with("id: b m1."));
        assert_eq!(merge.positions[1].as_deref(), Some("h"));
    }
}
