/**
 * The command model shared by the text and binary codecs. A decoder turns bytes into these
 * values; the dispatcher executes them against the coordinator and answers with a Reply.
 */

export type StorageMode = 'set' | 'add' | 'replace' | 'append' | 'prepend' | 'cas';

export type Command =
  | { readonly op: 'get'; readonly keys: readonly Buffer[]; readonly withCas: boolean }
  | {
      readonly op: 'gat';
      readonly keys: readonly Buffer[];
      readonly exptime: number;
      readonly withCas: boolean;
    }
  | {
      readonly op: 'store';
      readonly mode: StorageMode;
      readonly key: Buffer;
      readonly flags: number;
      readonly exptime: number;
      readonly value: Buffer;
      /** The cas unique a `cas` command names; 0n for other modes. */
      readonly casUnique: bigint;
      readonly noreply: boolean;
    }
  | { readonly op: 'delete'; readonly key: Buffer; readonly noreply: boolean }
  | {
      readonly op: 'arith';
      readonly incr: boolean;
      readonly key: Buffer;
      readonly delta: bigint;
      readonly noreply: boolean;
    }
  | { readonly op: 'touch'; readonly key: Buffer; readonly exptime: number; readonly noreply: boolean }
  | { readonly op: 'flush_all'; readonly delaySeconds: number; readonly noreply: boolean }
  | { readonly op: 'version' }
  | { readonly op: 'verbosity'; readonly level: number; readonly noreply: boolean }
  | { readonly op: 'stats'; readonly group: string }
  | { readonly op: 'quit' };

/** An item as a read returns it: one per sibling. */
export interface ItemView {
  readonly key: Buffer;
  readonly flags: number;
  readonly value: Buffer;
  /** Names the version context the reader saw; a `cas` with it supersedes every sibling seen. */
  readonly cas: bigint;
}

export type StoreOutcome = 'STORED' | 'NOT_STORED' | 'EXISTS' | 'NOT_FOUND';

export type Reply =
  | { readonly kind: 'items'; readonly items: readonly ItemView[]; readonly withCas: boolean }
  | { readonly kind: 'stored'; readonly outcome: StoreOutcome; readonly cas: bigint }
  | { readonly kind: 'deleted'; readonly found: boolean }
  | { readonly kind: 'arith'; readonly value: bigint | null; readonly cas: bigint }
  | { readonly kind: 'touched'; readonly found: boolean }
  | { readonly kind: 'ok' }
  | { readonly kind: 'version'; readonly version: string }
  | { readonly kind: 'stats'; readonly stats: ReadonlyArray<readonly [string, string]> }
  /** `stats reset` answers RESET. */
  | { readonly kind: 'reset' }
  | { readonly kind: 'quit' };

/** memcached's limits on what a client may name. */
export const keyBytesMax = 250;
