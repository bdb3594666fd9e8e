/**
 * Keeps one connection's requests on a key in the order the client sent them. Requests run
 * concurrently, which memcached's one-at-a-time loop never does; on a cluster a pipelined `get`
 * behind a `set` of the same key could then read before the write lands. A request waits for
 * those ahead of it on any of its keys; requests on other keys run at once. The map holds only
 * requests still in flight, so it is bounded by the connection's in-flight bound.
 */

const settledQuietly = (): void => undefined;

export class KeyOrder {
  private readonly lastOnKey = new Map<string, Promise<void>>();
  /** A request every later one waits for, whatever its keys (a `flush_all`), while in flight. */
  private barrier: Promise<void> | undefined;

  /** What a request on `keys` waits for before it may start, or undefined when nothing is ahead. */
  ahead(keys: readonly Buffer[]): Promise<void> | undefined {
    if (this.lastOnKey.size === 0) return this.barrier;
    const waits: Promise<void>[] = this.barrier ? [this.barrier] : [];
    for (const key of keys) {
      const last = this.lastOnKey.get(key.toString('latin1'));
      if (last && !waits.includes(last)) waits.push(last);
    }
    if (waits.length === 0) return undefined;
    return waits.length === 1 ? waits[0] : Promise.all(waits).then(settledQuietly);
  }

  /** A request on `keys` is in flight until `done` settles, however it settles. */
  track(keys: readonly Buffer[], done: Promise<unknown>): void {
    if (keys.length === 0) return;
    const settled = done.then(settledQuietly, settledQuietly);
    const names = keys.map((key) => key.toString('latin1'));
    for (const name of names) this.lastOnKey.set(name, settled);
    void settled.then(() => {
      for (const name of names) if (this.lastOnKey.get(name) === settled) this.lastOnKey.delete(name);
    });
  }

  /** A request on every key is in flight until `done` settles: later requests wait for it. */
  trackBarrier(done: Promise<unknown>): void {
    const settled = done.then(settledQuietly, settledQuietly);
    this.barrier = settled;
    void settled.then(() => {
      if (this.barrier === settled) this.barrier = undefined;
    });
  }

  /** Keys with a request in flight. */
  get size(): number {
    return this.lastOnKey.size;
  }
}
