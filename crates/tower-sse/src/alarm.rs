//! [`Alarms`]: the one timer and the shutdown registration an event stream waits on.

use std::{
    pin::Pin,
    sync::OnceLock,
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
            alarms.timer =
                deadline(alarms.heartbeat, alarms.lifetime_end, now, Grid::On).map(sleep_until);
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
            rearm(this.timer, deadline(*this.heartbeat, None, now, Grid::Off));
            return true;
        }
        if this.heartbeat.is_some() {
            // Cheap while events flow: pushing a timer's deadline later does not touch the
            // timer wheel.
            rearm(
                this.timer,
                deadline(*this.heartbeat, *this.lifetime_end, now, Grid::Off),
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
            rearm(this.timer, deadline(*this.heartbeat, None, now, Grid::On));
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
            deadline(*this.heartbeat, *this.lifetime_end, from, Grid::On),
        );
        Poll::Ready(Alarm::Heartbeat)
    }
}

/// Whether a heartbeat goes onto the grid of [`on_grid`].
#[derive(Clone, Copy)]
enum Grid {
    /// A stream's first beat, and beats after beats: idle streams share timer ticks.
    On,
    /// The beat after a frame: due exactly one interval after the frame.
    Off,
}

/// The next time the timer must fire: the heartbeat (an interval after `from`) or the end of
/// life, whichever is first.
fn deadline(
    heartbeat: Option<Duration>,
    lifetime_end: Option<Instant>,
    from: Instant,
    grid: Grid,
) -> Option<Instant> {
    let beat = heartbeat.map(|interval| match grid {
        Grid::On => on_grid(from + interval, interval),
        Grid::Off => from + interval,
    });
    match (beat, lifetime_end) {
        (Some(beat), Some(end)) => Some(beat.min(end)),
        (beat, end) => beat.or(end),
    }
}

/// The finest step of the heartbeat grid.
const MAX_GRID_STEP_NANOS: u64 = 8_000_000;

/// `at`, moved later onto the heartbeat grid of `interval`: steps of `interval / 2^k` (the
/// first at most 8 ms and at most 1/64 of the interval) from the start of each interval,
/// the intervals counted from one instant of the process.
///
/// Streams whose beats fall in the same step are woken by one timer tick: with tens of
/// thousands of idle streams the runtime wakes once per step instead of once per millisecond
/// that holds a beat, and each wake-up (a system call to wait, often a thread woken to help)
/// costs about what a heartbeat does. A beat is late by less than a step, and beats that
/// follow each other stay an interval apart.
fn on_grid(at: Instant, interval: Duration) -> Instant {
    static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
    let origin = Instant::from_std(*ORIGIN.get_or_init(std::time::Instant::now));
    let interval = u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX);
    let mut step = interval >> 6;
    while step > MAX_GRID_STEP_NANOS {
        step >>= 1;
    }
    if step == 0 {
        return at;
    }
    let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX) % interval;
    // The grid repeats every interval (its last step may be shorter), so that a grid point
    // plus the interval is a grid point. An instant before the origin (taken before the first
    // call) is on the same grid, counted backwards.
    let phase = match at.checked_duration_since(origin) {
        Some(since) => nanos(since),
        None => (interval - nanos(origin - at)) % interval,
    };
    let point = phase.div_ceil(step).saturating_mul(step).min(interval);
    at + Duration::from_nanos(point - phase)
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
        let first = next_due(&alarms);
        assert_eq!(first, on_grid(start + interval, interval));

        // Polled 300 ms after it was due (a busy runtime): the next beat is still due one
        // interval after this one was due, not after it was polled.
        tokio::time::advance(first - start + Duration::from_millis(300)).await;
        assert_eq!(poll(&mut alarms), Poll::Ready(Alarm::Heartbeat));
        assert_eq!(next_due(&alarms), first + interval);
        assert_eq!(poll(&mut alarms), Poll::Pending);

        // More than a whole interval late: no burst of beats to catch up, the next one is an
        // interval from now.
        tokio::time::advance(interval + Duration::from_secs(15)).await;
        let now = Instant::now();
        assert_eq!(poll(&mut alarms), Poll::Ready(Alarm::Heartbeat));
        assert_eq!(next_due(&alarms), on_grid(now + interval, interval));
        assert_eq!(poll(&mut alarms), Poll::Pending);

        // A frame restarts the interval from the moment it went out.
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(!alarms.as_mut().on_frame());
        assert_eq!(next_due(&alarms), Instant::now() + interval);
        assert_eq!(poll(&mut alarms), Poll::Pending);
    }

    #[test]
    fn the_grid_delays_a_beat_by_less_than_a_step_and_keeps_intervals_whole() {
        let at = Instant::now();
        for (interval, step) in [
            (
                Duration::from_secs(15),
                Duration::from_nanos(15_000_000_000 >> 11),
            ),
            (
                Duration::from_secs(1),
                Duration::from_nanos(1_000_000_000 >> 7),
            ),
            (
                Duration::from_millis(50),
                Duration::from_nanos(50_000_000 >> 6),
            ),
        ] {
            let mut points = Vec::new();
            for offset in (0..4 * step.as_micros() as u64).step_by(997) {
                let beat = at + Duration::from_micros(offset);
                let snapped = on_grid(beat, interval);
                assert!(
                    snapped >= beat && snapped - beat < step,
                    "{interval:?} {offset}"
                );
                assert_eq!(on_grid(snapped, interval), snapped, "a grid point stays");
                assert_eq!(on_grid(snapped + interval, interval), snapped + interval);
                points.push(snapped);
            }
            points.dedup();
            // Beats spread over four steps share at most five points.
            assert!(points.len() <= 5, "{interval:?}: {}", points.len());
        }
        // Too short to have a grid: left as it is.
        let tiny = Duration::from_nanos(40);
        assert_eq!(on_grid(at + tiny, tiny), at + tiny);
    }
}
