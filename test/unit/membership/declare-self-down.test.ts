// A node that declares itself down (its storage failed): peers adopt it, its heartbeat does not bring it back, it does not refute, and a restart does.
import {
  createMembership,
  declareSelfDown,
  detectFailures,
  findMember,
  isUp,
  mergeGossip,
  restoreMembership,
  selfMember,
  tick,
  toWire,
  type SelfDescription,
} from '../../../src/membership';

const startMs = 1_000_000;
const downAfterMs = 5000;

function node(index: number): SelfDescription {
  return { id: `127.0.0.1:${7100 + index}`, address: `127.0.0.1:${7100 + index}`, zone: '', weight: 1 };
}

test('down declared by the node itself wins everywhere, stays down as its heartbeat rises, and a restart brings it back up', () => {
  let failing = tick(createMembership(node(1), startMs), startMs);
  let peer = mergeGossip(createMembership(node(2), startMs), toWire(failing), startMs, downAfterMs).state;
  expect(isUp(peer, node(1).id)).toBe(true);

  failing = declareSelfDown(failing, startMs + 10);
  expect(selfMember(failing)).toMatchObject({ status: 'down', incarnation: 1 });
  // Declaring twice changes nothing more.
  expect(declareSelfDown(failing, startMs + 20)).toBe(failing);

  // Heard first-hand: the peer dialled the failing node, as its gossip rounds do.
  const heard = mergeGossip(peer, toWire(failing), startMs + 20, downAfterMs, node(1).address);
  expect(heard.events).toEqual([{ kind: 'down', id: node(1).id }]);
  peer = heard.state;
  expect(isUp(peer, node(1).id)).toBe(false);

  // Its heartbeat goes on: the peer hears it, and still holds it down.
  for (let round = 1; round <= 3; round++) failing = tick(failing, startMs + 100 * round);
  peer = mergeGossip(peer, toWire(failing), startMs + 400, downAfterMs, node(1).address).state;
  expect(findMember(peer, node(1).id)).toMatchObject({ status: 'down', heartbeat: selfMember(failing).heartbeat });
  peer = detectFailures(peer, startMs + 400, { downAfterMs }).state;

  // Hearing itself down from the peer, it does not refute: it is down.
  const echoed = mergeGossip(failing, toWire(peer), startMs + 500, downAfterMs);
  expect(echoed.events.filter((event) => event.kind === 'refuted')).toEqual([]);
  expect(selfMember(echoed.state).status).toBe('down');

  // A restart from the saved list comes back up at a newer incarnation, which wins at the peer.
  const restarted = restoreMembership(node(1), toWire(failing), startMs + 1000);
  expect(selfMember(restarted)).toMatchObject({ status: 'up', incarnation: 2 });
  peer = mergeGossip(peer, toWire(restarted), startMs + 1000, downAfterMs, node(1).address).state;
  expect(isUp(peer, node(1).id)).toBe(true);
});
