//! Group commit: concurrent writers that each need the index flushed share
//! one flush. A writer takes a ticket; if no flush is running it runs one
//! that covers every ticket taken so far, otherwise it waits for a flush
//! that started after its ticket.

use std::sync::{Condvar, Mutex};

#[derive(Default)]
struct State {
    tickets: u64,
    flushed: u64,
    flushing: bool,
}

#[derive(Default)]
pub struct GroupCommit {
    state: Mutex<State>,
    done: Condvar,
}

impl GroupCommit {
    /// Blocks until a flush that began after this call has succeeded.
    pub fn flush<E>(&self, run_flush: impl Fn() -> Result<(), E>) -> Result<(), E> {
        let mut state = self.state.lock().unwrap_or_else(|poison| poison.into_inner());
        state.tickets += 1;
        let ticket = state.tickets;
        loop {
            if state.flushed >= ticket {
                return Ok(());
            }
            if !state.flushing {
                state.flushing = true;
                let covers = state.tickets;
                drop(state);
                let result = run_flush();
                state = self.state.lock().unwrap_or_else(|poison| poison.into_inner());
                state.flushing = false;
                if result.is_ok() {
                    state.flushed = state.flushed.max(covers);
                }
                self.done.notify_all();
                result?;
                continue;
            }
            state = self.done.wait(state).unwrap_or_else(|poison| poison.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[test]
    fn concurrent_writers_share_flushes() {
        let commit = Arc::new(GroupCommit::default());
        let flushes = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (commit, flushes) = (commit.clone(), flushes.clone());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        commit
                            .flush(|| {
                                flushes.fetch_add(1, Ordering::SeqCst);
                                std::thread::sleep(std::time::Duration::from_millis(1));
                                Ok::<(), ()>(())
                            })
                            .unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let flushes = flushes.load(Ordering::SeqCst);
        assert!((20..320).contains(&flushes), "{flushes} flushes for 320 commits");
    }

    #[test]
    fn a_failed_flush_is_reported_and_retried() {
        let commit = GroupCommit::default();
        assert_eq!(commit.flush(|| Err("disk")), Err("disk"));
        assert_eq!(commit.flush(|| Ok::<(), &str>(())), Ok(()));
    }
}
