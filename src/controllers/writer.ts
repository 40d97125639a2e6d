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

  patchRequestStatus(request: IPAMRequest, status: IPAMRequestStatus): Promise<IPAMRequest> {
    // No resourceVersion: the CEL rule on status guards status.cidr, the rest is ours to set.
    return this.client.patchStatus<IPAMRequest>(
      ipamRequestResource,
      request.metadata.name ?? "",
      { status },
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

  /** Merge patch of the whole finalizer list, guarded by resourceVersion (409 if someone else changed it). */
  private async setFinalizer(
    type: typeof ipamRequestResource | typeof ipamRangeResource,
    object: Meta,
    present: boolean,
  ): Promise<void> {
    const current = object.metadata.finalizers ?? [];
    const next = present
      ? [...current.filter((f) => f !== FINALIZER), FINALIZER]
      : current.filter((f) => f !== FINALIZER);
    try {
      await this.client.patch(
        type,
        object.metadata.name ?? "",
        { metadata: { finalizers: next, resourceVersion: object.metadata.resourceVersion } },
        { namespace: object.metadata.namespace, patchType: "merge", fieldManager: FIELD_MANAGER },
      );
    } catch (err) {
      // Removing from an object that is already gone is done.
      if (!(present === false && isNotFound(err))) throw err;
    }
  }
}
