// Proves gossip spreads news to 1,000 simulated nodes within 2·log2(n) rounds: a member's new incarnation through the membership merge, and a new ring version through the ring-state merge.
import { initialRingState, mergeRingStates, type RingState } from '../../../src/claimant';
import {
  createMembership,
  findMember,
  mergeGossip,
  pickGossipTarget,
  toWire,
  updateSelf,
  type MembershipState,
} from '../../../src/membership';
import { Random } from '../../support/property';

const nodeCount = 1000;
const roundsMax = Math.ceil(2 * Math.log2(nodeCount));
/** Seeds of the membership spread (each merges 1,000-member lists, some seconds) and of the ring spread. */
const membershipSeeds = [1];
const ringSeeds = [1, 2, 3];

function idOf(index: number): string {
  return `10.0.${index >> 8}.${index & 255}:7000`;
}

/** Every node knowing every other, all up, at incarnation 0. */
function fullyKnownCluster(): MembershipState[] {
  const base = createMembership({ id: idOf(0), address: idOf(0), zone: '', weight: 1 }, 0);
  const everyone = Array.from({ length: nodeCount }, (_, i) => ({ ...toWire(base)[0], id: idOf(i), address: idOf(i) }));
  return everyone.map((self) => mergeGossip(createMembership({ id: self.id, address: self.address, zone: '', weight: 1 }, 0), everyone, 0).state);
}

/**
 * Push-pull rounds: in each, every node picks its gossip target as the shell does and both merge
 * what the other holds. Returns the round after which `knows` holds for every node.
 */
function roundsToSpread<S>(states: S[], merge: (mine: S, theirs: S) => S, targetOf: (index: number, state: S) => number, knows: (state: S) => boolean): number {
  for (let round = 1; round <= roundsMax * 2; round++) {
    for (let index = 0; index < states.length; index++) {
      const peer = targetOf(index, states[index]);
      const mine = states[index];
      const theirs = states[peer];
      // The views differ only in the news, so an exchange between two nodes that agree on it
      // changes nothing: skipped, which keeps 1,000 nodes fast without changing any outcome.
      if (knows(mine) === knows(theirs)) continue;
      states[peer] = merge(theirs, mine);
      states[index] = merge(mine, theirs);
    }
    if (states.every(knows)) return round;
  }
  return Number.POSITIVE_INFINITY;
}

describe(`gossip at ${nodeCount} nodes converges within ${roundsMax} rounds`, () => {
  for (const seed of membershipSeeds) {
    // A member's new incarnation (a new weight it announces) reaches every node through mergeGossip.
    test(`a member's update reaches every node, seed ${seed}`, () => {
      const random = new Random(seed);
      const states = fullyKnownCluster();
      const changed = random.int(0, nodeCount - 1);
      states[changed] = updateSelf(states[changed], { weight: 2 }, 1);
      const indexOf = new Map(states.map((state, index) => [state.selfId, index]));
      const rounds = roundsToSpread(
        states,
        (mine, theirs) => mergeGossip(mine, toWire(theirs), 1).state,
        (_, state) => indexOf.get(pickGossipTarget(state, random.next())!.id)!,
        (state) => findMember(state, idOf(changed))?.weight === 2,
      );
      expect(rounds).toBeLessThanOrEqual(roundsMax);
    }, 180_000);
  }
  for (const seed of ringSeeds) {
    // A new ring version made by one node reaches every node through mergeRingStates.
    test(`a new ring version reaches every node, seed ${seed}`, () => {
      const random = new Random(seed);
      const members = [{ id: idOf(0), weight: 1 }];
      const stale = initialRingState(idOf(0), members, 64);
      const states: RingState[] = Array.from({ length: nodeCount }, () => stale);
      const planner = random.int(0, nodeCount - 1);
      states[planner] = { ...stale, version: 1 };
      const rounds = roundsToSpread(
        states,
        mergeRingStates,
        (index) => (index + 1 + random.int(0, nodeCount - 2)) % nodeCount,
        (state) => state.version === 1,
      );
      expect(rounds).toBeLessThanOrEqual(roundsMax);
    });
  }
});
