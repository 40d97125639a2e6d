// Typed watches as async iterators, on the runtime's Informer: a consistent list first (events marked
// `initial`), then changes; 410 Gone, server timeouts and failures are handled by the informer (relist,
// re-watch, backoff), so the iteration only ends when the caller stops it.

import { type IPAMRange, type IPAMRequest, ipamRangeResource, ipamRequestResource } from "../api/types.ts";
import { Informer } from "../runtime/informer.ts";
import type { KubeClient, KubeObject, ResourceType } from "../runtime/kube.ts";
import { type ConnectionOptions, connect } from "./connection.ts";

export interface ObjectEvent<T> {
  type: "Added" | "Updated" | "Deleted";
  object: T;
  /** Added: the object was there when the watch started. */
  initial?: boolean;
  /** Updated: the object before the change. */
  previous?: T;
}

export interface WatchObjectsOptions extends ConnectionOptions {
  /** One namespace (default: all the client may list). */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Ends the iteration. Breaking out of `for await` ends it too. */
  signal?: AbortSignal;
}

export function watchRequests(options: WatchObjectsOptions = {}): AsyncGenerator<ObjectEvent<IPAMRequest>> {
  return watchObjects<IPAMRequest>(ipamRequestResource, options);
}

export function watchRanges(options: WatchObjectsOptions = {}): AsyncGenerator<ObjectEvent<IPAMRange>> {
  return watchObjects<IPAMRange>(ipamRangeResource, options);
}

/** Events of any resource type (your own custom resources too). */
export async function* watchObjects<T extends KubeObject>(
  type: ResourceType,
  options: WatchObjectsOptions = {},
): AsyncGenerator<ObjectEvent<T>> {
  const own: KubeClient | undefined = options.client
    ? undefined
    : await connect({ kubeconfig: options.kubeconfig, context: options.context });
  const client = options.client ?? own;
  if (!client) throw new Error("no client");
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) stop.abort();
  const queue: ObjectEvent<T>[] = [];
  let wake: (() => void) | undefined;
  const push = (event: ObjectEvent<T>) => {
    queue.push(event);
    wake?.();
  };
  stop.signal.addEventListener("abort", () => wake?.(), { once: true });
  const informer = new Informer<T>(client, type, {
    namespace: options.namespace,
    labelSelector: options.labelSelector,
    fieldSelector: options.fieldSelector,
  });
  informer.addEventHandler({
    onAdd: (object, initial) => push({ type: "Added", object, initial }),
    onUpdate: (previous, object) => {
      // Resyncs and relists re-deliver unchanged objects; only changes are events here.
      if (previous.metadata.resourceVersion !== object.metadata.resourceVersion) {
        push({ type: "Updated", object, previous });
      }
    },
    onDelete: (object) => push({ type: "Deleted", object }),
  });
  const running = informer.start(stop.signal);
  try {
    for (;;) {
      let event = queue.shift();
      while (event) {
        yield event;
        event = queue.shift();
      }
      if (stop.signal.aborted) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = undefined;
    }
  } finally {
    stop.abort();
    options.signal?.removeEventListener("abort", onAbort);
    await running;
    own?.close();
  }
}
