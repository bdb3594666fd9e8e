/**
 * The shell that carries out reads' final actions: each repair sends a stale or missing replica
 * the versions the read reconciled (with the hint a fallback keeps). Repairs are background work,
 * bounded in flight and per second; one over either bound is skipped and counted, and anti-entropy
 * repairs that replica later instead.
 */
import type { Env } from '../env';
import { TokenBucket } from '../limits/token-bucket';
import type { Version } from '../storage/record';
import type { Replica } from './replica';

/** Repairs sent and not yet answered, at most. */
export const readRepairsInFlightMax = 64;
/** Repairs started per second at most, by default. */
export const readRepairsPerSecondDefault = 1000;

export interface RepairTarget {
  readonly replica: Replica;
  readonly versions: readonly Version[];
  /** The primary the replica stands in for, when it is a fallback. */
  readonly hintFor?: string;
}

export interface ReadRepairCounters {
  /** Repairs sent that the replica committed. */
  readRepairs: number;
  /** Repairs not sent: over the rate or in-flight bound. */
  readRepairsSkipped: number;
  readRepairsFailed: number;
}

export class ReadRepairs {
  readonly counters: ReadRepairCounters = { readRepairs: 0, readRepairsSkipped: 0, readRepairsFailed: 0 };
  private inFlight = 0;
  private readonly rate: TokenBucket;

  constructor(
    private readonly env: Env,
    repairsPerSecond: number = readRepairsPerSecondDefault,
  ) {
    this.rate = new TokenBucket(repairsPerSecond);
  }

  get repairsInFlight(): number {
    return this.inFlight;
  }

  repair(key: Buffer, bucket: number, targets: readonly RepairTarget[]): void {
    for (const target of targets) {
      if (this.inFlight >= readRepairsInFlightMax || !this.rate.tryTake(this.env.nowMs())) {
        this.counters.readRepairsSkipped++;
        continue;
      }
      this.inFlight++;
      target.replica.store(key, bucket, target.versions, target.hintFor).then(
        () => {
          this.inFlight--;
          this.counters.readRepairs++;
        },
        () => {
          this.inFlight--;
          this.counters.readRepairsFailed++;
        },
      );
    }
  }
}
