//! One simulated run: the clock, the fault schedule, the chaos phase and the healing phase.

use std::collections::{BTreeMap, BTreeSet};

use cairn_core::retry::Millis;
use cairn_core::{ChangeHash, DocumentId};

use crate::check::{self, Violation};
use crate::client::SimClient;
use crate::net::{Faults, Frame, Network, Node};
use crate::rng::Rng;
use crate::server::SimServer;

/// The shape of a run. Every probability is per client (or server) per tick.
#[derive(Debug, Clone)]
pub struct Config {
    pub clients: usize,
    pub documents: usize,
    /// Simulated time with edits and faults.
    pub chaos_ms: Millis,
    /// After healing, the run must converge within this much simulated time.
    pub heal_limit_ms: Millis,
    pub tick_ms: Millis,
    pub faults: Faults,
    pub edit: f64,
    pub persist: f64,
    pub client_crash: f64,
    pub server_crash: f64,
    pub link_flip: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            clients: 3,
            documents: 2,
            chaos_ms: 1_500,
            heal_limit_ms: 30_000,
            tick_ms: 10,
            faults: Faults {
                drop: 0.2,
                duplicate: 0.1,
                max_delay: 60,
            },
            edit: 0.15,
            persist: 0.7,
            client_crash: 0.004,
            server_crash: 0.003,
            link_flip: 0.01,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub seed: u64,
    pub durable_changes: usize,
    pub client_crashes: usize,
    pub server_crashes: usize,
    pub frames: usize,
    /// Simulated time at which every replica had converged.
    pub converged_at: Millis,
}

struct World {
    rng: Rng,
    now: Millis,
    net: Network,
    server: SimServer,
    clients: Vec<SimClient>,
    documents: Vec<DocumentId>,
    /// Every local change that became durable on its client: it must never be lost.
    durable: BTreeMap<DocumentId, BTreeSet<ChangeHash>>,
    report: Report,
}

/// Plays one seed and checks the outcome.
pub fn run(seed: u64, config: &Config) -> Result<Report, Violation> {
    let mut rng = Rng::new(seed);
    let documents: Vec<DocumentId> = (0..config.documents)
        .map(|_| DocumentId::from_random_bytes(rng.bytes16()))
        .collect();
    let clients = (0..config.clients)
        .map(|_| SimClient::new(&documents, &mut rng))
        .collect();
    let mut world = World {
        rng,
        now: 0,
        net: Network::new(config.clients),
        server: SimServer::default(),
        clients,
        documents,
        durable: BTreeMap::new(),
        report: Report {
            seed,
            ..Report::default()
        },
    };
    while world.now < config.chaos_ms {
        world.step(config, true)?;
    }
    // Heal: no more edits or faults; every link up.
    for (i, up) in world.net.links.iter_mut().enumerate() {
        if !*up {
            *up = true;
            world.clients[i].needs_subscribe = true;
        }
    }
    let deadline = world.now + config.heal_limit_ms;
    while !world.converged() {
        if world.now >= deadline {
            return Err(Violation::NoConvergence {
                seed,
                at: world.now,
            });
        }
        world.step(config, false)?;
    }
    world.report.converged_at = world.now;
    world.report.durable_changes = world.durable.values().map(BTreeSet::len).sum();
    check::outcome(
        seed,
        &world.server,
        &mut world.clients,
        &world.documents,
        &world.durable,
    )?;
    Ok(world.report)
}

impl World {
    fn step(&mut self, config: &Config, chaos: bool) -> Result<(), Violation> {
        self.now += config.tick_ms;
        let faults = if chaos {
            config.faults
        } else {
            Faults {
                drop: 0.0,
                duplicate: 0.0,
                ..config.faults
            }
        };
        while let Some(frame) = self.net.deliver(self.now) {
            self.report.frames += 1;
            self.deliver(frame, faults)?;
        }
        if chaos && self.rng.chance(config.server_crash) {
            self.server.crash();
            self.net.drop_frames_of(Node::Server);
            self.clients
                .iter_mut()
                .for_each(|c| c.needs_subscribe = true);
            self.report.server_crashes += 1;
        }
        for i in 0..self.clients.len() {
            if chaos {
                self.chaos_for(i, config);
            }
            let client = &mut self.clients[i];
            if self.rng.chance(if chaos { config.persist } else { 1.0 }) {
                let durable = client.persist(self.now, &mut self.rng);
                record(&mut self.durable, durable);
            }
            for message in client.tick(self.now, self.net.links[i], &mut self.rng) {
                let frame = Frame {
                    from: Node::Client(i),
                    to: Node::Server,
                    bytes: message.encode(),
                };
                self.net.send(frame, self.now, faults, &mut self.rng);
            }
        }
        Ok(())
    }

    fn chaos_for(&mut self, i: usize, config: &Config) {
        if self.rng.chance(config.edit) {
            self.clients[i].edit(self.now, &mut self.rng);
        }
        if self.rng.chance(config.client_crash) {
            self.clients[i].crash(&mut self.rng);
            self.net.drop_frames_of(Node::Client(i));
            self.report.client_crashes += 1;
        }
        if self.rng.chance(config.link_flip) {
            let up = !self.net.links[i];
            self.net.links[i] = up;
            if up {
                self.clients[i].needs_subscribe = true;
            }
        }
    }

    fn deliver(&mut self, frame: Frame, faults: Faults) -> Result<(), Violation> {
        match frame.to {
            Node::Server => {
                let Node::Client(from) = frame.from else {
                    return Ok(());
                };
                for (to, message) in self.server.handle(from, &frame.bytes) {
                    let out = Frame {
                        from: Node::Server,
                        to,
                        bytes: message.encode(),
                    };
                    self.net.send(out, self.now, faults, &mut self.rng);
                }
            }
            Node::Client(i) => {
                let received = self.clients[i].receive(&frame.bytes, self.now, &mut self.rng);
                let durable = received.map_err(|detail| Violation::Protocol {
                    seed: self.report.seed,
                    client: i,
                    detail,
                })?;
                record(&mut self.durable, durable);
            }
        }
        Ok(())
    }

    fn converged(&mut self) -> bool {
        if !self.net.is_idle() || !self.clients.iter().all(SimClient::idle) {
            return false;
        }
        let documents = self.documents.clone();
        documents.iter().all(|d| {
            let server = self.server.heads(d);
            self.clients.iter_mut().all(|c| c.heads(d) == server)
        })
    }
}

fn record(
    durable: &mut BTreeMap<DocumentId, BTreeSet<ChangeHash>>,
    changes: Vec<(DocumentId, ChangeHash)>,
) {
    for (document, hash) in changes {
        durable.entry(document).or_default().insert(hash);
    }
}
