/**
 * memcached's meta commands (mg, ms, md, ma, mn, me) in the command model. A meta command keeps
 * its flag tokens in the order the client sent them, because the reply reports flags in that
 * order and some flags act in it (a `T` before a `t` shows the new TTL). docs/protocol.md
 * describes how kai serves them over a cluster.
 */

/** What every meta command with a key carries. */
export interface MetaRequest {
  /** The key, base64-decoded when `keyBase64`. */
  readonly key: Buffer;
  /** The `b` flag: the key came in base64, and is echoed (by `k`) in base64. */
  readonly keyBase64: boolean;
  /** Every flag token after the key (and ms's length), in request order, whole: `Oabc`, `T30`. */
  readonly flags: readonly Buffer[];
  /** The `q` flag: the nominal reply is left out (which one depends on the command). */
  readonly quiet: boolean;
  /**
   * An `O` token over memcached's 32 bytes. mg and ma find this while writing their reply, after
   * the command has acted, so the executor acts and then answers the error.
   */
  readonly opaqueTooLong: boolean;
}

export interface MetaGetRequest extends MetaRequest {
  /** `v`: the value is returned (VA) rather than only the flags (HD). */
  readonly withValue: boolean;
  /** `u`: the access is not recorded (hit-before and last-access stay as they were). */
  readonly noBump: boolean;
  /** `T`: the client's new exptime for the item, on a hit. */
  readonly touchExptime?: number;
  /** `N`: create an empty item with this exptime on a miss, and win its recache. */
  readonly vivifyExptime?: number;
  /** `R`: win the recache when the item's remaining TTL is below this exptime. */
  readonly recacheExptime?: number;
}

/** ms's `M` modes: E add, A append, P prepend, R replace, S set. */
export type MetaSetMode = 'set' | 'add' | 'replace' | 'append' | 'prepend';

export interface MetaSetRequest extends MetaRequest {
  readonly mode: MetaSetMode;
  /** `F`: the client flags stored with the value (0 when absent). */
  readonly clientFlags: number;
  /** `T`: the exptime (0, never, when absent). */
  readonly exptime: number;
  /** `C`: store only if the key's cas unique is this one; absent for none. */
  readonly compareCas?: bigint;
  /** `I` with `C`: a cas that does not match still stores, and the value is marked stale. */
  readonly invalidate: boolean;
}

export interface MetaDeleteRequest extends MetaRequest {
  readonly compareCas?: bigint;
  /** `I`: mark the item stale (and give it a new cas unique) instead of removing it. */
  readonly invalidate: boolean;
  /** `T` with `I`: the stale item's new exptime. */
  readonly exptime?: number;
}

export interface MetaArithRequest extends MetaRequest {
  /** `M`: I or + increments (the default), D or - decrements. */
  readonly incr: boolean;
  /** `D`: the delta, 1 when absent. */
  readonly delta: bigint;
  /** `J`: the value a missing key is created with under `N`, 0 when absent. */
  readonly initial: bigint;
  /** `N`: create a missing key with this exptime. */
  readonly vivifyExptime?: number;
  /** `T`: the exptime set when the operation succeeds. */
  readonly exptime?: number;
  readonly compareCas?: bigint;
  /** `v`: the new value is returned (VA). */
  readonly withValue: boolean;
}

export type MetaCommand =
  | { readonly op: 'meta_get'; readonly request: MetaGetRequest; readonly noreply: false }
  | { readonly op: 'meta_set'; readonly request: MetaSetRequest; readonly value: Buffer; readonly noreply: false }
  | { readonly op: 'meta_delete'; readonly request: MetaDeleteRequest; readonly noreply: false }
  | { readonly op: 'meta_arith'; readonly request: MetaArithRequest; readonly noreply: false }
  | { readonly op: 'meta_noop' }
  | { readonly op: 'meta_debug'; readonly key: Buffer; readonly keyBase64: boolean };

/** An item as a meta command found and left it, with what the reply reports of it. */
export interface MetaItem {
  readonly key: Buffer;
  readonly value: Buffer;
  readonly flags: number;
  /** The cas unique of the key's whole context after the command. */
  readonly cas: bigint;
  /** The item's expiry before the command's `T` and `N` acted (unix ms, 0 for never). */
  readonly expiresAtMsBefore: number;
  /** The key was written with `b`: `k` shows it in base64. */
  readonly keyBase64: boolean;
  /** Marked stale by an invalidation (X). */
  readonly stale: boolean;
  /** Some client had already been told it won the recache (Z). */
  readonly winTokenSentBefore: boolean;
  /** Whether this node had seen the item read before, and when it was last read or written (ms). */
  readonly fetchedBefore: boolean;
  readonly lastAccessMs: number;
}

/** The two-letter status of a meta reply. */
export type MetaStatus = 'HD' | 'VA' | 'EN' | 'NF' | 'NS' | 'EX';

export type MetaReply =
  | {
      readonly kind: 'meta_get';
      /** Undefined on a miss. */
      readonly item?: MetaItem;
      /** The item was created by `N` just now. */
      readonly created: boolean;
      /** This client won the recache (W). */
      readonly won: boolean;
      readonly nowMs: number;
    }
  | { readonly kind: 'meta_set'; readonly status: MetaStatus; readonly cas: bigint }
  | { readonly kind: 'meta_delete'; readonly status: MetaStatus }
  | {
      readonly kind: 'meta_arith';
      readonly status: MetaStatus;
      /** The counter after the command, when it succeeded or was created. */
      readonly value?: bigint;
      readonly cas: bigint;
      readonly created: boolean;
      /** The expiry before `T` and `N` acted (unix ms, 0 for never or created). */
      readonly expiresAtMsBefore: number;
      readonly nowMs: number;
    }
  | { readonly kind: 'meta_noop' }
  | {
      readonly kind: 'meta_debug';
      /** Undefined on a miss. */
      readonly item?: MetaItem;
      readonly nowMs: number;
    };
