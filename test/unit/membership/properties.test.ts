import {
  addSeed,
  createMembership,
  detectFailures,
  findMember,
  joinViews,
  mergeGossip,
  pickDownPeer,
  pickGossipTarget,
  ringMembers,
  tick,
  toWire,
  type FailureDetectorOptions,
  type MembershipState,
} from '../../../src/membership';
import { buildRing } from '../../../src/ring';
import type { WireMember } from '../../../src/rpc/messages';
import { checkProperty, ensure, type Random } from '../../support/property';

const seedsPerProperty = 150;
const roundMs = 1000;
const detector: FailureDetectorOptions = { downAfterMs: 5 * roundMs };

const memberPool = ['10.0.0.1:7000', '10.0.0.2:7000', '10.0.0.3:7000', '10.0.0.4:7000'];
const statuses: readonly WireMember['status'][] = ['up', 'down', 'leaving'];

/** A view over a few ids with small counters, so that views often disagree on the same member. */
function randomView(random: Random): WireMember[] {
  return memberPool
    .filter(() => random.chance(0.7))
    .map((id) => ({
      id,
      address: random.chance(0.9) ? id : `${id.split(':')[0]}:7001`,
      zone: random.pick(['zone-a', 'zone-b']),
      weight: random.pick([1, 2]),
      status: random.pick(statuses),
      incarnation: random.int(0, 2),
      heartbeat: random.int(0, 3),
    }));
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function shown(view: readonly WireMember[]): string {
  return view
    .map((m) => `${m.id}/${m.status}/${m.incarnation}/${m.heartbeat}/${m.zone}/${m.weight}/${m.address}`)
    .join(' ');
}

// Joining member views is commutative, associative and idempotent: gossip order does not matter.
test('joinViews is a join', () => {
  checkProperty(seedsPerProperty * 4, (random) => {
    const [a, b, c] = [randomView(random), randomView(random), randomView(random)];
    const ab = joinViews(a, b);
    ensure(same(ab, joinViews(b, a)), `not commutative: ${shown(a)} | ${shown(b)}`);
    ensure(
      same(joinViews(ab, c), joinViews(a, joinViews(b, c))),
      `not associative: ${shown(a)} | ${shown(b)} | ${shown(c)}`,
    );
    ensure(same(joinViews(a, a), joinViews(a, [])), `not idempotent: ${shown(a)}`);
    ensure(same(joinViews(ab, b), ab), `merging again changed: ${shown(a)} | ${shown(b)}`);
  });
});

function viewsOfOthers(state: MembershipState): WireMember[] {
  return toWire(state).filter((m) => m.id !== state.selfId);
}

// A node's state merges gossip as the join does: in any order, once or many times, same views.
test('mergeGossip on a state is commutative, associative and idempotent on the member views', () => {
  checkProperty(seedsPerProperty * 2, (random) => {
    const self = { id: '10.0.0.9:7000', address: '10.0.0.9:7000', zone: 'zone-a', weight: 1 };
    const [a, b, c] = [randomView(random), randomView(random), randomView(random)];
    const start = mergeGossip(createMembership(self, 0), a, 0).state;
    const merge = (state: MembershipState, view: readonly WireMember[]): MembershipState =>
      mergeGossip(state, view, 1).state;
    const bThenC = viewsOfOthers(merge(merge(start, b), c));
    ensure(same(bThenC, viewsOfOthers(merge(merge(start, c), b))), `order mattered: ${shown(b)} | ${shown(c)}`);
    ensure(same(bThenC, viewsOfOthers(merge(start, joinViews(b, c)))), `grouping mattered: ${shown(b)} | ${shown(c)}`);
    ensure(same(bThenC, joinViews(a, joinViews(b, c))), 'the state differs from the join of the views');
    const once = merge(start, b);
    ensure(same(viewsOfOthers(merge(once, b)), viewsOfOthers(once)), `merging twice changed: ${shown(b)}`);
  });
});

interface SimulatedNode {
  state: MembershipState;
  running: boolean;
}

/**
 * Gossip among pure states, no network: each round every running node ticks (if told), runs its
 * failure detector (if given one), and does one push-pull exchange with the peer its state picks.
 * An exchange with a stopped node, or one lost, changes nothing.
 */
class GossipSimulation {
  readonly nodes: SimulatedNode[];
  nowMs = 0;
  round = 0;
  /** Whether two nodes can reach each other: a partition makes it false across the cut. */
  linked: (a: SimulatedNode, b: SimulatedNode) => boolean = () => true;

  constructor(
    private readonly random: Random,
    count: number,
  ) {
    this.nodes = Array.from({ length: count }, (_, index) => {
      const address = `10.0.0.${index + 1}:7000`;
      let state = createMembership({ id: address, address, zone: `zone-${random.int(0, 2)}`, weight: 1 }, 0);
      // Each node is told of one earlier node, as `kai check-node` would: the graph is connected.
      if (index > 0) state = addSeed(state, `10.0.0.${random.int(1, index)}:7000`, 0).state;
      return { state, running: true };
    });
  }

  step(options: { tick: boolean; detector?: FailureDetectorOptions; lossProbability?: number }): void {
    this.round++;
    this.nowMs += roundMs;
    for (const node of this.random.shuffle(this.nodes)) {
      if (!node.running) continue;
      if (options.tick) node.state = tick(node.state, this.nowMs);
      if (options.detector) node.state = detectFailures(node.state, this.nowMs, options.detector).state;
      const target = pickGossipTarget(node.state, this.random.next());
      const probed = pickDownPeer(node.state, this.random.next(), this.random.next());
      for (const chosen of [target, probed]) {
        const peer = chosen && this.nodes.find((other) => other.state.selfId === chosen.address);
        if (!peer || !peer.running || !this.linked(node, peer)) continue;
        if (this.random.chance(options.lossProbability ?? 0)) continue;
        const downAfterMs = options.detector?.downAfterMs;
        peer.state = mergeGossip(peer.state, toWire(node.state), this.nowMs, downAfterMs).state;
        node.state = mergeGossip(node.state, toWire(peer.state), this.nowMs, downAfterMs).state;
      }
    }
  }

  converged(): boolean {
    const first = toWire(this.nodes[0].state);
    return first.length === this.nodes.length && this.nodes.every((node) => same(toWire(node.state), first));
  }

  /** Steps until `done` or `roundsMax` rounds; the rounds taken, or null. */
  runUntil(done: () => boolean, roundsMax: number, options: Parameters<GossipSimulation['step']>[0]): number | null {
    for (let taken = 0; taken <= roundsMax; taken++) {
      if (done()) return taken;
      this.step(options);
    }
    return null;
  }
}

// Random gossip among 3 to 7 nodes, linked by one seed each, converges to identical views and rings.
test('gossip converges to identical views', () => {
  checkProperty(seedsPerProperty, (random) => {
    const count = random.int(3, 7);
    const simulation = new GossipSimulation(random, count);
    const busyRounds = random.int(0, 10);
    for (let i = 0; i < busyRounds; i++) simulation.step({ tick: true, lossProbability: 0.2 });
    // Once heartbeats stop, nothing new is said, and every node must end with the same views.
    const rounds = simulation.runUntil(() => simulation.converged(), 20, { tick: false });
    const views = simulation.nodes.map((n) => shown(toWire(n.state))).join(' || ');
    ensure(rounds !== null, `${count} nodes not converged after 20 quiet rounds: ${views}`);
    const rings = simulation.nodes.map((node) => buildRing(ringMembers(node.state), { buckets: 64 }));
    ensure(rings.every((ring) => same(ring.successors, rings[0].successors)), 'nodes built different rings');
  });
});

function statusSeenBy(node: SimulatedNode, id: string): string | undefined {
  return findMember(node.state, id)?.status;
}

// A node that stops is marked down by every other node within a bound, stays in their rings, and
// is marked up again by all of them within a bound once it resumes.
test('a stopped node is detected down by everyone, and up again after it resumes', () => {
  const roundsToDetectMax = detector.downAfterMs / roundMs + 10;
  const roundsToRecoverMax = 10;
  checkProperty(seedsPerProperty, (random) => {
    const count = random.int(3, 7);
    const simulation = new GossipSimulation(random, count);
    const busy = { tick: true, detector };
    const knowAll = (): boolean => simulation.nodes.every((node) => toWire(node.state).length === count);
    ensure(simulation.runUntil(knowAll, 40, busy) !== null, 'nodes never learned of each other');
    const stopped = random.pick(simulation.nodes);
    const stoppedId = stopped.state.selfId;
    stopped.running = false;
    const others = simulation.nodes.filter((node) => node !== stopped);

    const allSeeDown = (): boolean => others.every((node) => statusSeenBy(node, stoppedId) === 'down');
    const detected = simulation.runUntil(allSeeDown, roundsToDetectMax, busy);
    ensure(detected !== null, `${stoppedId} not seen down by all of ${count} within ${roundsToDetectMax} rounds`);
    ensure(
      others.every((node) => ringMembers(node.state).some((m) => m.id === stoppedId)),
      'a down node left the ring',
    );

    stopped.running = true;
    const seenUp = new Set<SimulatedNode>();
    const allHaveSeenUp = (): boolean => {
      for (const node of others) if (statusSeenBy(node, stoppedId) === 'up') seenUp.add(node);
      return seenUp.size === others.length;
    };
    const recovered = simulation.runUntil(allHaveSeenUp, roundsToRecoverMax, busy);
    ensure(recovered !== null, `${stoppedId} not seen up again by all of ${count} within ${roundsToRecoverMax} rounds`);
  });
});

// After a partition, each side sees the other down; once it heals, every node sees every node up
// again, because down members stay gossip targets.
test('a healed partition comes back up on both sides', () => {
  const roundsToHealMax = 10;
  checkProperty(seedsPerProperty, (random) => {
    const count = random.int(3, 7);
    const simulation = new GossipSimulation(random, count);
    const busy = { tick: true, detector };
    const knowAll = (): boolean => simulation.nodes.every((node) => toWire(node.state).length === count);
    ensure(simulation.runUntil(knowAll, 40, busy) !== null, 'nodes never learned of each other');
    const sideA = new Set(random.shuffle(simulation.nodes).slice(0, random.int(1, count - 1)));
    simulation.linked = (a, b) => sideA.has(a) === sideA.has(b);
    const seesAcrossDown = (): boolean =>
      simulation.nodes.every((node) =>
        simulation.nodes.every(
          (other) => sideA.has(node) === sideA.has(other) || statusSeenBy(node, other.state.selfId) === 'down',
        ),
      );
    const roundsToDetectMax = detector.downAfterMs / roundMs + 10;
    ensure(simulation.runUntil(seesAcrossDown, roundsToDetectMax, busy) !== null, 'the cut was not detected');
    simulation.linked = () => true;
    const allUp = (): boolean =>
      simulation.nodes.every((node) =>
        simulation.nodes.every((other) => statusSeenBy(node, other.state.selfId) === 'up'),
      );
    const healed = simulation.runUntil(allUp, roundsToHealMax, busy);
    const split = `${sideA.size}/${count - sideA.size}`;
    ensure(healed !== null, `${count} nodes split ${split} not all up ${roundsToHealMax} rounds after healing`);
  });
});
