import { ReplyQueue, type ReplySink } from '../../../src/server/reply-queue';

/** Records every sink call in order: a write as its joined text, a close as 'CLOSE'. */
class RecordingSink implements ReplySink {
  readonly events: string[] = [];

  write(chunks: readonly Buffer[]): void {
    this.events.push(Buffer.concat(chunks).toString());
  }

  close(): void {
    this.events.push('CLOSE');
  }
}

const chunks = (...texts: string[]): Buffer[] => texts.map((text) => Buffer.from(text));

let sink: RecordingSink;
let queue: ReplyQueue;

beforeEach(() => {
  sink = new RecordingSink();
  queue = new ReplyQueue(sink);
});

// Replies finishing in reverse order still reach the wire in request order.
test('out-of-order completion is written in order', () => {
  const first = queue.reserve();
  const second = queue.reserve();
  const third = queue.reserve();
  expect(queue.inFlight).toBe(3);
  third(chunks('3'));
  second(chunks('2a', '2b'));
  expect(sink.events).toEqual([]);
  first(chunks('1'));
  // Everything ready is written in one batch.
  expect(sink.events).toEqual(['12a2b3']);
  expect(queue.inFlight).toBe(0);
});

// Each reply goes out as soon as every earlier one has.
test('the head is written as soon as it is filled', () => {
  const first = queue.reserve();
  const second = queue.reserve();
  first(chunks('1'));
  expect(sink.events).toEqual(['1']);
  expect(queue.inFlight).toBe(1);
  second(chunks('2'));
  expect(sink.events).toEqual(['1', '2']);
});

// An empty reply (noreply) holds its place and lets later replies through.
test('empty replies keep order without writing', () => {
  const first = queue.reserve();
  const second = queue.reserve();
  second(chunks('2'));
  first([]);
  expect(sink.events).toEqual(['2']);
});

// answer() writes at once when nothing is waiting, and queues behind pending requests otherwise.
test('answer without waiting when idle', () => {
  queue.answer(chunks('now'));
  expect(sink.events).toEqual(['now']);
  expect(queue.inFlight).toBe(0);
  const pending = queue.reserve();
  queue.answer(chunks('later'));
  expect(sink.events).toEqual(['now']);
  expect(queue.inFlight).toBe(2);
  pending(chunks('first'));
  expect(sink.events).toEqual(['now', 'firstlater']);
  queue.answer([]);
  expect(sink.events).toEqual(['now', 'firstlater']);
});

// closeAfter closes once the replies before it are written, and drops replies after it.
test('closeAfter closes after earlier replies only', () => {
  const first = queue.reserve();
  const closing = queue.reserve();
  const after = queue.reserve();
  after(chunks('never'));
  closing(chunks('bye'), true);
  expect(sink.events).toEqual([]);
  first(chunks('1'));
  expect(sink.events).toEqual(['1bye', 'CLOSE']);
  queue.answer(chunks('too late'));
  expect(sink.events).toEqual(['1bye', 'CLOSE']);
});

// answer with closeAfter when idle writes then closes, once.
test('answer with closeAfter when idle', () => {
  queue.answer(chunks('bye'), true);
  queue.answer([], true);
  const late = queue.reserve();
  late(chunks('x'), true);
  expect(sink.events).toEqual(['bye', 'CLOSE']);
});

// A quit with nothing to say closes without writing.
test('closeAfter with an empty reply', () => {
  const first = queue.reserve();
  const quit = queue.reserve();
  quit([], true);
  first(chunks('1'));
  expect(sink.events).toEqual(['1', 'CLOSE']);
});

// A reply written in parts (a wide multiget) waits its turn, is written part by part once at the
// head, holds the replies after it until it ends, and says when what it pushed has been written.
test('a streamed reply is written part by part in its place', () => {
  const first = queue.reserve();
  const stream = queue.reserveStream();
  const after = queue.reserve();
  after(chunks('after'));
  stream.push(chunks('p1'));
  expect(sink.events).toEqual([]);
  expect(stream.flushed).toBe(false);
  first(chunks('first'));
  expect(sink.events).toEqual(['firstp1']);
  expect(stream.flushed).toBe(true);
  stream.push(chunks('p2'));
  expect(sink.events).toEqual(['firstp1', 'p2']);
  stream.end(chunks('END'));
  expect(sink.events).toEqual(['firstp1', 'p2', 'ENDafter']);
  expect(queue.inFlight).toBe(0);
});

// A request held for the replies ahead (a stats) starts only once they are written, and keeps its place.
test('reserveAtHead starts once every reply ahead is written, before the ones behind', () => {
  const first = queue.reserve();
  const started: string[] = [];
  queue.reserveAtHead((fill) => {
    started.push(`started after ${sink.events.join('|')}`);
    fill(chunks('stats'));
  });
  const third = queue.reserve();
  third(chunks('3'));
  expect(started).toEqual([]);
  first(chunks('1'));
  expect(started).toEqual(['started after 1']);
  expect(sink.events).toEqual(['1', 'stats3']);
  expect(queue.inFlight).toBe(0);
});

// With nothing ahead it starts at once; a fill that comes later still leaves in order.
test('reserveAtHead with nothing ahead starts at once', () => {
  let fillLater: ((chunks: readonly Buffer[]) => void) | undefined;
  queue.reserveAtHead((fill) => (fillLater = fill));
  const after = queue.reserve();
  after(chunks('after'));
  expect(sink.events).toEqual([]);
  fillLater?.(chunks('first'));
  expect(sink.events).toEqual(['firstafter']);
});
