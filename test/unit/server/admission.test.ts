// Admission at the front door: requests and value bytes in flight are bounded node-wide, and the
// connections that found the node full go on, oldest first, as requests finish.
import { Admission, type AdmissionWaiter } from '../../../src/server/admission';

function waiter(resumed: string[], name: string, admission?: Admission, admitOnResume = 0): AdmissionWaiter {
  return {
    resumeAfterAdmission() {
      resumed.push(name);
      for (let index = 0; index < admitOnResume; index++) admission?.admit(0);
    },
  };
}

test('closes at the request bound and reopens as requests finish', () => {
  const admission = new Admission({ requestsInFlightMax: 2, valueBytesInFlightMax: 1000 });
  admission.admit(0);
  expect(admission.open).toBe(true);
  admission.admit(0);
  expect(admission.open).toBe(false);
  admission.release(0);
  expect(admission.open).toBe(true);
  expect(admission.requestsInFlight).toBe(1);
});

test('closes at the value-byte bound, whatever the request count', () => {
  const admission = new Admission({ requestsInFlightMax: 100, valueBytesInFlightMax: 1000 });
  admission.admit(600);
  expect(admission.open).toBe(true);
  admission.admit(400);
  expect(admission.open).toBe(false);
  expect(admission.valueBytesInFlight).toBe(1000);
  admission.release(400);
  expect(admission.open).toBe(true);
});

test('wakes waiting connections oldest first, and only while the node has room', () => {
  const admission = new Admission({ requestsInFlightMax: 1, valueBytesInFlightMax: 1000 });
  const resumed: string[] = [];
  admission.admit(0);
  // The first to go on fills the node again: the second keeps waiting, and is counted once.
  const first = waiter(resumed, 'first', admission, 1);
  const second = waiter(resumed, 'second');
  admission.wait(first);
  admission.wait(second);
  admission.wait(second);
  expect(admission.waits).toBe(2);
  admission.release(0);
  expect(resumed).toEqual(['first']);
  admission.release(0);
  expect(resumed).toEqual(['first', 'second']);
});

test('a connection that closes stops waiting', () => {
  const admission = new Admission({ requestsInFlightMax: 1, valueBytesInFlightMax: 1000 });
  const resumed: string[] = [];
  admission.admit(0);
  const gone = waiter(resumed, 'gone');
  admission.wait(gone);
  admission.forget(gone);
  admission.release(0);
  expect(resumed).toEqual([]);
});
