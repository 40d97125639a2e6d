// IpamWriter over the runtime's KubeClient.

import {
  ALLOCATION_FINALIZER,
  clusterIpamRangeResource,
  FINALIZER,
  type IPAMAllocation,
  type IPAMRangeStatus,
  type IPAMRequest,
  type IPAMRequestStatus,
  ipamAllocationResource,
  ipamRangeResource,
  ipamRequestResource,
  type RangeObject,
} from "../api/types.ts";
import { addFinalizer, removeFinalizer } from "../runtime/finalizers.ts";
import { isNotFound, type KubeClient } from "../runtime/kube.ts";
import type { IpamWriter } from "./ports.ts";

export const FIELD_MANAGER = "kubipam";

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
    let marked: IPAMAllocation | undefined;
    try {
      marked = await this.client.delete<IPAMAllocation>(ipamAllocationResource, name, {
        namespace,
        ...(uid ? { preconditions: { uid } } : {}),
      });
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    // With kubipam's finalizer the delete only marked the record; removing the finalizer completes it.
    const index = marked?.metadata.finalizers?.indexOf(ALLOCATION_FINALIZER) ?? -1;
    if (!marked || index < 0) return;
    try {
      await this.client.patch(
        ipamAllocationResource,
        name,
        [
          // Exactly the object just marked: never a record re-created under the same name meanwhile.
          { op: "test", path: "/metadata/uid", value: marked.metadata.uid ?? "" },
          { op: "test", path: `/metadata/finalizers/${index}`, value: ALLOCATION_FINALIZER },
          { op: "remove", path: `/metadata/finalizers/${index}` },
        ],
        { namespace, patchType: "json", fieldManager: FIELD_MANAGER },
      );
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
    // A merge patch keeps what it leaves out: a status without a state clears the one written before.
    const body = { ...status, state: status.state ?? null };
    return this.client.patchStatus<IPAMRequest>(
      ipamRequestResource,
      request.metadata.name ?? "",
      resourceVersion ? { metadata: { resourceVersion }, status: body } : { status: body },
      { namespace: request.metadata.namespace, patchType: "merge", fieldManager: FIELD_MANAGER },
    );
  }

  async setRequestFinalizer(request: IPAMRequest, present: boolean): Promise<string | undefined> {
    return this.setFinalizer(ipamRequestResource, request, present);
  }

  async setRangeFinalizer(range: RangeObject, present: boolean): Promise<void> {
    await this.setFinalizer(rangeResource(range), range, present);
  }

  async patchRangeStatus(range: RangeObject, status: IPAMRangeStatus): Promise<void> {
    await this.client.patchStatus(
      rangeResource(range),
      range.metadata.name ?? "",
      { status },
      { namespace: range.metadata.namespace, patchType: "merge", fieldManager: FIELD_MANAGER },
    );
  }

  /** Returns the object's resourceVersion after the change (undefined once it is gone). */
  private async setFinalizer(
    type: typeof ipamRequestResource | typeof ipamRangeResource | typeof clusterIpamRangeResource,
    object: IPAMRequest | RangeObject,
    present: boolean,
  ): Promise<string | undefined> {
    const updated = present
      ? await addFinalizer(this.client, type, object, FINALIZER, { fieldManager: FIELD_MANAGER })
      : await removeFinalizer(this.client, type, object, FINALIZER, { fieldManager: FIELD_MANAGER });
    return updated?.metadata.resourceVersion;
  }
}

function rangeResource(range: RangeObject): typeof ipamRangeResource | typeof clusterIpamRangeResource {
  return range.kind === "ClusterIPAMRange" ? clusterIpamRangeResource : ipamRangeResource;
}
