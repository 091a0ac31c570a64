//! The simulated network: frames between the server and each client, each delivered after a
//! random delay (so they reorder), or dropped, or duplicated; a client's link can be cut.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use cairn_core::retry::Millis;

use crate::rng::Rng;

/// An endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Node {
    Server,
    Client(usize),
}

/// How hostile the network is.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    pub drop: f64,
    pub duplicate: f64,
    pub max_delay: Millis,
}

/// A frame in flight.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Frame {
    pub from: Node,
    pub to: Node,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct Network {
    in_flight: BinaryHeap<Reverse<(Millis, u64, Frame)>>,
    sent: u64,
    /// `links[i]`: whether client `i` can reach the server.
    pub links: Vec<bool>,
}

impl Network {
    pub fn new(clients: usize) -> Self {
        Self {
            links: vec![true; clients],
            ..Self::default()
        }
    }

    fn client_of(frame: &Frame) -> usize {
        match (frame.from, frame.to) {
            (Node::Client(i), _) | (_, Node::Client(i)) => i,
            (Node::Server, Node::Server) => 0,
        }
    }

    /// Sends a frame at `now`, subject to `faults`.
    pub fn send(&mut self, frame: Frame, now: Millis, faults: Faults, rng: &mut Rng) {
        if !self.links[Self::client_of(&frame)] || rng.chance(faults.drop) {
            return;
        }
        let copies = if rng.chance(faults.duplicate) { 2 } else { 1 };
        for _ in 0..copies {
            let at = now + 1 + rng.below(faults.max_delay);
            self.sent += 1;
            self.in_flight.push(Reverse((at, self.sent, frame.clone())));
        }
    }

    /// The next frame due by `now`. Frames on a cut link are lost.
    pub fn deliver(&mut self, now: Millis) -> Option<Frame> {
        while let Some(Reverse((at, _, _))) = self.in_flight.peek() {
            if *at > now {
                return None;
            }
            let Reverse((_, _, frame)) = self.in_flight.pop()?;
            if self.links[Self::client_of(&frame)] {
                return Some(frame);
            }
        }
        None
    }

    pub fn is_idle(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// Every frame in flight to or from `node` is lost (its connection closed).
    pub fn drop_frames_of(&mut self, node: Node) {
        let kept: Vec<_> = self
            .in_flight
            .drain()
            .filter(|Reverse((_, _, f))| f.from != node && f.to != node)
            .collect();
        self.in_flight.extend(kept);
    }
}
