// A coordinator whose own store failed (localServes false) leaves its replica out, as peers leave out a down member.
import { Coordinator } from '../../../src/coordinator';
import type { StoreRequest } from '../../../src/coordinator/mutations';
import { storeSpec } from '../../../src/coordinator/specs';
import { LocalReplica } from '../../../src/coordinator/replica';
import { KaiError } from '../../../src/errors';
import { buildRing } from '../../../src/ring';
import { ManualEnv } from '../../support/manual-env';
import { MemoryStore } from '../../support/memory-store';

const key = Buffer.from('the-key');
const request: StoreRequest = { mode: 'set', value: Buffer.from('v'), flags: 0, expiresAtMs: 0, casUnique: 0n };

test('while its own store serves the node uses its replica; once it has failed, requests go around it', async () => {
  const env = new ManualEnv();
  const ring = buildRing([{ id: 'solo', weight: 1 }], { buckets: 64 });
  const store = new MemoryStore();
  const replica = new LocalReplica('solo', store, env, 1024);
  let serving = true;
  const coordinator = new Coordinator({
    nodeId: 'solo',
    env,
    ring: () => ring,
    replicaOf: () => replica,
    localServes: () => serving,
    quorum: { n: 1, r: 1, w: 1 },
    requestTimeoutMs: 500,
  });
  expect((await coordinator.mutate(key, storeSpec(request))).result?.result).toBe('STORED');
  serving = false;
  // Its only replica is its own: nothing is left to coordinate with, and the store is not touched.
  const refused = await Promise.resolve()
    .then(() => coordinator.mutate(Buffer.from('other'), storeSpec(request)))
    .catch((error: unknown) => error);
  expect(refused).toBeInstanceOf(KaiError);
  expect((refused as KaiError).code).toBe('KAI_QUORUM_UNMET');
  expect(store.read(Buffer.from('other'))).toBeUndefined();
  const unread = await Promise.resolve()
    .then(() => coordinator.read(key))
    .catch((error: unknown) => error);
  expect((unread as KaiError).code).toBe('KAI_QUORUM_UNMET');
});
