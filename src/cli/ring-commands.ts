/**
 * `kai leave`, `kai remove`, `kai replace` and `kai transfers`: ring changes asked of a node, and
 * the transfers they cause, as riak-admin and nodetool users expect them. Each change is recorded
 * in the ring state, which gossip spreads; the claimant plans it and the buckets move before the
 * requests do (docs/operations.md).
 */
import { ringMemberIds } from '../claimant';
import type { TransferProgress } from '../rpc/messages';
import type { ConnectionSecurity } from '../rpc/tcp-transport';
import { addSeedAt, askRingChange, nodeInfoAt, type NodeInfo } from './membership-commands';
import { askMembers } from './node-health';
import { CommandError } from './node-request';
import { bytesText } from './table';

function ringLine(info: NodeInfo): string {
  const state = info.ring;
  if (state === undefined) return '';
  return state.next === null ? `ring version ${state.version}` : `ring version ${state.version}, a change in progress: see kai transfers`;
}

export async function leaveCommand(node: string, security?: ConnectionSecurity): Promise<string> {
  const info = await askRingChange(node, { kind: 'leave' }, security);
  return `${info.id} is leaving: it hands its buckets to the others, then leaves the ring and stops; ${ringLine(info)}`;
}

export async function removeCommand(node: string, member: string, security?: ConnectionSecurity): Promise<string> {
  const info = await askRingChange(node, { kind: 'remove', member }, security);
  const still = info.seeds.includes(member) || info.members.some((m) => m.id === member && m.status !== 'leaving');
  if (!still) return `${member} forgotten by ${info.id}`;
  return `${member} is removed: its buckets are re-created on their new owners from the surviving replicas; ${ringLine(info)}`;
}

export async function replaceCommand(node: string, old: string, replacement: string, security?: ConnectionSecurity): Promise<string> {
  // The new node is named by the id it gives itself, as check-node names it.
  const replacementInfo = await nodeInfoAt(replacement, security).catch(() => undefined);
  if (replacementInfo === undefined) throw new CommandError(`cannot reach ${replacement}: start it first`);
  const replacementId = replacementInfo.id;
  const address = replacementInfo.members.find((m) => m.id === replacementId)?.address ?? replacement;
  await askRingChange(node, { kind: 'replace', old, replacement: replacementId }, security);
  const info = await addSeedAt(node, address, security);
  return `${replacementId} replaces ${old}: it receives every bucket of ${old}, which then leaves the ring; ${ringLine(info)}`;
}

export interface TransferRow {
  readonly member: string;
  readonly progress: TransferProgress | undefined;
  readonly unreachable?: string;
}

/** The transfers of the ring change in progress, as each member of the ring reports its own. */
export async function transfersStatus(
  node: string,
  security?: ConnectionSecurity,
): Promise<{ version: number; changing: boolean; rows: TransferRow[] }> {
  const info = await nodeInfoAt(node, security);
  const state = info.ring;
  if (state === undefined) throw new CommandError(`${node} does not report a ring state`);
  const members = ringMemberIds(state);
  const answers = await askMembers(info, members, security);
  const rows = members.map((member): TransferRow => {
    const answer = answers.get(member);
    if (answer !== undefined && 'info' in answer) return { member, progress: answer.info.transfers };
    return { member, progress: undefined, unreachable: answer?.unreachable ?? 'not asked' };
  });
  return { version: state.version, changing: state.next !== null, rows };
}

const barWidth = 20;

function bar(fraction: number): string {
  const filled = Math.round(Math.max(0, Math.min(1, fraction)) * barWidth);
  return `[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}]`;
}

/** One line per member: a progress bar, buckets, keys and bytes moved, the rate and the time left. */
export function transfersTable(status: { version: number; changing: boolean; rows: readonly TransferRow[] }): string {
  if (!status.changing) return `ring version ${status.version}: no ring change in progress, nothing to transfer`;
  const lines = [`ring version ${status.version}: buckets move to their new replicas before requests do`];
  for (const row of status.rows) {
    const progress = row.progress;
    if (progress === undefined) {
      lines.push(`${row.member}  ${row.unreachable ?? 'no report'}`);
      continue;
    }
    if (progress.bucketsToReceive === 0) {
      lines.push(`${row.member}  receives nothing`);
      continue;
    }
    const fraction = progress.bucketsReceived / progress.bucketsToReceive;
    const elapsedS = progress.startedAtMs > 0 ? (progress.nowMs - progress.startedAtMs) / 1000 : 0;
    const rate = elapsedS > 0 ? progress.bytesMoved / elapsedS : 0;
    const bucketsPerS = elapsedS > 0 ? progress.bucketsReceived / elapsedS : 0;
    const leftS = bucketsPerS > 0 ? (progress.bucketsToReceive - progress.bucketsReceived) / bucketsPerS : undefined;
    const parts = [
      row.member,
      bar(fraction),
      `${progress.bucketsReceived}/${progress.bucketsToReceive} buckets`,
      `${progress.keysMoved} keys`,
      bytesText(progress.bytesMoved),
      `${bytesText(rate)}/s`,
      leftS === undefined ? 'time left unknown' : `${Math.ceil(leftS)} s left`,
    ];
    if (progress.waiting !== undefined) parts.push(`(${progress.waiting})`);
    lines.push(parts.join('  '));
  }
  return lines.join('\n');
}
