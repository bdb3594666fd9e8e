/**
 * Routes each internal API request to the part of the node that answers its type: gossip for
 * membership, the replica handler for replica reads and writes. The table is filled in as the
 * node composes its parts; a request whose type has no route yet is answered with an error
 * reply, never left without an answer.
 */
import { KaiError } from '../errors';
import type { RpcReply, RpcRequest, RpcRequestType } from './messages';
import type { RequestHandler } from './transport';

export type RouteOf<T extends RpcRequestType> = (
  request: Extract<RpcRequest, { readonly type: T }>,
) => Promise<RpcReply> | RpcReply;

/** At most one handler per request type. */
export type RequestRoutes = { -readonly [T in RpcRequestType]?: RouteOf<T> };

export function routeRequests(routes: RequestRoutes): RequestHandler {
  return (request) => {
    // The table's type pairs each route with its own request type; indexing by a union loses that.
    const route = routes[request.type] as RequestHandler | undefined;
    if (route === undefined) throw new KaiError('KAI_INTERNAL', `this node does not answer ${request.type} requests`);
    return route(request);
  };
}
