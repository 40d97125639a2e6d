// Waits for one named object to reach a state, through a watch (never polling): list it by name for a
// consistent start, watch from that resourceVersion, re-watch when the server ends the stream, start
// over from a fresh list on 410 Gone or a transient failure (with backoff), give up on permanent ones.

import {
  ApiError,
  isApiError,
  type KubeClient,
  type KubeObject,
  RequestTimeoutError,
  type ResourceType,
} from "../runtime/kube.ts";
import { Backoff, sleep } from "../runtime/util.ts";

/** Returns a value to finish the wait, or undefined to keep waiting. `undefined` object: it is gone. */
export type Decide<T, R> = (object: T | undefined) => R | undefined;

export interface NamedObject {
  namespace?: string;
  name: string;
}

/** An error thrown by `decide`: the caller's verdict, passed through without retrying. */
class Verdict {
  constructor(readonly error: unknown) {}
}

/** Errors that a retry cannot fix: no permission, unknown resource, bad request. */
function isPermanent(err: unknown): boolean {
  if (err instanceof RequestTimeoutError) return false;
  if (!isApiError(err)) return false;
  return err.status === 400 || err.status === 401 || err.status === 403 || err.status === 404;
}

/**
 * Resolves with the first non-undefined `decide` result, starting with the object's current state.
 * Rejects with what `decide` throws, with the signal's reason when `signal` aborts, or with a permanent
 * API error.
 * `onSeen` receives every state observed (for error reports).
 */
export async function waitFor<T extends KubeObject, R>(
  client: KubeClient,
  type: ResourceType,
  target: NamedObject,
  decide: Decide<T, R>,
  signal: AbortSignal,
  onSeen: (object: T | undefined) => void = () => {},
): Promise<R> {
  const fieldSelector = `metadata.name=${target.name}`;
  const backoff = new Backoff({ initialMs: 200, maxMs: 5_000 });
  const see = (object: T | undefined): R | undefined => {
    onSeen(object);
    try {
      return decide(object);
    } catch (err) {
      throw new Verdict(err);
    }
  };
  for (;;) {
    signal.throwIfAborted();
    try {
      const list = await client.list<T>(type, { namespace: target.namespace, fieldSelector, signal });
      const start = see(list.items[0]);
      if (start !== undefined) return start;
      let resourceVersion = list.resourceVersion;
      // Re-watch from the last resourceVersion for as long as the server ends streams normally.
      for (;;) {
        const events = client.watch<T>(
          type,
          {
            namespace: target.namespace,
            fieldSelector,
            resourceVersion,
            allowWatchBookmarks: true,
            timeoutSeconds: 300,
          },
          signal,
        );
        for await (const ev of events) {
          if (ev.type === "ERROR") throw ApiError.fromStatus(ev.object, "watch", type.plural);
          resourceVersion = ev.object.metadata.resourceVersion ?? resourceVersion;
          if (ev.type === "BOOKMARK") continue;
          const done = see(ev.type === "DELETED" ? undefined : ev.object);
          if (done !== undefined) return done;
        }
        signal.throwIfAborted();
        backoff.reset();
      }
    } catch (err) {
      if (err instanceof Verdict) throw err.error;
      signal.throwIfAborted();
      if (isPermanent(err)) throw err;
      // 410 Gone (history compacted) or a transient failure: start over from a fresh list.
      if (!(isApiError(err) && err.status === 410)) await sleep(backoff.next(), signal);
    }
  }
}
