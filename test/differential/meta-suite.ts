/**
 * The meta differential suite, for any subject: each stream of ./meta-streams is played to
 * memcached and to the subject on connections of their own, and the replies must match once
 * normalizeMetaReplies has masked cas uniques and `me`'s internal fields, and forgiveClockTicks
 * has forgiven clock readings one tick apart. A stream whose replies differ only in clock readings
 * is played again on fresh keys, up to playsMax times: a loaded machine can delay a server's tick.
 */
import { killStartedKai } from '../support/process';
import { chosenSubject, runStream, startMemcached, startSubject, type RunningServer, type SubjectKind } from './harness';
import { differOnlyInClockReadings, forgiveClockTicks, normalizeMetaReplies } from './meta-replies';
import { metaStreams, valueBytesMax } from './meta-streams';
import { Namespace } from './namespace';

/** A cluster of three starting on a loaded machine may take most of a minute to serve. */
const startTimeoutMs = 180_000;
const stopTimeoutMs = 60_000;
const streamTimeoutMs = 60_000;
/** Plays of a stream whose replies differ only in clock readings (differOnlyInClockReadings). */
const playsMax = 3;

/** Declares the suite against `preferred` (or the subject KAI_DIFFERENTIAL_SUBJECT names). */
export function describeMetaDifferential(preferred: SubjectKind): void {
  describe(`meta commands: ${chosenSubject(preferred)} against memcached`, () => {
    let reference: RunningServer | undefined;
    let subject: RunningServer | undefined;

    beforeAll(async () => {
      reference = await startMemcached({ valueBytesMax });
      subject = await startSubject({ valueBytesMax }, preferred);
    }, startTimeoutMs);

    afterAll(async () => {
      await Promise.all([reference?.stop(), subject?.stop()]);
      await killStartedKai();
    }, stopTimeoutMs);

    // Each stream, on its own connection and keys, gets the same replies from both servers.
    test.each(metaStreams.map((stream, index) => [stream.name, stream, index] as const))(
      '%s',
      async (_name, stream, index) => {
        if (reference === undefined || subject === undefined) throw new Error('the servers did not start');
        let forgiven = '';
        let expected = '';
        for (let play = 1; play <= playsMax; play++) {
          const steps = stream.steps(new Namespace(`m${index}_${play}_${Date.now().toString(36)}_`));
          expected = normalizeMetaReplies((await runStream(reference.port, steps)).bytes);
          const actual = normalizeMetaReplies((await runStream(subject.port, steps)).bytes);
          forgiven = forgiveClockTicks(actual, expected);
          if (forgiven === expected || !differOnlyInClockReadings(actual, expected)) break;
        }
        expect(forgiven).toEqual(expected);
      },
      streamTimeoutMs,
    );
  });
}
