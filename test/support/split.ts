/**
 * Siblings on a cluster of three real `kai` processes, made by writing on both sides of a split:
 * nodes are cut off by pausing them (SIGSTOP), and each side writes only once it sees the other
 * side down, so with W=1 each write is acknowledged by its side alone and neither reaches the
 * other side's replicas before both are made. Plain Node (no jest), like ./cluster.
 *
 *   const pauses = new Pauses();
 *   afterAll(() => pauses.resumeAll());   // before killing the nodes
 *   await writeOnBothSides(nodes, pauses, cwd, (a) => set(a, 'side-a'), (c) => set(c, 'side-c'));
 */
import { allUp, pollStatus, statuses, type ClusterNode, type StatusMember } from './cluster';

/**
 * How long a node's view may take to show a change: with a 200 ms gossip interval a silent node is
 * down after 1 s, and a returning one up within a round; this leaves rounds for the news to spread
 * and status commands to run on a loaded machine.
 */
export const viewSettledMsMax = 15_000;

/** The nodes a test paused and has not resumed, so that its cleanup can resume them before killing. */
export class Pauses {
  private readonly paused = new Set<number>();

  pause(node: ClusterNode): void {
    process.kill(node.pid, 'SIGSTOP');
    this.paused.add(node.pid);
  }

  resume(node: ClusterNode): void {
    try {
      process.kill(node.pid, 'SIGCONT');
    } catch {
      // Already gone.
    }
    this.paused.delete(node.pid);
  }

  /** Resumes every node still paused: a stopped process cannot act on the signals that end it cleanly. */
  resumeAll(): void {
    for (const pid of this.paused) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // Already gone.
      }
    }
    this.paused.clear();
  }
}

/** Waits until `observer` sees each node of `expected` with the status given; throws with its view if it does not in time. */
export async function waitForView(observer: ClusterNode, expected: Readonly<Record<string, string>>, cwd: string): Promise<void> {
  const matches = (members: StatusMember[]): boolean => {
    const seen = statuses(members);
    return Object.entries(expected).every(([id, status]) => seen[id] === status);
  };
  const view = await pollStatus(observer.port, matches, viewSettledMsMax, cwd);
  if (!matches(view)) throw new Error(`${observer.id} sees ${JSON.stringify(statuses(view))}, not ${JSON.stringify(expected)}`);
}

/**
 * Runs `first` through the first node while the other two are cut off, then `second` through the
 * third while the first is cut off, then resumes all three and waits until each sees every member
 * up (a resumed node takes the others for down until it hears from them, and would refuse reads
 * that need them). The second write is made later, so it is the sibling written last.
 */
export async function writeOnBothSides(
  nodes: readonly ClusterNode[],
  pauses: Pauses,
  cwd: string,
  first: (node: ClusterNode) => Promise<void>,
  second: (node: ClusterNode) => Promise<void>,
): Promise<void> {
  const [a, b, c] = nodes;
  // Side one: B and C are cut off and A knows it, so only A holds its write: once the others are
  // back, anti-entropy would hand it to them before side two writes, and side two's write would
  // then supersede it rather than be concurrent with it.
  pauses.pause(b);
  pauses.pause(c);
  await waitForView(a, { [b.id]: 'down', [c.id]: 'down' }, cwd);
  await first(a);
  // Side two: A is cut off, B and C are back and know A is gone.
  pauses.pause(a);
  pauses.resume(b);
  pauses.resume(c);
  await waitForView(c, { [a.id]: 'down', [b.id]: 'up', [c.id]: 'up' }, cwd);
  await second(c);
  pauses.resume(a);
  const ids = nodes.map((node) => node.id);
  for (const node of nodes) {
    const view = await pollStatus(node.port, (members) => allUp(members, ids), viewSettledMsMax, cwd);
    if (!allUp(view, ids)) throw new Error(`${node.id} does not see every member up after the split: ${JSON.stringify(statuses(view))}`);
  }
}
