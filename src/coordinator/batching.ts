/**
 * Batched fan-out: the per-key calls a turn of the event loop makes to one peer (every key of a
 * multiget, every client request that arrived together) leave as one internal request per batch
 * instead of one per key. Calls made in one turn are gathered and sent once the turn is over
 * (Env.soon), cut into batches of at most `itemsMax` items and about `bytesMax` bytes. A reply may
 * answer only the first items of its batch (a frame's worth): the rest go again at once.
 */
import type { Env } from '../env';
import { batchesBy } from './wire';

export interface BatchLimits {
  /** Items one request carries at most. */
  readonly itemsMax: number;
  /** Bytes of items one request carries at most; an item larger than this goes alone. */
  readonly bytesMax: number;
}

export interface BatchSender<Item, Result> {
  /** Sends one batch; resolves with the results of its first items, in order (at least one). */
  send(items: readonly Item[]): Promise<readonly Result[]>;
  /** What an item takes in a request, in bytes. */
  bytesOf(item: Item): number;
}

interface Waiting<Item, Result> {
  readonly item: Item;
  readonly resolve: (result: Result) => void;
  readonly reject: (error: unknown) => void;
}

export class RequestBatcher<Item, Result> {
  private waiting: Waiting<Item, Result>[] = [];
  private scheduled = false;

  constructor(
    private readonly env: Env,
    private readonly limits: BatchLimits,
    private readonly sender: BatchSender<Item, Result>,
  ) {}

  add(item: Item): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      this.env.soon(() => this.flush());
    });
  }

  private flush(): void {
    this.scheduled = false;
    const waiting = this.waiting;
    this.waiting = [];
    const { itemsMax, bytesMax } = this.limits;
    for (const batch of batchesBy(waiting, (entry) => this.sender.bytesOf(entry.item), bytesMax, itemsMax)) this.sendBatch(batch);
  }

  private sendBatch(batch: readonly Waiting<Item, Result>[]): void {
    this.sender.send(batch.map((entry) => entry.item)).then(
      (results) => {
        if (results.length === 0 || results.length > batch.length) {
          const error = new Error(`assertion failed: a batch of ${batch.length} answered ${results.length} results`);
          for (const entry of batch) entry.reject(error);
          return;
        }
        results.forEach((result, index) => batch[index].resolve(result));
        if (results.length < batch.length) this.sendBatch(batch.slice(results.length));
      },
      (error: unknown) => {
        for (const entry of batch) entry.reject(error);
      },
    );
  }
}
