//! [`Alarms`]: the one timer and the shutdown registration an event stream waits on.

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
    time::Duration,
};

use pin_project_lite::pin_project;
use tokio::{
    sync::futures::OwnedNotified,
    time::{Instant, Sleep, sleep_until},
};

use crate::layer::Config;

/// Why an event stream woke up while its inner body had nothing to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Alarm {
    /// The shutdown signal was triggered.
    Shutdown,
    /// The stream has lived its maximum lifetime.
    LifetimeOver,
    /// Nothing was written for the heartbeat interval; the timer is already re-armed.
    Heartbeat,
}

pin_project! {
    /// Everything pinned that a stream waits on, boxed once per stream so that a connection
    /// holds one allocation and one timer at most.
    ///
    /// A single `Sleep` serves both the heartbeat and the lifetime: it is set to whichever
    /// comes first, and the cause is told apart when it fires.
    #[derive(Debug)]
    pub(crate) struct Alarms {
        #[pin]
        timer: Option<Sleep>,
        #[pin]
        shutdown: Option<OwnedNotified>,
        heartbeat: Option<Duration>,
        lifetime_end: Option<Instant>,
    }
}

impl Alarms {
    /// The alarms a new stream needs, or `None` when it needs none.
    ///
    /// # Panics
    ///
    /// When a timer is needed and there is no tokio runtime with the time driver enabled.
    pub(crate) fn new(config: &Config) -> Option<Pin<Box<Self>>> {
        let shutdown = config
            .shutdown
            .as_ref()
            .and_then(|signal| signal.register());
        if !config.needs_timer() && shutdown.is_none() {
            return None;
        }
        let mut alarms = Self {
            timer: None,
            shutdown,
            heartbeat: config.heartbeat,
            lifetime_end: None,
        };
        if config.needs_timer() {
            let now = Instant::now();
            alarms.lifetime_end = config.max_lifetime.as_ref().map(|l| now + l.pick());
            alarms.timer = alarms.deadline(now).map(sleep_until);
        }
        Some(Box::pin(alarms))
    }

    /// Restarts the heartbeat interval after a frame went out. Returns `true` once, when the
    /// stream has outlived its lifetime.
    pub(crate) fn on_frame(self: Pin<&mut Self>) -> bool {
        if self.heartbeat.is_none() && self.lifetime_end.is_none() {
            return false;
        }
        let now = Instant::now();
        let this = self.project();
        if this.lifetime_end.is_some_and(|end| end <= now) {
            *this.lifetime_end = None;
            rearm(this.timer, deadline(*this.heartbeat, None, now));
            return true;
        }
        if this.heartbeat.is_some() {
            // Cheap while events flow: pushing a timer's deadline later does not touch the
            // timer wheel.
            rearm(
                this.timer,
                deadline(*this.heartbeat, *this.lifetime_end, now),
            );
        }
        false
    }

    /// Waits for the shutdown signal or the timer.
    pub(crate) fn poll_alarm(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Alarm> {
        let mut this = self.project();
        if let Some(notified) = this.shutdown.as_mut().as_pin_mut() {
            if notified.poll(cx).is_ready() {
                this.shutdown.set(None);
                return Poll::Ready(Alarm::Shutdown);
            }
        }
        let Some(mut timer) = this.timer.as_mut().as_pin_mut() else {
            return Poll::Pending;
        };
        ready!(timer.as_mut().poll(cx));
        let now = Instant::now();
        if this.lifetime_end.is_some_and(|end| end <= now) {
            *this.lifetime_end = None;
            rearm(this.timer, deadline(*this.heartbeat, None, now));
            return Poll::Ready(Alarm::LifetimeOver);
        }
        // The next beat is due an interval after this one was due, not after it was polled
        // (as a tokio `Interval` does): streams due in the same tick of the timer stay
        // together, one wake-up of the runtime for them all, instead of drifting apart by the
        // time each waited to be polled. A stream more than an interval late starts afresh.
        let due = timer.deadline();
        let from = match *this.heartbeat {
            Some(interval) if due + interval > now => due,
            _ => now,
        };
        rearm(
            this.timer,
            deadline(*this.heartbeat, *this.lifetime_end, from),
        );
        Poll::Ready(Alarm::Heartbeat)
    }

    fn deadline(&self, now: Instant) -> Option<Instant> {
        deadline(self.heartbeat, self.lifetime_end, now)
    }
}

/// The next time the timer must fire: the heartbeat (an interval after `from`) or the end of
/// life, whichever is first.
fn deadline(
    heartbeat: Option<Duration>,
    lifetime_end: Option<Instant>,
    from: Instant,
) -> Option<Instant> {
    let beat = heartbeat.map(|interval| from + interval);
    match (beat, lifetime_end) {
        (Some(beat), Some(end)) => Some(beat.min(end)),
        (beat, end) => beat.or(end),
    }
}

fn rearm(mut timer: Pin<&mut Option<Sleep>>, deadline: Option<Instant>) {
    match (timer.as_mut().as_pin_mut(), deadline) {
        (Some(sleep), Some(deadline)) => sleep.reset(deadline),
        (None, Some(deadline)) => timer.set(Some(sleep_until(deadline))),
        (_, None) => timer.set(None),
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;

    fn alarms(heartbeat: Duration) -> Pin<Box<Alarms>> {
        let config = Config {
            heartbeat: Some(heartbeat),
            ..Config::default()
        };
        Alarms::new(&config).expect("a heartbeat needs a timer")
    }

    fn poll(alarms: &mut Pin<Box<Alarms>>) -> Poll<Alarm> {
        alarms
            .as_mut()
            .poll_alarm(&mut Context::from_waker(Waker::noop()))
    }

    fn next_due(alarms: &Alarms) -> Instant {
        alarms.timer.as_ref().map(Sleep::deadline).expect("armed")
    }

    #[tokio::test(start_paused = true)]
    async fn beats_keep_their_phase_and_frames_restart_it() {
        let interval = Duration::from_secs(10);
        let start = Instant::now();
        let mut alarms = alarms(interval);
        assert_eq!(poll(&mut alarms), Poll::Pending);
        assert_eq!(next_due(&alarms), start + interval);

        // Polled 300 ms after it was due (a busy runtime): the next beat is still due one
        // interval after this one was due, not after it was polled.
        tokio::time::advance(interval + Duration::from_millis(300)).await;
        assert_eq!(poll(&mut alarms), Poll::Ready(Alarm::Heartbeat));
        assert_eq!(next_due(&alarms), start + 2 * interval);
        assert_eq!(poll(&mut alarms), Poll::Pending);

        // More than a whole interval late: no burst of beats to catch up, the next one is an
        // interval from now.
        tokio::time::advance(interval + Duration::from_secs(15)).await;
        let now = Instant::now();
        assert_eq!(poll(&mut alarms), Poll::Ready(Alarm::Heartbeat));
        assert_eq!(next_due(&alarms), now + interval);
        assert_eq!(poll(&mut alarms), Poll::Pending);

        // A frame restarts the interval from the moment it went out.
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(!alarms.as_mut().on_frame());
        assert_eq!(next_due(&alarms), Instant::now() + interval);
        assert_eq!(poll(&mut alarms), Poll::Pending);
    }
}
