/**
 * The shell of a quorum: runs one call per replica in parallel, feeds each outcome into the pure
 * quorum state (src/quorum), and answers as soon as the state is met or cannot be; it keeps
 * listening after that, until every replica has answered or the timeout passes, and then hands the
 * final state to `onFinal`, which is how a read learns which replicas to repair.
 */
import type { Env } from '../env';
import { KaiError } from '../errors';
import { addFailure, addSuccess, allAnswered, startJointQuorum, startQuorum, verdict, type QuorumGroup, type QuorumState } from '../quorum';

export interface ReplicaCall<T> {
  readonly node: string;
  readonly call: () => Promise<T>;
  /** Whether a result counts toward the quorum on its own (see quorum/index.ts); by default all do. */
  readonly counts?: (result: T) => boolean;
}

export interface GatherOptions<T> {
  readonly env: Env;
  readonly timeoutMs: number;
  readonly needed: number;
  /** Groups that must each be met (a write while its bucket moves); then `needed` is not used. */
  readonly groups?: readonly QuorumGroup[];
  /** The unmet quorum's detail, from the successes so far. */
  readonly describe: (successes: number) => string;
  /** Runs once, with every answer that came before the timeout. */
  readonly onFinal?: (state: QuorumState<T>) => void;
  /**
   * Answer only once every replica has answered, or at the timeout if the quorum is met by then:
   * for a decision that must see every replica holding something, not only a quorum of them.
   */
  readonly waitForAll?: boolean;
}

function unmet(detail: string): KaiError {
  return new KaiError('KAI_QUORUM_UNMET', detail);
}

export function gather<T>(calls: readonly ReplicaCall<T>[], options: GatherOptions<T>): Promise<QuorumState<T>> {
  return new Promise((resolve, reject) => {
    const asked = calls.map((call) => call.node);
    let state = options.groups ? startJointQuorum<T>(asked, options.groups) : startQuorum<T>(asked, options.needed);
    let answered = false;
    let finished = false;
    const answer = (error?: KaiError): void => {
      if (answered) return;
      answered = true;
      if (error) reject(error);
      else resolve(state);
    };
    const finish = (): void => {
      if (finished) return;
      finished = true;
      timer.cancel();
      options.onFinal?.(state);
    };
    const timer = options.env.after(options.timeoutMs, () => {
      if (verdict(state) === 'met') answer();
      else answer(unmet(`${options.describe(state.successes.length)} within ${options.timeoutMs} ms`));
      finish();
    });
    const check = (): void => {
      const outcome = verdict(state);
      if (outcome === 'met' && (!options.waitForAll || allAnswered(state))) answer();
      else if (outcome === 'unmet') answer(unmet(options.describe(state.successes.length)));
      // Without a final action there is nothing to wait for once the caller has its answer.
      if (allAnswered(state) || (answered && options.onFinal === undefined)) finish();
    };
    check();
    for (const { node, call, counts } of calls) {
      call().then(
        (result) => {
          if (finished) return;
          state = addSuccess(state, node, result, counts?.(result) ?? true);
          check();
        },
        (error: unknown) => {
          if (finished) return;
          state = addFailure(state, node, error instanceof Error ? error.message : String(error));
          check();
        },
      );
    }
  });
}
