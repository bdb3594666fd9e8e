/**
 * The admin HTTP server (--admin-port, --admin-host): what operators and orchestrators ask a node
 * over plain HTTP. GET only, no request body, and bounded in connections, header bytes and time,
 * so a misbehaving scraper or probe cannot hold more than a few sockets for a few seconds.
 *
 *   /metrics  Prometheus text format (src/metrics)
 *   /health   200 while the process runs and its event loop answers
 *   /ready    200 when the node can meet its quorums for the buckets it serves, else 503 and why
 *   /status   the node's view as JSON (node-view.ts)
 */
import http from 'node:http';
import type net from 'node:net';
import { KaiError, asKaiError } from '../errors';
import type { Logger } from '../log';
import type { StatusDocument } from './node-view';
import type { Readiness } from './readiness';

/** Connections the admin server holds at once; more are closed as they arrive. */
export const adminConnectionsMax = 32;
/** Bytes of a request's line and headers; past it Node answers 431 and closes. */
export const adminHeaderBytesMax = 8 * 1024;
/** How long a request may take to arrive in full (headers included); past it Node answers 408. */
export const adminRequestTimeoutMs = 10_000;
/** How long the request line and headers may take to arrive. */
export const adminHeadersTimeoutMs = 5_000;
/** How long an idle kept-alive connection stays open between requests. */
export const adminKeepAliveTimeoutMs = 5_000;
/** Requests one connection may send before the server closes it, so none is held forever. */
export const adminRequestsPerConnectionMax = 100;

/** What the admin server reads of its node. */
export interface AdminSources {
  metrics(): Promise<{ readonly body: string; readonly contentType: string }>;
  readiness(): Readiness;
  status(): StatusDocument;
  /** Seconds since the node started, for /health. */
  uptimeSeconds(): number;
}

export const adminPaths = ['/metrics', '/health', '/ready', '/status'] as const;

interface AdminReply {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
  readonly headers?: Readonly<Record<string, string>>;
}

const jsonType = 'application/json; charset=utf-8';

function json(status: number, value: unknown): AdminReply {
  return { status, contentType: jsonType, body: `${JSON.stringify(value)}\n` };
}

function failure(error: KaiError, extra: Readonly<Record<string, unknown>> = {}): AdminReply {
  return json(error.httpStatus(), { code: error.code, error: error.detail ?? error.message, ...extra });
}

/** The path without its query string. */
function pathOf(url: string | undefined): string {
  const text = url ?? '/';
  const query = text.indexOf('?');
  return query === -1 ? text : text.slice(0, query);
}

function hasBody(request: http.IncomingMessage): boolean {
  const length = request.headers['content-length'];
  return (length !== undefined && length !== '0') || request.headers['transfer-encoding'] !== undefined;
}

/** The reply to one request, decided from its method, path and the node's sources. */
export async function adminReply(request: http.IncomingMessage, sources: AdminSources): Promise<AdminReply> {
  const path = pathOf(request.url);
  if (!(adminPaths as readonly string[]).includes(path)) {
    return failure(new KaiError('KAI_ADMIN_NOT_FOUND', `no admin path ${JSON.stringify(path.slice(0, 100))}; there are ${adminPaths.join(', ')}`));
  }
  if (request.method !== 'GET') {
    const reply = failure(new KaiError('KAI_ADMIN_METHOD_NOT_ALLOWED', `${path} answers GET only, not ${request.method}`));
    return { ...reply, headers: { allow: 'GET' } };
  }
  if (hasBody(request)) return failure(new KaiError('KAI_ADMIN_REQUEST_TOO_LARGE', `${path} takes no request body`));
  switch (path) {
    case '/metrics': {
      const { body, contentType } = await sources.metrics();
      return { status: 200, contentType, body };
    }
    case '/health':
      return json(200, { alive: true, uptimeSeconds: sources.uptimeSeconds() });
    case '/ready': {
      const readiness = sources.readiness();
      if (readiness.ready) return json(200, { ready: true });
      return failure(new KaiError('KAI_NOT_READY', readiness.detail), { ready: false, reason: readiness.reason });
    }
    default:
      return json(200, sources.status());
  }
}

export class AdminServer {
  private readonly server: http.Server;

  constructor(
    private readonly sources: AdminSources,
    private readonly log: Logger,
  ) {
    this.server = http.createServer({ maxHeaderSize: adminHeaderBytesMax }, (request, response) => this.answer(request, response));
    this.server.maxConnections = adminConnectionsMax;
    this.server.requestTimeout = adminRequestTimeoutMs;
    this.server.headersTimeout = adminHeadersTimeoutMs;
    this.server.keepAliveTimeout = adminKeepAliveTimeoutMs;
    this.server.maxRequestsPerSocket = adminRequestsPerConnectionMax;
  }

  /** Listens on `host:port` (0 picks a free port); resolves with the port bound. */
  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ port, host }, () => {
        this.server.off('error', reject);
        this.server.on('error', (error) => this.log.warn({ err: error }, 'admin server error'));
        resolve((this.server.address() as net.AddressInfo).port);
      });
    });
  }

  private answer(request: http.IncomingMessage, response: http.ServerResponse): void {
    adminReply(request, this.sources)
      .catch((error: unknown) => {
        this.log.warn({ err: error, url: request.url }, 'admin request failed');
        return failure(asKaiError(error));
      })
      .then((reply) => {
        // A request with a body the server will not read ends its connection, which would otherwise wait for it.
        const closeAfter = reply.status >= 400 && hasBody(request);
        response.writeHead(reply.status, {
          'content-type': reply.contentType,
          'content-length': Buffer.byteLength(reply.body),
          'cache-control': 'no-store',
          ...(closeAfter ? { connection: 'close' } : {}),
          ...reply.headers,
        });
        response.end(reply.body);
      })
      .catch((error: unknown) => this.log.debug({ err: error }, 'admin reply not written'));
  }

  /** Stops listening and closes every connection, idle or not. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
