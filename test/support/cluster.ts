/**
 * Clusters of real `kai` processes on 127.0.0.1: start nodes on free ports, link them with
 * `kai check-node`, wait until every node sees every member up, and read a node's view with
 * `kai status --json`. Plain Node (no jest), like ./servers, so that bench/ uses it too.
 *
 *   const nodes = await startCluster({ baseDir, size: 3, args: ['--n', '3', '--r', '2', '--w', '2'] });
 *   // ... talk to 127.0.0.1:nodes[i].memcachePort ...
 *   const view = await pollStatus(nodes[0].port, (members) => ..., timeoutMs, baseDir);
 *   afterAll(killStartedKai);   // SIGKILLs every node still running
 */
import fs from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { runKai, startKai, type KaiProcess } from './process';
import { delay, loopbackHost } from './servers';

/**
 * How long startCluster waits for every node to see every member up, unless told otherwise: ample
 * for a loaded machine, where founding the ring and moving its buckets is slow; the wait ends as
 * soon as every node sees the others.
 */
export const convergeTimeoutMsDefault = 60_000;
/** Between two `kai status` runs while polling; each run is a process start, so not much less. */
export const statusPollMsDefault = 200;

/** One member as `kai status --json` prints it (docs/operations.md). */
export interface StatusMember {
  readonly id: string;
  readonly address: string;
  readonly status: string;
  /** owner, joining, leaving or outside. */
  readonly ring: string;
  readonly zone: string;
  readonly ownership: number;
}

export interface ClusterNode extends KaiProcess {
  /** The node's id: its internal address, `127.0.0.1:<port>`. */
  readonly id: string;
  readonly dataDir: string;
}

export interface StartClusterOptions {
  /** Each node's data dir is `<baseDir>/node<i>`; kai commands run here too. */
  readonly baseDir: string;
  readonly size: number;
  /** Flags every node starts with (quorum, gossip interval, log level). */
  readonly args?: readonly string[];
  readonly convergeTimeoutMs?: number;
}

/**
 * Starts `size` nodes at once, links the first with each other one by `kai check-node`, and
 * resolves once every node's own view lists every member up. Nodes started before a failure
 * stay tracked, so the caller's cleanup (killStartedKai) still ends them.
 */
export async function startCluster(options: StartClusterOptions): Promise<ClusterNode[]> {
  fs.mkdirSync(options.baseDir, { recursive: true });
  const indexes = Array.from({ length: options.size }, (_, index) => index + 1);
  const nodes = await Promise.all(
    indexes.map((index) => startNode({ dataDir: path.join(options.baseDir, `node${index}`), args: options.args ?? [] })),
  );
  await linkCluster(nodes, options.baseDir, options.convergeTimeoutMs ?? convergeTimeoutMsDefault);
  return nodes;
}

/** Starts one node; with the ports of an earlier one (and its data dir) it is that node restarted. */
export async function startNode(options: {
  readonly dataDir: string;
  readonly args: readonly string[];
  readonly port?: number;
  readonly memcachePort?: number;
  /** Environment variables for the node besides this process's (KAI_FAULT_INJECTION). */
  readonly env?: Readonly<Record<string, string>>;
}): Promise<ClusterNode> {
  const kai = await startKai({ dataDir: options.dataDir, port: options.port, memcachePort: options.memcachePort, args: options.args, env: options.env });
  return { ...kai, id: `${loopbackHost}:${kai.port}`, dataDir: options.dataDir };
}

/** `node` started again on its own ports and data dir, after a kill: it rejoins from its saved member list. */
export function restartNode(node: ClusterNode, args: readonly string[]): Promise<ClusterNode> {
  return startNode({ dataDir: node.dataDir, args, port: node.port, memcachePort: node.memcachePort });
}

/** Tells the first node about each other one, then waits until every view has every member up. */
export async function linkCluster(nodes: readonly ClusterNode[], cwd: string, convergeTimeoutMs: number): Promise<void> {
  const [first, ...others] = nodes;
  for (const other of others) {
    const run = await runKai(['check-node', first.id, other.id], { cwd });
    // check-node waits for one exchange of a gossip round's length; on a loaded machine that can
    // come late, and the node keeps trying: the wait for every view below is the real check.
    const keepsTrying = run.code === 1 && run.stderr.endsWith('it keeps trying\n');
    if (run.code !== 0 && !keepsTrying) throw new Error(`kai check-node ${first.id} ${other.id} exited ${run.code}: ${run.stderr}`);
  }
  const ids = nodes.map((node) => node.id);
  for (const node of nodes) {
    const view = await pollStatus(node.port, (members) => allUp(members, ids), convergeTimeoutMs, cwd);
    if (!allUp(view, ids)) {
      throw new Error(`${node.id} did not see every member up within ${convergeTimeoutMs} ms: ${JSON.stringify(view)}`);
    }
  }
}

/** Whether `members` lists exactly `ids`, all up and owning their buckets (no ring change in progress). */
export function allUp(members: readonly StatusMember[], ids: readonly string[]): boolean {
  return (
    members.length === ids.length &&
    members.every((member) => ids.includes(member.id) && member.status === 'up' && member.ring === 'owner')
  );
}

/** Each member's status by id, as one node sees them. */
export function statuses(members: readonly StatusMember[]): Record<string, string> {
  return Object.fromEntries(members.map((member) => [member.id, member.status]));
}

/**
 * Whether one node's view is exactly `expected` (status by id). Polls wait for the whole picture:
 * under load a live peer can be suspected for a moment while another is first seen down.
 */
export function showsStatuses(expected: Readonly<Record<string, string>>): (members: readonly StatusMember[]) => boolean {
  return (members) => isDeepStrictEqual(statuses(members), expected);
}

/** Polls of one `kai status` at most, whatever the timeout: each is a process start. */
export const statusPollAttemptsMax = 1000;

/**
 * The member list the node at internal address `address` (host:port) answers to `kai status
 * --json`. Throws when the command fails or prints anything but `{"members": [...]}`.
 */
export async function statusAt(address: string, cwd: string): Promise<StatusMember[]> {
  // Only the node's own view: asking every member for its health would make each poll slower.
  const run = await runKai(['status', '--node', address, '--json', '--no-health'], { cwd });
  if (run.code !== 0 || run.stderr !== '') throw new Error(`kai status --node ${address} exited ${run.code}: ${run.stderr}`);
  const parsed = JSON.parse(run.stdout) as { members?: StatusMember[]; changing?: boolean };
  if (!Array.isArray(parsed.members) || typeof parsed.changing !== 'boolean') throw new Error(`kai status printed ${run.stdout}`);
  return parsed.members;
}

/** Polls `kai status` at `address` until `accept` holds, for at most `timeoutMs`; returns the last answer. */
export async function pollStatusAt(
  address: string,
  accept: (members: StatusMember[]) => boolean,
  timeoutMs: number,
  cwd: string,
  pollMs = statusPollMsDefault,
): Promise<StatusMember[]> {
  const deadlineMs = Date.now() + timeoutMs;
  let members = await statusAt(address, cwd);
  for (let attempts = 1; !accept(members) && attempts < statusPollAttemptsMax && Date.now() < deadlineMs; attempts++) {
    await delay(pollMs);
    members = await statusAt(address, cwd);
  }
  return members;
}

/** statusAt for a node on 127.0.0.1 with internal port `port`. */
export function statusOf(port: number, cwd: string): Promise<StatusMember[]> {
  return statusAt(`${loopbackHost}:${port}`, cwd);
}

/** pollStatusAt for a node on 127.0.0.1 with internal port `port`. */
export function pollStatus(
  port: number,
  accept: (members: StatusMember[]) => boolean,
  timeoutMs: number,
  cwd: string,
  pollMs = statusPollMsDefault,
): Promise<StatusMember[]> {
  return pollStatusAt(`${loopbackHost}:${port}`, accept, timeoutMs, cwd, pollMs);
}
