/** The counters behind `stats`, under memcached's names. */
export class NodeStats {
  currConnections = 0;
  totalConnections = 0;
  rejectedConnections = 0;
  cmdGet = 0;
  cmdSet = 0;
  cmdFlush = 0;
  cmdTouch = 0;
  getHits = 0;
  getMisses = 0;
  getExpired = 0;
  deleteMisses = 0;
  deleteHits = 0;
  incrMisses = 0;
  incrHits = 0;
  decrMisses = 0;
  decrHits = 0;
  casMisses = 0;
  casHits = 0;
  casBadval = 0;
  touchHits = 0;
  touchMisses = 0;
  storeTooLarge = 0;
  /** Authentication attempts, and those refused (memcached's auth_cmds and auth_errors). */
  authCmds = 0;
  authErrors = 0;
  /** Connections closed for being idle past the idle timeout (memcached's idle_kicks). */
  idleKicks = 0;
  bytesRead = 0;
  bytesWritten = 0;
  totalItems = 0;
  /** Lines written to watchers, and those dropped because a watcher was behind (watchers.ts). */
  logWatcherSent = 0;
  logWatcherSkipped = 0;

  /** `stats reset`: memcached clears the command and traffic counters, not the gauges. */
  reset(): void {
    const { currConnections } = this;
    Object.assign(this, new NodeStats());
    this.currConnections = currConnections;
  }
}
