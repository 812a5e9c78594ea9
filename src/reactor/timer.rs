//! Deadlines for one worker: a min-heap of (instant, key) with lazy cancellation.
//!
//! Owners keep their current deadline themselves and re-arm freely. The heap holds at most
//! one live entry per owner and generation: `arm` pushes only when the new deadline is
//! earlier than the one already queued, and an entry that pops before its owner's current
//! deadline is simply re-queued. So the heap stays near one entry per connection however
//! often a deadline moves, which matters on keep-alive connections that move it per request.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// What a deadline belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKind {
    /// A slab entry (client connection, pooled upstream, subrequest connection).
    Slot,
    /// Accepting paused (connection limit or out of file descriptors) and should resume.
    ResumeAccept,
}

/// An index plus the owner's serial number, so the deadline of something that was closed
/// never fires on a newcomer that reused the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerKey {
    pub kind: TimerKind,
    pub index: usize,
    pub serial: u64,
}

#[derive(Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, TimerKey)>>,
    /// The instant of the last entry popped. Entries pop in order, so a deadline before it
    /// is no longer queued, whatever its owner remembers.
    last_popped: Option<Instant>,
}

impl Timers {
    /// Queues `key` to fire at `at`. `queued` is the earliest instant already queued for this
    /// owner (tracked by the owner); returns the new earliest queued instant. An owner may
    /// pass an instant that has popped meanwhile (its entry fired while another owner held
    /// the slot, for example), and that counts as nothing queued.
    pub fn arm(&mut self, key: TimerKey, at: Instant, queued: Option<Instant>) -> Option<Instant> {
        let queued = queued.filter(|&existing| self.last_popped.is_none_or(|popped| existing > popped));
        match queued {
            Some(existing) if existing <= at => Some(existing),
            _ => {
                self.heap.push(Reverse((at, key)));
                Some(at)
            }
        }
    }

    /// `arm` for a slab slot.
    pub fn arm_slot(&mut self, slot: usize, serial: u64, at: Instant, queued: Option<Instant>) -> Option<Instant> {
        self.arm(TimerKey { kind: TimerKind::Slot, index: slot, serial }, at, queued)
    }

    /// The earliest queued instant, to bound the poll timeout.
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Pops one entry that is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, TimerKey)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => {
                let entry = self.heap.pop().map(|Reverse(entry)| entry);
                if let Some((at, _)) = entry {
                    self.last_popped = Some(at);
                }
                entry
            }
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn later_rearm_does_not_grow_heap() {
        let mut timers = Timers::default();
        let start = Instant::now();
        let key = TimerKey { kind: TimerKind::Slot, index: 1, serial: 7 };
        let mut queued = None;
        for step in 1..100 {
            queued = timers.arm(key, start + Duration::from_millis(step), queued);
        }
        assert_eq!(timers.len(), 1);
        assert_eq!(queued, Some(start + Duration::from_millis(1)));
    }

    #[test]
    fn rearm_after_the_queued_entry_popped_queues_again() {
        let mut timers = Timers::default();
        let start = Instant::now();
        let key = TimerKey { kind: TimerKind::Slot, index: 3, serial: 9 };
        let queued = timers.arm(key, start + Duration::from_secs(1), None);
        assert!(timers.pop_due(start + Duration::from_secs(2)).is_some());
        // The owner still passes the popped instant, and its new, later deadline must be queued.
        let queued = timers.arm(key, start + Duration::from_secs(3), queued);
        assert_eq!(queued, Some(start + Duration::from_secs(3)));
        assert_eq!(timers.len(), 1);
    }

    #[test]
    fn pops_only_due_entries_in_order() {
        let mut timers = Timers::default();
        let start = Instant::now();
        let a = TimerKey { kind: TimerKind::Slot, index: 1, serial: 1 };
        let b = TimerKey { kind: TimerKind::Slot, index: 2, serial: 2 };
        timers.arm(b, start + Duration::from_secs(2), None);
        timers.arm(a, start + Duration::from_secs(1), None);
        assert_eq!(timers.pop_due(start), None);
        assert_eq!(timers.pop_due(start + Duration::from_secs(5)).map(|(_, k)| k), Some(a));
        assert_eq!(timers.pop_due(start + Duration::from_secs(5)).map(|(_, k)| k), Some(b));
        assert!(timers.is_empty());
    }
}
