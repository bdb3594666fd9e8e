/**
 * What a node does about its store's failures: every one is logged (the logger rate limits
 * repeats), and a store that can no longer commit takes the node out of service loudly. The node
 * declares itself down in gossip, so every coordinator, its own included, routes around it and
 * other replicas hold hints for it; `kai status` and `stats kai` show the failure. Only a restart,
 * once the disk or file is mended, brings it back.
 */
import type { Gossip } from '../gossip';
import type { Logger } from '../log';
import type { StorageEvent, StorageListener } from '../storage/health';

export function storageWatcher(log: Logger, gossip: Pick<Gossip, 'declareSelfDown'>): StorageListener {
  return (event: StorageEvent) => {
    switch (event.kind) {
      case 'commitFailed':
        log.warn({ operations: event.operations, code: event.code, detail: event.message }, 'storage commit failed');
        return;
      case 'workerLost':
        log.error({ detail: event.message, restartInMs: event.restartInMs }, 'commit worker lost; starting another');
        return;
      case 'workerRestarted':
        log.warn({ restarts: event.restarts }, 'commit worker started again');
        return;
      case 'failed':
        log.fatal({ reason: event.reason }, 'storage failed: this node refuses every write and is down until restarted');
        gossip.declareSelfDown();
        return;
    }
  };
}
