/** Versions for storage and replica tests: one write by node-a at a fixed time, unless overridden. */
import type { Version } from '../../src/storage/record';

export const versionTimeMs = 1_700_000_000_000;

export function version(value: string | Buffer, overrides: Partial<Version> = {}): Version {
  return {
    clock: [{ node: 'node-a', counter: 1, timestampMs: versionTimeMs }],
    value: typeof value === 'string' ? Buffer.from(value) : value,
    flags: 0,
    expiresAtMs: 0,
    tombstone: false,
    writtenAtMs: versionTimeMs,
    ...overrides,
  };
}
