/**
 * kai clusters on fault hosts (./netns): link nodes with `kai check-node`, read a node's view with
 * `kai status --json`, and send raw memcache requests. Every command runs in the root namespace
 * and reaches the nodes at their namespace addresses. Plain Node (no jest).
 */
import net from 'node:net';
import {
  allUp,
  pollStatusAt as pollStatusAtAddress,
  statusAt as statusAtAddress,
  statusPollMsDefault,
  type StatusMember,
} from '../support/cluster';
import { runKai } from '../support/process';

/** A node as these helpers need it: its internal API address (id) and where clients connect. */
export interface ReachableNode {
  readonly id: string;
  readonly address: string;
  readonly memcachePort: number;
}

/** One request and its reply; the coordinator's own quorum timeout is 5 s, so its answer fits. */
export const requestTimeoutMsDefault = 8_000;
/** The replies here are one small value or a status line; more is not a reply to us. */
const replyBytesMax = 64 * 1024;

/** The member list `node` answers to `kai status --json`. */
export function statusAt(node: ReachableNode, cwd: string): Promise<StatusMember[]> {
  return statusAtAddress(node.id, cwd);
}

/** Polls `kai status` on `node` until `accept` holds, for at most `timeoutMs`; returns the last answer. */
export function pollStatusAt(
  node: ReachableNode,
  accept: (members: StatusMember[]) => boolean,
  timeoutMs: number,
  cwd: string,
  pollMs = statusPollMsDefault,
): Promise<StatusMember[]> {
  return pollStatusAtAddress(node.id, accept, timeoutMs, cwd, pollMs);
}

/** Tells the first node about each other one, then waits until every node sees every member up. */
export async function linkNodes(nodes: readonly ReachableNode[], cwd: string, convergeTimeoutMs: number): Promise<void> {
  const [first, ...others] = nodes;
  for (const other of others) {
    const run = await runKai(['check-node', first.id, other.id], { cwd });
    // As in test/support/cluster.ts: a late first exchange is retried by the node itself.
    const keepsTrying = run.code === 1 && run.stderr.endsWith('it keeps trying\n');
    if (run.code !== 0 && !keepsTrying) throw new Error(`kai check-node ${first.id} ${other.id} exited ${run.code}: ${run.stderr}`);
  }
  const ids = nodes.map((node) => node.id);
  const deadlineMs = Date.now() + convergeTimeoutMs;
  for (const node of nodes) {
    const view = await pollStatusAt(node, (members) => allUp(members, ids), Math.max(0, deadlineMs - Date.now()), cwd);
    if (!allUp(view, ids)) throw new Error(`${node.id} did not see every member up within ${convergeTimeoutMs} ms: ${JSON.stringify(view)}`);
  }
}

/** The last line of every reply these helpers send for (storage, retrieval, version). */
const finalLine = /(?:^|\r\n)(END|STORED|NOT_STORED|EXISTS|NOT_FOUND|DELETED|ERROR|VERSION [^\r\n]*|SERVER_ERROR [^\r\n]*|CLIENT_ERROR [^\r\n]*)\r\n$/;

/**
 * Sends one request on a fresh connection to the node's memcache port and returns the whole
 * reply. Connect and reply share one bound: behind a DROP rule even the connect hangs.
 */
export function memcacheRequest(node: ReachableNode, request: string, timeoutMs = requestTimeoutMsDefault): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: node.address, port: node.memcachePort });
    let received = '';
    const finish = (error: Error | undefined): void => {
      clearTimeout(timer);
      socket.destroy();
      if (error === undefined) resolve(received);
      else reject(error);
    };
    const timer = setTimeout(
      () => finish(new Error(`no complete reply from ${node.address}:${node.memcachePort} within ${timeoutMs} ms; received ${JSON.stringify(received)}`)),
      timeoutMs,
    );
    socket.once('connect', () => socket.write(Buffer.from(request, 'latin1')));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (received.length > replyBytesMax) finish(new Error(`reply longer than ${replyBytesMax} bytes`));
      else if (finalLine.test(received)) finish(undefined);
    });
    socket.once('error', (error) => finish(error));
    socket.once('close', () => finish(new Error(`connection closed; received ${JSON.stringify(received)}`)));
  });
}

export function memcacheSet(node: ReachableNode, key: string, value: string): Promise<string> {
  return memcacheRequest(node, `set ${key} 0 0 ${Buffer.byteLength(value)}\r\n${value}\r\n`);
}

export function memcacheGet(node: ReachableNode, key: string): Promise<string> {
  return memcacheRequest(node, `get ${key}\r\n`);
}
