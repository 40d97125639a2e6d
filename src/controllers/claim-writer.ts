// ClaimWriter over the runtime's KubeClient: claim status and finalizer, IPAddress create, repair,
// unprotect and delete. Deletes and finalizer removals name the exact object (uid), never a namesake.

import {
  CLUSTER_NAME_LABEL,
  type IPAddress,
  type IPAddressClaim,
  type IPAddressClaimStatus,
  ipAddressClaimResource,
  ipAddressResource,
  PROTECT_ADDRESS_FINALIZER,
  RELEASE_ADDRESS_FINALIZER,
} from "../api/cluster-api.ts";
import { addFinalizer, removeFinalizer } from "../runtime/finalizers.ts";
import { isNotFound, type KubeClient } from "../runtime/kube.ts";
import type { AddressMetadataRepair, ClaimWriter } from "./claim-ports.ts";
import { FIELD_MANAGER } from "./writer.ts";

export class KubeClaimWriter implements ClaimWriter {
  constructor(private readonly client: KubeClient) {}

  async getClaim(namespace: string, name: string): Promise<IPAddressClaim | undefined> {
    try {
      return await this.client.get<IPAddressClaim>(ipAddressClaimResource, name, { namespace });
    } catch (err) {
      // Also when Cluster API's CRDs are not (or no longer) installed: then no claim exists.
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  patchClaimStatus(
    claim: IPAddressClaim,
    status: IPAddressClaimStatus,
    resourceVersion: string | undefined,
  ): Promise<IPAddressClaim> {
    return this.client.patchStatus<IPAddressClaim>(
      ipAddressClaimResource,
      claim.metadata.name ?? "",
      { metadata: { resourceVersion: resourceVersion ?? claim.metadata.resourceVersion }, status },
      { namespace: claim.metadata.namespace, patchType: "merge", fieldManager: FIELD_MANAGER },
    );
  }

  async setClaimFinalizer(claim: IPAddressClaim, present: boolean): Promise<IPAddressClaim | undefined> {
    const opts = { fieldManager: FIELD_MANAGER };
    return present
      ? addFinalizer(this.client, ipAddressClaimResource, claim, RELEASE_ADDRESS_FINALIZER, opts)
      : removeFinalizer(this.client, ipAddressClaimResource, claim, RELEASE_ADDRESS_FINALIZER, opts);
  }

  createAddress(address: IPAddress): Promise<IPAddress> {
    return this.client.create(ipAddressResource, address, { fieldManager: FIELD_MANAGER });
  }

  async getAddress(namespace: string, name: string): Promise<IPAddress | undefined> {
    try {
      return await this.client.get<IPAddress>(ipAddressResource, name, { namespace });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async repairAddress(
    address: IPAddress,
    spec: IPAddress["spec"],
    repair: AddressMetadataRepair,
  ): Promise<void> {
    const metadata: Record<string, unknown> = { resourceVersion: address.metadata.resourceVersion };
    if (repair.finalizers) metadata.finalizers = repair.finalizers;
    if (repair.ownerReferences) metadata.ownerReferences = repair.ownerReferences;
    if (repair.clusterName !== undefined) metadata.labels = { [CLUSTER_NAME_LABEL]: repair.clusterName };
    // A merge patch: a gateway the user added is removed (null), lists are replaced as a whole.
    const patchSpec = { ...spec, gateway: spec.gateway ?? null };
    await this.client.patch(
      ipAddressResource,
      address.metadata.name ?? "",
      { metadata, spec: patchSpec },
      { namespace: address.metadata.namespace, patchType: "merge", fieldManager: FIELD_MANAGER },
    );
  }

  async unprotectAddress(address: IPAddress): Promise<void> {
    const index = address.metadata.finalizers?.indexOf(PROTECT_ADDRESS_FINALIZER) ?? -1;
    if (index < 0) return;
    try {
      await this.client.patch(
        ipAddressResource,
        address.metadata.name ?? "",
        [
          { op: "test", path: "/metadata/uid", value: address.metadata.uid ?? "" },
          { op: "test", path: `/metadata/finalizers/${index}`, value: PROTECT_ADDRESS_FINALIZER },
          { op: "remove", path: `/metadata/finalizers/${index}` },
        ],
        { namespace: address.metadata.namespace, patchType: "json", fieldManager: FIELD_MANAGER },
      );
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async deleteAddress(address: IPAddress): Promise<void> {
    try {
      await this.client.delete(ipAddressResource, address.metadata.name ?? "", {
        namespace: address.metadata.namespace,
        preconditions: { uid: address.metadata.uid ?? "" },
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}
