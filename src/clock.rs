//! Time for expiry checks that never runs backwards. Boards often have no
//! real-time clock and an offline LAN may have no NTP: after a reboot the
//! clock can start far in the past, which would revive expired presigned
//! URLs and keys. larder keeps a floor (the latest time it has seen, saved
//! in the data folder) and never lets its time fall below it; a clock
//! behind the floor is reported loudly, in the log and the health answer.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};

use crate::timefmt;

const FLOOR_FILE: &str = "clock-floor";
/// Behind the floor by more than this, the clock is reported as wrong.
const TOLERANCE_SECS: i64 = 60;

pub struct Clock {
    floor: AtomicI64,
    path: PathBuf,
}

impl Clock {
    /// Reads the saved floor from `data_dir`.
    pub fn open(data_dir: &Path) -> Clock {
        let path = data_dir.join(FLOOR_FILE);
        let saved = fs::read_to_string(&path).ok().and_then(|text| text.trim().parse::<i64>().ok()).unwrap_or(0);
        let clock = Clock { floor: AtomicI64::new(saved), path };
        let behind = clock.behind_secs();
        if behind > TOLERANCE_SECS {
            tracing::warn!(
                behind_secs = behind,
                "the system clock is behind the last time larder saw: it keeps using that time for expiry checks until the clock catches up (is NTP running?)"
            );
        }
        clock
    }

    /// Now, as Unix seconds, never earlier than a time already seen.
    pub fn now(&self) -> i64 {
        let system = timefmt::now();
        let floor = self.floor.fetch_max(system, Ordering::Relaxed);
        floor.max(system)
    }

    /// How far the system clock is behind the floor (0 when it is not).
    pub fn behind_secs(&self) -> i64 {
        (self.floor.load(Ordering::Relaxed) - timefmt::now()).max(0)
    }

    /// Saves the floor; called now and then and at shutdown.
    pub fn persist(&self) {
        let floor = self.now();
        let tmp = self.path.with_extension("tmp");
        let result = fs::File::create(&tmp)
            .and_then(|mut file| {
                std::io::Write::write_all(&mut file, floor.to_string().as_bytes())?;
                file.sync_all()
            })
            .and_then(|()| fs::rename(&tmp, &self.path));
        if let Err(error) = result {
            tracing::warn!(%error, "could not save the clock floor");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_never_runs_backwards() {
        let dir = std::env::temp_dir().join(format!("larder-clock-{}", crate::store::BlobId::random().to_hex()));
        fs::create_dir_all(&dir).unwrap();
        let ahead = timefmt::now() + 3600;
        fs::write(dir.join(FLOOR_FILE), ahead.to_string()).unwrap();
        let clock = Clock::open(&dir);
        assert!(clock.now() >= ahead, "a floor from the future holds time up");
        assert!(clock.behind_secs() > 3500);
        clock.persist();
        assert_eq!(Clock::open(&dir).now(), clock.now());
        fs::remove_dir_all(&dir).unwrap();
        let fresh = Clock::open(Path::new("/nonexistent-larder-dir"));
        assert!((fresh.now() - timefmt::now()).abs() <= 1);
        assert_eq!(fresh.behind_secs(), 0);
    }
}
