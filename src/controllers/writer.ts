// IpamWriter over the runtime's KubeClient.

import {
  FINALIZER,
  type IPAMAllocation,
  type IPAMRange,
  type IPAMRangeStatus,
  type IPAMRequest,
  type IPAMRequestStatus,
  ipamAllocationResource,
  ipamRangeResource,
  ipamRequestResource,
} from "../api/types.ts";
import { isNotFound, type KubeClient } from "../runtime/kube.ts";
import type { IpamWriter } from "./ports.ts";

export const FIELD_MANAGER = "kubipam";

type Meta = {
  metadata: { name?: string; namespace?: string; resourceVersion?: string; finalizers?: string[] };
};

export class KubeIpamWriter implements IpamWriter {
  constructor(private readonly client: KubeClient) {}

  createAllocation(allocation: IPAMAllocation): Promise<IPAMAllocation> {
    return this.client.create(ipamAllocationResource, allocation, { fieldManager: FIELD_MANAGER });
  }

  async getAllocation(namespace: string, name: string): Promise<IPAMAllocation | undefined> {
    try {
      return await this.client.get<IPAMAllocation>(ipamAllocationResource, name, { namespace });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async deleteAllocation(namespace: string, name: string, uid?: string): Promise<void> {
    try {
      await this.client.delete(ipamAllocationResource, name, {
        namespace,
        ...(uid ? { preconditions: { uid } } : {}),
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async getRequest(namespace: string, name: string): Promise<IPAMRequest | undefined> {
    try {
      return await this.client.get<IPAMRequest>(ipamRequestResource, name, { namespace });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  patchRequestStatus(
    request: IPAMRequest,
    status: IPAMRequestStatus,
    resourceVersion?: string,
  ): Promise<IPAMRequest> {
    // Normally no resourceVersion: the CEL rule on status guards status.cidr, the rest is ours to set.
    return this.client.patchStatus<IPAMRequest>(
      ipamRequestResource,
      request.metadata.name ?? "",
      resourceVersion ? { metadata: { resourceVersion }, status } : { status },
      { namespace: request.metadata.namespace, patchType: "merge", fieldManager: FIELD_MANAGER },
    );
  }

  async setRequestFinalizer(request: IPAMRequest, present: boolean): Promise<void> {
    await this.setFinalizer(ipamRequestResource, request, present);
  }

  async setRangeFinalizer(range: IPAMRange, present: boolean): Promise<void> {
    await this.setFinalizer(ipamRangeResource, range, present);
  }

  async patchRangeStatus(range: IPAMRange, status: IPAMRangeStatus): Promise<void> {
    await this.client.patchStatus(
      ipamRangeResource,
      range.metadata.name ?? "",
      { status },
      { namespace: range.metadata.namespace, patchType: "merge", fieldManager: FIELD_MANAGER },
    );
  }

  /**
   * Adds with server-side apply (finalizers are a set: no conflict with concurrent writers, nobody
   * else's entry is touched); removes with a JSON patch that tests the entry at its index. Neither
   * depends on resourceVersion, which every status write bumps.
   */
  private async setFinalizer(
    type: typeof ipamRequestResource | typeof ipamRangeResource,
    object: Meta,
    present: boolean,
  ): Promise<void> {
    const name = object.metadata.name ?? "";
    const namespace = object.metadata.namespace;
    if (present) {
      await this.client.patch(
        type,
        name,
        {
          apiVersion: `${type.group}/${type.version}`,
          kind: type.kind,
          metadata: { name, namespace, finalizers: [FINALIZER] },
        },
        { namespace, patchType: "apply", fieldManager: FIELD_MANAGER, force: true },
      );
      return;
    }
    const index = (object.metadata.finalizers ?? []).indexOf(FINALIZER);
    if (index < 0) return;
    try {
      await this.client.patch(
        type,
        name,
        [
          { op: "test", path: `/metadata/finalizers/${index}`, value: FINALIZER },
          { op: "remove", path: `/metadata/finalizers/${index}` },
        ],
        { namespace, patchType: "json", fieldManager: FIELD_MANAGER },
      );
    } catch (err) {
      // Removing from an object that is already gone is done.
      if (!isNotFound(err)) throw err;
    }
  }
}
