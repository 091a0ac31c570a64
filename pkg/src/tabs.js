// Many tabs: one tab at a time is the leader and runs network sync (Web Locks); every tab
// tells the others what it changed (BroadcastChannel). When the leader closes, its lock is
// released and the next waiting tab takes over.

export class Tabs {
  #channel;
  #release;
  #onMessage;
  closed = false;

  /** `onLeader()` runs when this tab becomes the leader; `onMessage(msg)` for every message from another tab. */
  constructor(name, { onLeader, onMessage }) {
    this.id = crypto.randomUUID();
    this.#onMessage = onMessage;
    if (typeof BroadcastChannel !== 'undefined') {
      this.#channel = new BroadcastChannel(`cairn:${name}`);
      this.#channel.onmessage = (event) => {
        if (event.data?.from !== this.id) this.#onMessage(event.data);
      };
    }
    const locks = globalThis.navigator?.locks;
    if (!locks) {
      queueMicrotask(onLeader); // nothing to coordinate with: lead
      return;
    }
    locks.request(`cairn:${name}:leader`, () => {
      if (this.closed) return undefined;
      onLeader();
      return new Promise((resolve) => { this.#release = resolve; });
    }).catch(() => {});
  }

  /** Tells every other tab. */
  post(message) {
    if (this.closed) return;
    this.#channel?.postMessage({ ...message, from: this.id });
  }

  close() {
    this.closed = true;
    this.#release?.();
    this.#channel?.close();
  }
}
