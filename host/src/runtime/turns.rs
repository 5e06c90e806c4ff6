//! Commit turns for calls that run side by side but must apply in order: the batches of one
//! import. Each batch plans in an instance of its own — the CPU-heavy part — while the store
//! takes their commits one batch after the other, in input order, so a later row still wins
//! over an earlier one as in a sequential import. A batch planned on data an earlier batch then
//! changed fails its optimistic checks at its turn and is planned again by the component.

use std::sync::{Condvar, Mutex};

/// The turn of each ticket (0, 1, 2, ...): a ticket's commits wait until every earlier ticket
/// is [`Turns::finish`]ed.
#[derive(Debug, Default)]
pub struct Turns {
    state: Mutex<TurnState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct TurnState {
    /// The ticket whose turn it is.
    current: u64,
    /// Set when the run gave up: waiting commits are refused instead of waiting forever.
    aborted: bool,
}

impl Turns {
    /// New turns, starting with ticket 0.
    pub fn new() -> Turns {
        Turns::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, TurnState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until it is `ticket`'s turn; `false` if the run was aborted meanwhile.
    pub(super) fn wait(&self, ticket: u64) -> bool {
        let mut state = self.state();
        while state.current < ticket && !state.aborted {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        !state.aborted
    }

    /// Ends `ticket`'s turn once it has come (its call returned): the next ticket may commit.
    pub fn finish(&self, ticket: u64) {
        if self.wait(ticket) {
            let mut state = self.state();
            state.current = state.current.max(ticket + 1);
        }
        self.changed.notify_all();
    }

    /// Gives up: every waiting and later commit is refused.
    pub fn abort(&self) {
        self.state().aborted = true;
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn tickets_take_their_turns_in_order_whatever_order_they_arrive_in() {
        let turns = Arc::new(Turns::new());
        let order = Arc::new(Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..4u64)
            .rev()
            .map(|ticket| {
                let (turns, order) = (turns.clone(), order.clone());
                std::thread::spawn(move || {
                    assert!(turns.wait(ticket));
                    order.lock().unwrap().push(ticket);
                    turns.finish(ticket);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3]);
        let aborted = Turns::new();
        aborted.abort();
        assert!(!aborted.wait(5));
    }
}
