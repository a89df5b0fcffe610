//! Group commit: concurrent writers that each need the same slow step
//! (the index's flush, removing garbage blobs) share one run of it. A writer
//! takes a ticket, with the items it brings; if no run is going it runs
//! one that covers every ticket taken so far and takes every item queued,
//! otherwise it waits for a run that started after its ticket.

use std::sync::{Condvar, Mutex};

struct State<T> {
    tickets: u64,
    flushed: u64,
    flushing: bool,
    /// The run going is a [`GroupCommit::run_or_hand_over`] writer's,
    /// which runs until nothing is queued.
    draining: bool,
    queued: Vec<T>,
}

pub struct GroupCommit<T = ()> {
    state: Mutex<State<T>>,
    done: Condvar,
}

impl<T> Default for GroupCommit<T> {
    fn default() -> Self {
        GroupCommit {
            state: Mutex::new(State { tickets: 0, flushed: 0, flushing: false, draining: false, queued: Vec::new() }),
            done: Condvar::new(),
        }
    }
}

impl GroupCommit<()> {
    /// Blocks until a flush that began after this call has succeeded.
    pub fn flush<E>(&self, run_flush: impl Fn() -> Result<(), E>) -> Result<(), E> {
        self.run_with(std::iter::empty(), |_| run_flush())
    }
}

impl<T> GroupCommit<T> {
    /// Queues `items` and blocks until a run that took them has succeeded.
    /// A failed run's items are dropped: `run` keeps what must be retried
    /// (and items handed over during it wait for the next writer).
    pub fn run_with<E>(
        &self,
        items: impl IntoIterator<Item = T>,
        run: impl Fn(Vec<T>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.submit(items, true, run)
    }

    /// Queues `items` and returns at once if another such writer's run is
    /// going (it takes them before it ends); otherwise runs, or waits for
    /// a waiting writer's run to end and then runs, until nothing is
    /// queued. For work nobody waits for: a thread does not sit waiting
    /// for it, and a writer that waits for its own items never ends up
    /// running everyone else's for as long as they keep coming.
    pub fn run_or_hand_over<E>(
        &self,
        items: impl IntoIterator<Item = T>,
        run: impl Fn(Vec<T>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.submit(items, false, run)
    }

    fn submit<E>(
        &self,
        items: impl IntoIterator<Item = T>,
        wait: bool,
        run: impl Fn(Vec<T>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut state = self.state.lock().unwrap_or_else(|poison| poison.into_inner());
        state.queued.extend(items);
        state.tickets += 1;
        let ticket = state.tickets;
        loop {
            if state.flushed >= ticket && (wait || state.queued.is_empty()) {
                return Ok(());
            }
            if !state.flushing {
                state.flushing = true;
                state.draining = !wait;
                let covers = state.tickets;
                let batch = std::mem::take(&mut state.queued);
                drop(state);
                let result = run(batch);
                state = self.state.lock().unwrap_or_else(|poison| poison.into_inner());
                state.flushing = false;
                if result.is_ok() {
                    state.flushed = state.flushed.max(covers);
                }
                self.done.notify_all();
                result?;
                continue;
            }
            if !wait && state.draining {
                return Ok(());
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
    fn every_item_is_run_once_before_its_writer_returns() {
        let commit = Arc::new(GroupCommit::<u64>::default());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..8u64)
            .map(|thread| {
                let (commit, seen) = (commit.clone(), seen.clone());
                std::thread::spawn(move || {
                    for n in 0..20 {
                        let item = thread * 100 + n;
                        commit
                            .run_with([item], |batch| {
                                seen.lock().unwrap().extend(batch);
                                std::thread::sleep(std::time::Duration::from_millis(1));
                                Ok::<(), ()>(())
                            })
                            .unwrap();
                        assert!(seen.lock().unwrap().contains(&item), "{item} returned before it ran");
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let mut seen = seen.lock().unwrap().clone();
        seen.sort_unstable();
        let expected: Vec<u64> = (0..8u64).flat_map(|thread| (0..20).map(move |n| thread * 100 + n)).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn handed_over_items_are_all_run() {
        let commit = Arc::new(GroupCommit::<u64>::default());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..8u64)
            .map(|thread| {
                let (commit, seen) = (commit.clone(), seen.clone());
                std::thread::spawn(move || {
                    for n in 0..50 {
                        commit
                            .run_or_hand_over([thread * 100 + n], |batch| {
                                seen.lock().unwrap().extend(batch);
                                std::thread::sleep(std::time::Duration::from_micros(200));
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
        // Every thread has returned, so no run is going: nothing is left.
        let mut seen = seen.lock().unwrap().clone();
        seen.sort_unstable();
        let expected: Vec<u64> = (0..8u64).flat_map(|thread| (0..50).map(move |n| thread * 100 + n)).collect();
        assert_eq!(seen, expected);
    }

    type Seen = Arc<Mutex<Vec<u64>>>;

    /// A group commit over numbers whose run, for a batch holding 1,
    /// reports through `running` that it started and then waits for `go`;
    /// every run records its batch in `seen`.
    #[allow(clippy::type_complexity)]
    fn gated() -> (
        Arc<GroupCommit<u64>>,
        Seen,
        std::sync::mpsc::Receiver<()>,
        std::sync::mpsc::Sender<()>,
        impl Fn(Vec<u64>) -> Result<(), ()> + Clone + Send + 'static,
    ) {
        let seen: Seen = Arc::new(Mutex::new(Vec::new()));
        let (started, running) = std::sync::mpsc::channel();
        let (go, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let run = {
            let seen = seen.clone();
            move |batch: Vec<u64>| {
                if batch.contains(&1) {
                    started.send(()).unwrap();
                    gate.lock().unwrap().recv().unwrap();
                }
                seen.lock().unwrap().extend(batch);
                Ok(())
            }
        };
        (Arc::new(GroupCommit::default()), seen, running, go, run)
    }

    #[test]
    fn the_running_writer_takes_what_is_handed_over_while_it_runs() {
        let (commit, seen, running, go, run) = gated();
        let leader = {
            let (commit, run) = (commit.clone(), run.clone());
            std::thread::spawn(move || commit.run_or_hand_over([1], run).unwrap())
        };
        running.recv().unwrap();
        // A run is going: this returns at once, its item not yet run.
        commit.run_or_hand_over([2], run).unwrap();
        assert_eq!(*seen.lock().unwrap(), Vec::<u64>::new());
        go.send(()).unwrap();
        leader.join().unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![1, 2], "the leader ran the handed-over item before it returned");
    }

    #[test]
    fn a_waiting_writer_runs_only_up_to_its_own_items() {
        let (commit, seen, running, go, run) = gated();
        let waiter = {
            let (commit, run) = (commit.clone(), run.clone());
            std::thread::spawn(move || commit.run_with([1], run).unwrap())
        };
        running.recv().unwrap();
        // Handed over while a waiting writer runs: this writer waits its
        // turn and runs it itself; the waiting writer returns after its own.
        let handing = {
            let commit = commit.clone();
            std::thread::spawn(move || commit.run_or_hand_over([2], run).unwrap())
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        go.send(()).unwrap();
        waiter.join().unwrap();
        handing.join().unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![1, 2]);
    }

    #[test]
    fn a_failed_flush_is_reported_and_retried() {
        let commit = GroupCommit::default();
        assert_eq!(commit.flush(|| Err("disk")), Err("disk"));
        assert_eq!(commit.flush(|| Ok::<(), &str>(())), Ok(()));
    }
}
