//! Fault injection for the crash tests (R35): make a worker die at the worst
//! moment, after a job's effect and before its outcome is recorded and acked.

use std::sync::atomic::{AtomicBool, Ordering};

/// Fault injection for crash tests: when armed, the next job of `kind` that
/// finishes its effect is abandoned before it is marked and acked, and its
/// channel is closed, exactly as if the process had died there.
#[derive(Default)]
pub struct Faults {
    crash_after_effect: std::sync::Mutex<Option<&'static str>>,
    crashed: AtomicBool,
}

impl Faults {
    pub fn crash_after_effect_once(&self, kind: &'static str) {
        *self
            .crash_after_effect
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(kind);
    }
    pub fn has_crashed(&self) -> bool {
        self.crashed.load(Ordering::SeqCst)
    }
    pub(crate) fn take(&self, kind: &str) -> bool {
        let mut armed = self
            .crash_after_effect
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if *armed == Some(kind) {
            *armed = None;
            self.crashed.store(true, Ordering::SeqCst);
            true
        } else {
            false
        }
    }
}
