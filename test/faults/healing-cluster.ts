/**
 * A kai cluster on fault hosts (./netns) that a test breaks and heals node by node: kill -9 and
 * restart on the same data dir, stop and restart wiped, pause and resume, and read what each
 * node's membership and `stats kai` say. Node i (0-based) always runs on host i + 1, at the same
 * address and ports, so its id never changes across restarts. Every node logs to a file of its
 * own outside its data dir (appended across restarts, kept when the dir is wiped), so a failure
 * message can carry what the nodes said. Plain Node.
 */
import fs from 'node:fs';
import path from 'node:path';
import { statuses } from '../support/cluster';
import { delay } from '../support/servers';
import { linkNodes, pollStatusAt, type ReachableNode } from './cluster';
import { kaiStatsOf } from './memcache-client';
import { kaiMemcachePortDefault, kaiPortDefault, type FaultNetwork, type NamespacedKai } from './netns';

export interface HealingClusterOptions {
  readonly network: FaultNetwork;
  /** Data dirs and logs go under `<baseDir>/<name>/`. */
  readonly baseDir: string;
  readonly name: string;
  readonly size: number;
  /** Flags every node starts with; the log flags are added here. */
  readonly args: readonly string[];
  readonly linkTimeoutMs?: number;
}

/** Lines of each node's log a failure message carries. */
const logLinesShownMax = 40;
/** Characters of one log line shown. */
const logLineCharsMax = 400;
/** Polls of `stats kai` and membership, between attempts. */
const pollIntervalMs = 250;
/** `stats kai` for a summary line. */
const summaryStatsTimeoutMs = 3_000;

export class HealingCluster {
  /** The running process of each node, undefined while it is down. */
  private readonly running: (NamespacedKai | undefined)[];
  /** Every process ever started here, for the exit statuses in failure messages. */
  private readonly exits: string[] = [];
  readonly directory: string;

  private constructor(private readonly options: HealingClusterOptions) {
    if (options.size > options.network.hosts.length) throw new Error(`a cluster of ${options.size} needs ${options.size} fault hosts`);
    this.running = Array.from({ length: options.size }, () => undefined);
    this.directory = path.join(options.baseDir, options.name);
    fs.mkdirSync(this.directory, { recursive: true });
  }

  /** Starts every node at once and links them with `kai check-node`; resolves once all see all up. */
  static async start(options: HealingClusterOptions): Promise<HealingCluster> {
    const cluster = new HealingCluster(options);
    await Promise.all(cluster.indexes().map((index) => cluster.launch(index, [])));
    await linkNodes(cluster.indexes().map((index) => cluster.node(index)), cluster.directory, options.linkTimeoutMs ?? 20_000);
    return cluster;
  }

  get size(): number {
    return this.options.size;
  }

  indexes(): number[] {
    return Array.from({ length: this.options.size }, (_, index) => index);
  }

  /** Node `index`'s address and ports, whether it runs or not. */
  reachable(index: number): ReachableNode {
    const address = this.options.network.hosts[index].address;
    return { id: `${address}:${kaiPortDefault}`, address, memcachePort: kaiMemcachePortDefault };
  }

  get ids(): string[] {
    return this.indexes().map((index) => this.reachable(index).id);
  }

  /** The running process of node `index`; throws when it is down. */
  node(index: number): NamespacedKai {
    const node = this.running[index];
    if (node === undefined) throw new Error(`node ${index + 1} is not running`);
    return node;
  }

  isRunning(index: number): boolean {
    return this.running[index] !== undefined;
  }

  dataDir(index: number): string {
    return path.join(this.directory, `node${index + 1}`);
  }

  logFile(index: number): string {
    return path.join(this.directory, `node${index + 1}.log`);
  }

  private async launch(index: number, extraArgs: readonly string[]): Promise<NamespacedKai> {
    if (this.running[index] !== undefined) throw new Error(`node ${index + 1} is already running`);
    const network = this.options.network;
    const node = await network.startKaiIn(network.hosts[index], {
      dataDir: this.dataDir(index),
      cwd: this.directory,
      args: [...this.options.args, '--log-level', 'info', '--log-file', this.logFile(index), ...extraArgs],
    });
    this.running[index] = node;
    void node.exited.then((status) => {
      this.exits.push(`node ${index + 1} pid ${node.pid} exited ${status.signal ?? status.code}`);
      if (this.running[index] === node) this.running[index] = undefined;
    });
    return node;
  }

  /** SIGKILL, as a crash: nothing is flushed or said goodbye. Resolves once the process is gone. */
  async kill(index: number): Promise<void> {
    const node = this.node(index);
    this.running[index] = undefined;
    await node.kill();
  }

  /** SIGTERM, a clean stop. */
  async stop(index: number): Promise<void> {
    const node = this.node(index);
    this.running[index] = undefined;
    await node.stop('SIGTERM');
  }

  /** Starts node `index` again on its own address, ports and data dir. */
  restart(index: number): Promise<NamespacedKai> {
    return this.launch(index, []);
  }

  /**
   * Starts node `index` with an empty data dir, as a replaced disk: it has no member list, so it
   * is given the others as seeds (`--seed`) to rejoin through. The node must be stopped first.
   */
  async restartWiped(index: number): Promise<NamespacedKai> {
    if (this.running[index] !== undefined) throw new Error(`node ${index + 1} must be stopped before its data dir is wiped`);
    fs.rmSync(this.dataDir(index), { recursive: true, force: true });
    const seeds = this.indexes()
      .filter((other) => other !== index)
      .map((other) => this.reachable(other).id);
    return this.launch(index, ['--seed', seeds.join(',')]);
  }

  pause(index: number): void {
    this.node(index).pause();
  }

  resume(index: number): void {
    this.node(index).resume();
  }

  /**
   * Waits until node `observer` sees each member with the status `expected` gives (by index);
   * throws with its last view when that does not happen within `timeoutMs`.
   */
  async waitForView(observer: number, expected: Readonly<Record<number, 'up' | 'down'>>, timeoutMs: number): Promise<void> {
    const wanted = Object.fromEntries(Object.entries(expected).map(([index, status]) => [this.reachable(Number(index)).id, status]));
    const matches = (members: Parameters<typeof statuses>[0]): boolean => {
      const seen = statuses(members);
      return Object.entries(wanted).every(([id, status]) => seen[id] === status);
    };
    const view = await pollStatusAt(this.reachable(observer), matches, timeoutMs, this.directory);
    if (!matches(view)) {
      throw new Error(`node ${observer + 1} did not see ${JSON.stringify(wanted)} within ${timeoutMs} ms; it sees ${JSON.stringify(statuses(view))}`);
    }
  }

  /** Waits until every running node sees every node up. */
  async waitAllUp(timeoutMs: number): Promise<void> {
    const deadlineMs = Date.now() + timeoutMs;
    const allUp = Object.fromEntries(this.indexes().map((index) => [index, 'up' as const]));
    for (const index of this.indexes()) {
      if (this.isRunning(index)) await this.waitForView(index, allUp, Math.max(0, deadlineMs - Date.now()));
    }
  }

  /** `stats kai` of every running node, by index. */
  async kaiStats(timeoutMs?: number): Promise<Map<number, Map<string, string>>> {
    const running = this.indexes().filter((index) => this.isRunning(index));
    const all = await Promise.all(running.map((index) => kaiStatsOf(this.reachable(index), timeoutMs)));
    return new Map(running.map((index, position) => [index, all[position]]));
  }

  /** One counter of `stats kai` summed over the running nodes. */
  static sum(stats: Map<number, Map<string, string>>, name: string): number {
    let total = 0;
    for (const rows of stats.values()) total += Number(rows.get(name) ?? 0);
    return total;
  }

  /**
   * Polls `stats kai` until `accept` holds, every pollIntervalMs for at most `timeoutMs`;
   * returns whether it did, the elapsed time and the last stats.
   */
  async pollStats(
    accept: (stats: Map<number, Map<string, string>>) => boolean,
    timeoutMs: number,
  ): Promise<{ readonly ok: boolean; readonly elapsedMs: number; readonly stats: Map<number, Map<string, string>> }> {
    const startedMs = Date.now();
    for (;;) {
      const stats = await this.kaiStats().catch(() => undefined);
      const elapsedMs = Date.now() - startedMs;
      if (stats !== undefined && accept(stats)) return { ok: true, elapsedMs, stats };
      if (elapsedMs >= timeoutMs) return { ok: false, elapsedMs, stats: stats ?? new Map() };
      await delay(pollIntervalMs);
    }
  }

  /** Healing counters of every running node, one line each, for logs and failure messages. */
  async healingSummary(): Promise<string> {
    const names = [
      'hints_pending',
      'hints_delivered',
      'handoff_copies_dropped',
      'handoff_failures',
      'anti_entropy_exchanges',
      'anti_entropy_failures',
      'anti_entropy_keys_fetched',
      'anti_entropy_keys_pushed',
      'read_repairs',
      'reaped',
      'reaps_deferred',
      'write_quorum_unmet',
      'read_quorum_unmet',
    ];
    try {
      // Short: a failure message should not wait long on a node that is paused or cut off.
      const stats = await this.kaiStats(summaryStatsTimeoutMs);
      return [...stats]
        .map(([index, rows]) => `node ${index + 1}: ${names.map((name) => `${name}=${rows.get(name) ?? '?'}`).join(' ')} member_down_logged=${this.logLines(index, '"msg":"member down"').length}`)
        .join('\n');
    } catch (error) {
      return `stats kai unavailable: ${String(error)}`;
    }
  }

  /** Lines of node `index`'s log that contain `text`. */
  logLines(index: number, text: string): string[] {
    try {
      return fs
        .readFileSync(this.logFile(index), 'utf8')
        .split('\n')
        .filter((line) => line.includes(text));
    } catch {
      return [];
    }
  }

  /** The last lines each node logged, and how its processes exited: for failure messages. */
  logTails(): string {
    const parts = [`cluster ${this.options.name}: ${this.ids.join(', ')}; data and logs in ${this.directory}`];
    if (this.exits.length > 0) parts.push(`exits: ${this.exits.join('; ')}`);
    for (const index of this.indexes()) {
      let lines: string[] = [];
      try {
        lines = fs.readFileSync(this.logFile(index), 'utf8').split('\n').filter((line) => line !== '');
      } catch {
        // No log yet.
      }
      const running = this.running[index];
      const stderr = running?.stderr().trim() ?? '';
      parts.push(
        `--- node ${index + 1} (${this.reachable(index).id}) log, last ${Math.min(lines.length, logLinesShownMax)} of ${lines.length} lines:`,
        ...lines.slice(-logLinesShownMax).map((line) => line.slice(0, logLineCharsMax)),
        ...(stderr === '' ? [] : [`--- node ${index + 1} stderr:`, stderr.slice(-2000)]),
      );
    }
    return parts.join('\n');
  }

  /** SIGKILLs every running node (a paused one too) and waits for the exits. */
  async shutdown(): Promise<void> {
    await Promise.all(
      this.indexes()
        .filter((index) => this.isRunning(index))
        .map((index) => this.kill(index).catch(() => undefined)),
    );
  }
}

/**
 * Runs `body` against a cluster, and on failure appends the nodes' logs and healing counters to
 * the error; always shuts the cluster down and heals the network after.
 */
export async function withCluster(options: HealingClusterOptions, body: (cluster: HealingCluster) => Promise<void>): Promise<void> {
  const cluster = await HealingCluster.start(options);
  try {
    await body(cluster);
  } catch (error) {
    const summary = await cluster.healingSummary();
    const message = error instanceof Error ? error.message : String(error);
    const wrapped = new Error(`${message}\n\nhealing counters:\n${summary}\n\n${cluster.logTails()}`);
    if (error instanceof Error && error.stack !== undefined) wrapped.stack = `${wrapped.message}\n${error.stack.split('\n').slice(1).join('\n')}`;
    throw wrapped;
  } finally {
    await cluster.shutdown();
    await options.network.heal();
  }
}
