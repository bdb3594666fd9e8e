/**
 * What every fault-test file shares: a work dir and a fault network of `hostCount` namespaces,
 * built before its tests and torn down after them (every process it started killed by PID, every
 * namespace and rule removed). Root CI runs these files: a host that cannot build namespaces
 * fails in beforeAll with the reason, and never skips.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { killStartedKai } from '../support/process';
import { FaultNetwork, faultHostsAvailable } from './netns';

export interface FaultSuite {
  readonly network: FaultNetwork;
  readonly workDir: string;
}

const setUpTimeoutMs = 60_000;

/**
 * Registers the file's beforeAll and afterAll; the returned function gives the suite to tests
 * (and to later beforeAll hooks). KAI_KEEP_FAULT_DIR keeps the work dir, for the logs in it.
 */
export function useFaultSuite(name: string, hostCount: number): () => FaultSuite {
  let suite: FaultSuite | undefined;
  let workDir: string | undefined;
  let network: FaultNetwork | undefined;
  beforeAll(async () => {
    const availability = faultHostsAvailable();
    if (!availability.ok) throw new Error(`fault hosts unavailable: ${availability.why}`);
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), `kai-${name}-`));
    network = await FaultNetwork.create({ hostCount });
    suite = { network, workDir };
  }, setUpTimeoutMs);
  afterAll(async () => {
    try {
      await network?.cleanup();
    } finally {
      await killStartedKai();
      if (workDir !== undefined && process.env.KAI_KEEP_FAULT_DIR === undefined) fs.rmSync(workDir, { recursive: true, force: true });
    }
  }, setUpTimeoutMs);
  return () => {
    if (suite === undefined) throw new Error('beforeAll did not build the fault network');
    return suite;
  };
}
