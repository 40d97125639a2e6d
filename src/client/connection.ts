// Which KubeClient a call uses: the caller's, or one made from the kubeconfig chain for this call only.

import { KubeClient, type KubeClientOptions, loadKubeConfig } from "../runtime/kube.ts";

export interface ConnectionOptions {
  /** A client you already have (see `connect`); it is used as is and left open. */
  client?: KubeClient;
  /** Without `client`: this kubeconfig file instead of the default chain. */
  kubeconfig?: string;
  /** Without `client`: this kubeconfig context instead of the current one. */
  context?: string;
}

export interface ConnectOptions extends KubeClientOptions {
  /** A kubeconfig file; default: KUBECONFIG, then ~/.kube/config, then the in-cluster account. */
  kubeconfig?: string;
  context?: string;
}

/**
 * A client for the cluster your kubeconfig names — the chain kubectl uses (KUBECONFIG, ~/.kube/config,
 * in-cluster service account). Close it with `client.close()` when done.
 */
export async function connect(options: ConnectOptions = {}): Promise<KubeClient> {
  const { kubeconfig, context, ...clientOptions } = options;
  const kc = await loadKubeConfig(kubeconfig, context);
  return new KubeClient(kc, { userAgent: "kubipam-client/0.1.0", ...clientOptions });
}

/** Runs `fn` with the caller's client, or with one made (and closed afterwards) for this call. */
export async function withClient<R>(
  o: ConnectionOptions,
  fn: (client: KubeClient) => Promise<R>,
): Promise<R> {
  if (o.client) return fn(o.client);
  const client = await connect({ kubeconfig: o.kubeconfig, context: o.context });
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}
