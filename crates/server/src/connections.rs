//! Per-user count of open WebSocket connections on this replica, for the
//! connections-per-user limit. A slot is released when its guard drops.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
pub struct Connections {
    open: Mutex<HashMap<String, usize>>,
}

/// One open connection; closing it (dropping the slot) frees it.
#[derive(Debug)]
pub struct Slot {
    connections: Arc<Connections>,
    user: String,
}

impl Connections {
    /// Takes a slot for `user` unless they already have `max` open.
    pub fn acquire(self: &Arc<Self>, user: &str, max: usize) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(user.to_owned()).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            connections: self.clone(),
            user: user.to_owned(),
        })
    }

    /// Open connections of every user.
    pub fn total(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .sum()
    }

    /// Waits (polling, up to `limit`) until every connection has closed: at shutdown, each
    /// sends its going-away frame and drops its slot; the process must not exit before.
    pub async fn wait_closed(&self, limit: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.total() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    pub fn open_for(&self, user: &str) -> usize {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(user)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .connections
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.user);
            }
        }
    }
}
