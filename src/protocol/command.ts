/**
 * The command model shared by the text and binary codecs. A decoder turns bytes into these
 * values; the dispatcher executes them against the coordinator and answers with a Reply.
 */
import type { MetaCommand, MetaReply } from './meta-command';
import type { ToolCommand } from './tool-commands';

export type StorageMode = 'set' | 'add' | 'replace' | 'append' | 'prepend' | 'cas';

export type Command =
  | {
      readonly op: 'get';
      readonly keys: readonly Buffer[];
      readonly withCas: boolean;
      /**
       * One item per key even when it has several live siblings: the one written last, with
       * the cas unique of the whole context (the binary protocol carries one value per reply).
       */
      readonly latestSiblingOnly?: boolean;
    }
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
      /**
       * Store only if the key's cas unique is this one; 0n means unconditionally. Mode `cas`
       * always compares (a text `cas` naming 0 never matches), and so does any mode with a
       * cas unique other than 0n: a binary SET/ADD/REPLACE with one behaves as `cas`, and an
       * APPEND/PREPEND with one answers EXISTS when it does not match.
       */
      readonly casUnique: bigint;
      readonly noreply: boolean;
    }
  | {
      readonly op: 'delete';
      readonly key: Buffer;
      /** Delete only if the key's cas unique is this one; 0n means unconditionally. */
      readonly casUnique: bigint;
      readonly noreply: boolean;
    }
  | {
      readonly op: 'arith';
      readonly incr: boolean;
      readonly key: Buffer;
      readonly delta: bigint;
      /** Apply only if the key's cas unique is this one; 0n means unconditionally. */
      readonly casUnique: bigint;
      /**
       * Binary protocol: create a missing key with this value (the delta is not applied), as
       * memcached does unless the expiration is 0xffffffff. Absent: a missing key is NOT_FOUND.
       */
      readonly initial?: { readonly value: bigint; readonly exptime: number };
      readonly noreply: boolean;
    }
  | { readonly op: 'touch'; readonly key: Buffer; readonly exptime: number; readonly noreply: boolean }
  /**
   * A storage command refused because its value is over the size limit, as memcached counts it
   * (store_too_large). With `removeOld` (a refused set) the key's old value is removed, as memcached
   * unlinks it, so no reader sees data the client meant to replace; that removal is not a client
   * delete and counts in no delete statistic. It answers nothing: the refusal's error reply comes
   * from the decoder.
   */
  | { readonly op: 'refuse_store'; readonly key: Buffer; readonly removeOld: boolean; readonly noreply: true }
  | { readonly op: 'flush_all'; readonly delaySeconds: number; readonly noreply: boolean }
  | { readonly op: 'version' }
  | { readonly op: 'verbosity'; readonly level: number; readonly noreply: boolean }
  /** `args`: the words after the group, for the groups that take some (`stats detail on`). */
  | { readonly op: 'stats'; readonly group: string; readonly args?: readonly string[] }
  | { readonly op: 'quit' }
  /** A text connection's streamed tooling command (tool-commands.ts); never dispatched. */
  | { readonly op: 'tool'; readonly tool: ToolCommand }
  | MetaCommand;

/** An item as a read returns it: one per sibling. */
export interface ItemView {
  readonly key: Buffer;
  readonly flags: number;
  readonly value: Buffer;
  /** Names the version context the reader saw; a `cas` with it supersedes every sibling seen. */
  readonly cas: bigint;
}

export type StoreOutcome = 'STORED' | 'NOT_STORED' | 'EXISTS' | 'NOT_FOUND';
/** EXISTS: the key is there but its cas unique is not the one the delete named. */
export type DeleteOutcome = 'DELETED' | 'NOT_FOUND' | 'EXISTS';
export type ArithOutcome = 'OK' | 'NOT_FOUND' | 'EXISTS';

export type Reply =
  | { readonly kind: 'items'; readonly items: readonly ItemView[]; readonly withCas: boolean }
  | { readonly kind: 'stored'; readonly outcome: StoreOutcome; readonly cas: bigint }
  | { readonly kind: 'deleted'; readonly outcome: DeleteOutcome }
  /** `value` and `cas` are meaningful when the outcome is OK. */
  | { readonly kind: 'arith'; readonly outcome: ArithOutcome; readonly value: bigint; readonly cas: bigint }
  | { readonly kind: 'touched'; readonly found: boolean }
  | { readonly kind: 'ok' }
  | { readonly kind: 'version'; readonly version: string }
  | { readonly kind: 'stats'; readonly stats: ReadonlyArray<readonly [string, string]> }
  /** `stats reset` answers RESET. */
  | { readonly kind: 'reset' }
  /** Lines of text then END (`stats detail dump`); binary carries them as one statistic. */
  | { readonly kind: 'lines'; readonly name: string; readonly lines: readonly string[] }
  | { readonly kind: 'quit' }
  | MetaReply;

/** memcached's limits on what a client may name. */
export const keyBytesMax = 250;
