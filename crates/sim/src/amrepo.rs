//! automerge-repo peers through Cairn's side of their protocol (`cairn_core::amrepo`):
//! clients that behave like automerge-repo's (`join`, then `request` or `sync` per document,
//! one Automerge sync state per connection) edit one document while connections drop and
//! come back, frames on the wire interleaving across connections in a seeded order. The
//! server commits only what [`incoming_changes`] says is new, as the real driver does.
//!
//! [`run_amrepo`] checks, once every client is connected again and the wire is quiet: every
//! client and the server have the same heads, every change any client made is on the server,
//! and the server committed each change exactly once.

use std::collections::VecDeque;

use automerge::sync::{self, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{AutoCommit, Automerge};
use cairn_core::DocumentId;
use cairn_core::amrepo::wire::{self, Incoming, PeerMetadata};
use cairn_core::amrepo::{Event, Session, incoming_changes};

use crate::rng::Rng;

const SERVER: &str = "cairn";

/// A run's size.
#[derive(Debug, Clone, Copy)]
pub struct AmConfig {
    pub clients: usize,
    pub steps: usize,
}

impl Default for AmConfig {
    fn default() -> Self {
        Self {
            clients: 3,
            steps: 300,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmReport {
    pub edits: usize,
    pub reconnects: usize,
    pub frames: usize,
}

struct Client {
    name: String,
    doc: AutoCommit,
    state: sync::State,
    /// The server's side of this client's connection, while connected.
    session: Option<Session>,
    up: VecDeque<Vec<u8>>,
    down: VecDeque<Vec<u8>>,
    /// Whether the server said `peer` on this connection.
    joined: bool,
}

struct World {
    document: DocumentId,
    server: Automerge,
    committed: usize,
    clients: Vec<Client>,
    frames: usize,
}

impl World {
    fn connect(&mut self, i: usize) {
        let c = &mut self.clients[i];
        c.session = Some(Session::new(SERVER, "cairn-storage", 16));
        c.state = sync::State::new(); // automerge-repo keeps none for a new connection
        c.up.clear();
        c.down.clear();
        c.joined = false;
        let join = Incoming::Join {
            sender: c.name.clone(),
            metadata: PeerMetadata::default(),
            versions: Some(vec!["1".into()]),
        };
        c.up.push_back(join.encode(SERVER));
    }

    /// The client says what it has, if anything.
    fn speak(&mut self, i: usize) {
        let c = &mut self.clients[i];
        if !c.joined {
            return;
        }
        let request = c.doc.get_heads().is_empty();
        let message = c.doc.sync().generate_sync_message(&mut c.state);
        if let Some(message) = message {
            let frame = Incoming::Sync {
                sender: c.name.clone(),
                document: self.document,
                request,
                data: message.encode(),
            };
            c.up.push_back(frame.encode(SERVER));
        }
    }

    /// The server takes one frame from client `i`.
    fn serve(&mut self, i: usize) -> Result<(), String> {
        let Some(frame) = self.clients[i].up.pop_front() else {
            return Ok(());
        };
        self.frames += 1;
        let Some(session) = self.clients[i].session.as_mut() else {
            return Ok(());
        };
        match session.handle(&frame) {
            Ok(Event::Joined { reply, .. }) => self.clients[i].down.push_back(reply),
            Ok(Event::Sync {
                document, message, ..
            }) => {
                if self.server.get_heads().is_empty() && message.heads.is_empty() {
                    let reply = session.unavailable(&document);
                    self.clients[i].down.push_back(reply);
                    return Ok(());
                }
                session.open(document, false).map_err(|r| r.reason)?;
                let new = incoming_changes(&self.server, &message)
                    .map_err(|e| format!("incoming changes: {e}"))?;
                let grew = !new.is_empty();
                self.committed += new.len();
                self.server
                    .apply_changes(new)
                    .map_err(|e| format!("server apply: {e}"))?;
                session
                    .received(&document, &mut self.server, message)
                    .map_err(|r| r.reason)?;
                // This connection's answer, then every other's push (the hub's marks).
                for j in (0..self.clients.len()).filter(|&j| j == i || grew) {
                    let server = &self.server;
                    let c = &mut self.clients[j];
                    if let Some(s) = c.session.as_mut().filter(|s| s.is_open(&document))
                        && let Some(out) = s.outgoing(&document, server)
                    {
                        c.down.push_back(out);
                    }
                }
            }
            Ok(_) => {}
            Err(refusal) => return Err(format!("server refused: {}", refusal.reason)),
        }
        Ok(())
    }

    /// Client `i` takes one frame from the server.
    fn hear(&mut self, i: usize) -> Result<(), String> {
        let Some(frame) = self.clients[i].down.pop_front() else {
            return Ok(());
        };
        self.frames += 1;
        match wire::decode(&frame).map_err(|e| e.to_string())? {
            Incoming::Unknown { kind, .. } if kind == "peer" => {
                self.clients[i].joined = true;
                self.speak(i);
            }
            Incoming::Sync { data, .. } => {
                let c = &mut self.clients[i];
                let message = sync::Message::decode(&data).map_err(|e| e.to_string())?;
                c.doc
                    .sync()
                    .receive_sync_message(&mut c.state, message)
                    .map_err(|e| format!("{} receives: {e}", c.name))?;
                self.speak(i);
            }
            Incoming::DocUnavailable { .. } => {} // asks again on its next edit or reconnect
            other => return Err(format!("unexpected frame {other:?}")),
        }
        Ok(())
    }
}

/// Plays one seed (see the module docs).
pub fn run_amrepo(seed: u64, config: &AmConfig) -> Result<AmReport, String> {
    let mut rng = Rng::new(seed);
    let mut world = World {
        document: DocumentId::from_random_bytes(rng.bytes16()),
        server: Automerge::new(),
        committed: 0,
        clients: (0..config.clients)
            .map(|i| Client {
                name: format!("peer-{i}"),
                doc: AutoCommit::new().with_actor(automerge::ActorId::from(rng.bytes16())),
                state: sync::State::new(),
                session: None,
                up: VecDeque::new(),
                down: VecDeque::new(),
                joined: false,
            })
            .collect(),
        frames: 0,
    };
    let (mut edits, mut reconnects) = (0, 0);
    for i in 0..config.clients {
        world.connect(i);
    }
    for _ in 0..config.steps {
        let i = rng.below(config.clients as u64) as usize;
        match rng.below(10) {
            0..=2 => {
                let c = &mut world.clients[i];
                let key = format!("k{}", rng.below(5));
                c.doc
                    .put(automerge::ROOT, key, rng.below(1000) as i64)
                    .map_err(|e| e.to_string())?;
                c.doc.commit();
                edits += 1;
                world.speak(i);
            }
            3 => {
                reconnects += 1;
                world.connect(i);
            }
            4..=6 => world.serve(i)?,
            _ => world.hear(i)?,
        }
    }
    // Heal: everyone connected, the wire drained (bounded).
    for i in 0..config.clients {
        world.connect(i);
    }
    for _ in 0..10_000 {
        let busy = world
            .clients
            .iter()
            .any(|c| !c.up.is_empty() || !c.down.is_empty());
        if !busy {
            break;
        }
        for i in 0..config.clients {
            world.serve(i)?;
            world.hear(i)?;
        }
    }
    let heads = world.server.get_heads();
    for c in &mut world.clients {
        if c.doc.get_heads() != heads {
            return Err(format!(
                "seed {seed}: {} has other heads than the server",
                c.name
            ));
        }
    }
    let stored = world.server.get_changes(&[]).len();
    if stored != world.committed {
        return Err(format!(
            "seed {seed}: {} changes committed for {stored} stored",
            world.committed
        ));
    }
    Ok(AmReport {
        edits,
        reconnects,
        frames: world.frames,
    })
}
