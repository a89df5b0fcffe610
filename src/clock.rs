//! Time for expiry checks. Boards often have no real-time clock and an
//! offline LAN may have no NTP: after a reboot the clock can start far in
//! the past, which would revive expired presigned URLs and keys; a bad NTP
//! answer or a wrong RTC can also put it far in the future, which would
//! kill every link.
//!
//! larder keeps a floor: a time it can vouch for, saved in the data folder.
//! Its time is the system clock, never earlier than the floor. The floor
//! moves on with the monotonic clock and no faster, so a clock that jumps
//! ahead is used while it is ahead but never written down: once it is put
//! right, every link works again. A system clock that stays ahead steadily
//! (the board was off, and its clock is right) is adopted after
//! [`PROBATION`]. Either disagreement is reported in the log and the
//! health answer.
//!
//! Object Lock asks the opposite question: not "has this expired?" but
//! "may this be released?", and a clock that runs ahead must never answer
//! yes early. Its time ([`Clock::retention_now`]) is a second saved value
//! that moves on only with the monotonic clock while larder runs, never
//! adopting a system clock ahead of it, and never ahead of the system
//! clock either: time a board spends switched off does not count, so a
//! retention can only last longer than its date, never shorter.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::timefmt;

const FLOOR_FILE: &str = "clock-floor";
const RETENTION_FILE: &str = "retention-clock";
/// Behind the floor by more than this, the system clock is wrong.
const BEHIND_TOLERANCE_SECS: i64 = 60;
/// Ahead of the floor by more than this, the system clock is suspect.
pub const AHEAD_TOLERANCE_SECS: i64 = 15 * 60;
/// How long a system clock must run steadily ahead before the floor
/// adopts it.
pub const PROBATION: Duration = Duration::from_secs(30 * 60);
/// How much a clock ahead may wander and still count as steady.
const STEADY_SECS: i64 = 5;

/// Where time comes from: the system clock (Unix seconds) and a monotonic
/// clock. Tests put in their own.
pub trait TimeSource: Send + Sync {
    fn system(&self) -> i64;
    fn monotonic(&self) -> Duration;
}

/// A time source given in the configuration (tests move the clock).
#[derive(Clone)]
pub struct TimeOverride(pub Arc<dyn TimeSource>);

impl std::fmt::Debug for TimeOverride {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TimeOverride")
    }
}

/// The machine's clocks.
pub struct SystemTime {
    start: Instant,
}

impl Default for SystemTime {
    fn default() -> SystemTime {
        SystemTime { start: Instant::now() }
    }
}

impl TimeSource for SystemTime {
    fn system(&self) -> i64 {
        timefmt::now()
    }

    fn monotonic(&self) -> Duration {
        self.start.elapsed()
    }
}

struct Floor {
    /// The floor at `at` (monotonic); it grows with the monotonic clock,
    /// from a fixed base so that no fraction of a second is ever lost.
    value: i64,
    at: Duration,
    /// The system clock has been ahead of the floor since this monotonic
    /// time, by this much.
    ahead_since: Option<(Duration, i64)>,
}

impl Floor {
    fn at(&self, monotonic: Duration) -> i64 {
        let elapsed = monotonic.saturating_sub(self.at).as_secs();
        self.value.saturating_add(i64::try_from(elapsed).unwrap_or(i64::MAX))
    }
}

/// How the system clock stands against the floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockState {
    Ok,
    /// Behind the floor by this many seconds: larder keeps the floor.
    Behind(i64),
    /// Ahead of the floor by this many seconds: used, not yet adopted.
    Ahead(i64),
}

pub struct Clock {
    floor: Mutex<Floor>,
    path: PathBuf,
    /// Object Lock's time: `value` at monotonic `at`, growing with it.
    retention: Mutex<Floor>,
    retention_path: PathBuf,
    source: Arc<dyn TimeSource>,
}

impl Clock {
    /// Reads the saved floor from `data_dir`.
    pub fn open(data_dir: &Path) -> Clock {
        Clock::with_source(data_dir, Arc::new(SystemTime::default()))
    }

    pub fn with_source(data_dir: &Path, source: Arc<dyn TimeSource>) -> Clock {
        let path = data_dir.join(FLOOR_FILE);
        let saved = fs::read_to_string(&path).ok().and_then(|text| text.trim().parse::<i64>().ok());
        let monotonic = source.monotonic();
        // A first start has no floor: the system clock is all there is.
        let value = saved.unwrap_or_else(|| source.system());
        let retention_path = data_dir.join(RETENTION_FILE);
        let saved = fs::read_to_string(&retention_path).ok().and_then(|text| text.trim().parse::<i64>().ok());
        let retention = saved.unwrap_or_else(|| value.min(source.system()));
        let clock = Clock {
            floor: Mutex::new(Floor { value, at: monotonic, ahead_since: None }),
            path,
            retention: Mutex::new(Floor { value: retention, at: monotonic, ahead_since: None }),
            retention_path,
            source,
        };
        clock.log_state();
        clock
    }

    fn floor(&self) -> std::sync::MutexGuard<'_, Floor> {
        self.floor.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// Now, as Unix seconds: the system clock, never earlier than the floor.
    pub fn now(&self) -> i64 {
        let system = self.source.system();
        let monotonic = self.source.monotonic();
        let mut floor = self.floor();
        let projected = floor.at(monotonic);
        if system > projected + AHEAD_TOLERANCE_SECS {
            let offset = system - projected;
            match floor.ahead_since {
                // Steadily ahead for the whole probation: the clock is right.
                Some((since, first)) if (offset - first).abs() <= STEADY_SECS => {
                    if monotonic.saturating_sub(since) >= PROBATION {
                        tracing::info!(
                            ahead_secs = offset,
                            "the system clock ran steadily ahead; larder now trusts it"
                        );
                        *floor = Floor { value: system, at: monotonic, ahead_since: None };
                    }
                }
                _ => floor.ahead_since = Some((monotonic, offset)),
            }
        } else {
            floor.ahead_since = None;
        }
        system.max(floor.at(monotonic))
    }

    /// Now for Object Lock, as Unix seconds: never ahead of the system
    /// clock, nor of the time larder has counted running (see the module
    /// comment). A retention is over only when this passes its date.
    pub fn retention_now(&self) -> i64 {
        let counted = self.retention.lock().unwrap_or_else(|poison| poison.into_inner()).at(self.source.monotonic());
        self.source.system().min(counted)
    }

    /// The system's wall clock, as Unix seconds (which `now` may overrule).
    pub fn system(&self) -> i64 {
        self.source.system()
    }

    /// How the system clock stands against the floor.
    pub fn state(&self) -> ClockState {
        self.now();
        let system = self.source.system();
        let projected = self.floor().at(self.source.monotonic());
        if system < projected - BEHIND_TOLERANCE_SECS {
            ClockState::Behind(projected - system)
        } else if system > projected + AHEAD_TOLERANCE_SECS {
            ClockState::Ahead(system - projected)
        } else {
            ClockState::Ok
        }
    }

    /// Says in the log what a wrong clock means and what to do about it.
    pub fn log_state(&self) {
        match self.state() {
            ClockState::Ok => {}
            ClockState::Behind(secs) => tracing::warn!(
                behind_secs = secs,
                "the system clock is behind the last time larder saw: expiry checks keep using that time until the \
                 clock catches up; set the clock or start NTP (timedatectl set-ntp true)"
            ),
            ClockState::Ahead(secs) => tracing::warn!(
                ahead_secs = secs,
                probation_secs = PROBATION.as_secs(),
                "the system clock is ahead of the time larder can vouch for: links and keys are judged by it while it \
                 is, but it is not saved; if it is wrong (a bad NTP server, a wrong RTC), correct it and every link \
                 works again; if it is right (the board was off), larder adopts it after the probation"
            ),
        }
    }

    /// Saves the floor and Object Lock's time; called now and then and at
    /// shutdown. A crash loses at most the time since: locks only last longer.
    pub fn persist(&self) {
        self.now();
        let floor = self.floor().at(self.source.monotonic());
        let retention = self.retention.lock().unwrap_or_else(|poison| poison.into_inner()).at(self.source.monotonic());
        for (path, value) in [(&self.path, floor), (&self.retention_path, retention)] {
            let tmp = path.with_extension("tmp");
            let result = fs::File::create(&tmp)
                .and_then(|mut file| {
                    std::io::Write::write_all(&mut file, value.to_string().as_bytes())?;
                    file.sync_all()
                })
                .and_then(|()| fs::rename(&tmp, path));
            if let Err(error) = result {
                tracing::warn!(%error, file = %path.display(), "could not save the clock");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

    use super::*;

    #[derive(Default)]
    struct Manual {
        system: AtomicI64,
        monotonic_secs: AtomicU64,
    }

    impl TimeSource for Manual {
        fn system(&self) -> i64 {
            self.system.load(Ordering::SeqCst)
        }

        fn monotonic(&self) -> Duration {
            Duration::from_secs(self.monotonic_secs.load(Ordering::SeqCst))
        }
    }

    impl Manual {
        /// Both clocks run on by `secs`.
        fn advance(&self, secs: i64) {
            self.system.fetch_add(secs, Ordering::SeqCst);
            self.monotonic_secs.fetch_add(secs as u64, Ordering::SeqCst);
        }
    }

    fn dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("larder-clock-{}", crate::store::BlobId::random().to_hex()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn open(dir: &Path, time: &Arc<Manual>) -> Clock {
        Clock::with_source(dir, time.clone())
    }

    /// Object Lock's time follows neither a clock in 1970 nor one in 2099,
    /// not even after the probation that makes `now` adopt the latter,
    /// nor across a restart.
    #[test]
    fn retention_time_never_runs_ahead() {
        let dir = dir();
        let time = Arc::new(Manual::default());
        time.system.store(1_800_000_000, Ordering::SeqCst);
        let clock = open(&dir, &time);
        assert_eq!(clock.retention_now(), 1_800_000_000);
        time.advance(60);
        assert_eq!(clock.retention_now(), 1_800_000_060, "it counts running time");
        // A board whose clock says 2099, steadily, past the probation.
        time.system.store(4_070_000_000, Ordering::SeqCst);
        for _ in 0..40 {
            time.advance(60);
            clock.now();
        }
        assert!(clock.now() >= 4_070_000_000, "expiry checks adopt the steady clock");
        assert_eq!(clock.retention_now(), 1_800_000_000 + 41 * 60, "Object Lock does not");
        clock.persist();
        let clock = open(&dir, &time);
        assert_eq!(clock.retention_now(), 1_800_000_000 + 41 * 60, "nor after a restart");
        // A board whose clock says 1970: not ahead of the system clock.
        time.system.store(0, Ordering::SeqCst);
        assert_eq!(clock.retention_now(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_clock_behind_the_floor_does_not_move_time_back() {
        let dir = dir();
        let time = Arc::new(Manual::default());
        time.system.store(1_000_000, Ordering::SeqCst);
        fs::write(dir.join(FLOOR_FILE), "1003600").unwrap();
        let clock = open(&dir, &time);
        assert_eq!(clock.now(), 1_003_600, "a floor from the future holds time up");
        assert_eq!(clock.state(), ClockState::Behind(3600));
        time.advance(100);
        assert_eq!(clock.now(), 1_003_700, "and moves on with the monotonic clock");
        clock.persist();
        assert_eq!(open(&dir, &time).now(), 1_003_700);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_jump_ahead_is_used_but_never_saved() {
        let dir = dir();
        let time = Arc::new(Manual::default());
        time.system.store(1_000_000, Ordering::SeqCst);
        let clock = open(&dir, &time);
        time.advance(60);
        assert_eq!(clock.now(), 1_000_060);
        // A bad NTP answer: a year ahead, for ten minutes.
        time.system.fetch_add(365 * 86_400, Ordering::SeqCst);
        assert_eq!(clock.now(), 1_000_060 + 365 * 86_400);
        assert!(matches!(clock.state(), ClockState::Ahead(_)));
        time.advance(600);
        clock.persist();
        let saved: i64 = fs::read_to_string(dir.join(FLOOR_FILE)).unwrap().trim().parse().unwrap();
        assert_eq!(saved, 1_000_660, "the floor moved only as far as the monotonic clock");
        // Put right: time is right again, now and after a restart.
        time.system.fetch_sub(365 * 86_400, Ordering::SeqCst);
        assert_eq!(clock.now(), 1_000_660);
        assert_eq!(clock.state(), ClockState::Ok);
        assert_eq!(open(&dir, &time).now(), 1_000_660);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_clock_steadily_ahead_is_adopted_after_probation() {
        let dir = dir();
        let time = Arc::new(Manual::default());
        fs::write(dir.join(FLOOR_FILE), "1000000").unwrap();
        // The board was off for a day; its clock is right.
        time.system.store(1_086_400, Ordering::SeqCst);
        let clock = open(&dir, &time);
        assert_eq!(clock.now(), 1_086_400);
        assert_eq!(clock.state(), ClockState::Ahead(86_400));
        time.advance(PROBATION.as_secs() as i64 / 2);
        clock.persist();
        assert!(fs::read_to_string(dir.join(FLOOR_FILE)).unwrap().trim().parse::<i64>().unwrap() < 1_010_000);
        time.advance(PROBATION.as_secs() as i64 / 2 + 1);
        clock.now();
        assert_eq!(clock.state(), ClockState::Ok);
        clock.persist();
        assert_eq!(open(&dir, &time).now(), time.system());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_first_start_trusts_the_system_clock() {
        let fresh = Clock::open(Path::new("/nonexistent-larder-dir"));
        assert!((fresh.now() - timefmt::now()).abs() <= 1);
        assert_eq!(fresh.state(), ClockState::Ok);
    }
}
