//! Ephemeral messages are gossiped: every peer passes them on to its other peers, so the same
//! message comes back to the server from every peer that got it. [`Seen`] keeps, per sending
//! peer and session, the highest `count` relayed, and lets a message through only once.

use std::collections::HashMap;

use super::wire::Ephemeral;

/// How many (peer, session) pairs are remembered before the oldest knowledge is dropped.
const CAPACITY: usize = 4096;

/// The ephemeral messages already relayed (for one document).
#[derive(Debug, Default)]
pub struct Seen {
    highest: HashMap<(String, String), u64>,
}

impl Seen {
    /// Whether `message` is new (and remembers it).
    pub fn fresh(&mut self, message: &Ephemeral) -> bool {
        let key = (message.sender.clone(), message.session.clone());
        match self.highest.get(&key) {
            Some(&count) if count >= message.count => false,
            _ => {
                if self.highest.len() >= CAPACITY && !self.highest.contains_key(&key) {
                    // Forgetting may let an old message through once more, never block a new one.
                    self.highest.clear();
                }
                self.highest.insert(key, message.count);
                true
            }
        }
    }
}
