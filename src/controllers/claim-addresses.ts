// The IPAddress of a published claim: what it must say (§8: the claim's name and namespace; address,
// prefix, gateway, claimRef, poolRef; owner references to the claim and the pool; the cluster-name
// label; ProtectAddress), creating it, putting a user's edit of its spec back, letting a deleted one go
// so that it is created again with the same address, and removing it when its claim is released.

import {
  CAPI_IPAM_API_VERSION,
  CLUSTER_NAME_LABEL,
  type IPAddress,
  type IPAddressClaim,
  PROTECT_ADDRESS_FINALIZER,
} from "../api/cluster-api.ts";
import { isPoolKind, type PoolRef } from "../api/pool-ref.ts";
import { API_VERSION } from "../api/types.ts";
import type { Cidr } from "../ipam/index.ts";
import { isAlreadyExists, objectKey } from "../runtime/kube.ts";

import type { ClaimDeps } from "./claim-ports.ts";

export interface AddressFacts {
  cidr: Cidr;
  /** The network prefix length reported with the address. */
  prefix: number;
  gateway: string | undefined;
  /** uid of the pool object (owner reference). */
  poolUid: string;
}

/** `ok`: the IPAddress stands as it must; `waiting`: a deleted one is going (its delete queues the claim). */
export type AddressOutcome = { kind: "ok" } | { kind: "waiting" } | { kind: "problem"; message: string };

export function desiredAddress(claim: IPAddressClaim, pool: PoolRef, facts: AddressFacts): IPAddress {
  const cluster = claim.metadata.labels?.[CLUSTER_NAME_LABEL];
  const name = claim.metadata.name ?? "";
  return {
    apiVersion: CAPI_IPAM_API_VERSION,
    kind: "IPAddress",
    metadata: {
      name,
      namespace: claim.metadata.namespace,
      ...(cluster !== undefined ? { labels: { [CLUSTER_NAME_LABEL]: cluster } } : {}),
      finalizers: [PROTECT_ADDRESS_FINALIZER],
      ownerReferences: [
        {
          apiVersion: CAPI_IPAM_API_VERSION,
          kind: "IPAddressClaim",
          name,
          uid: claim.metadata.uid ?? "",
          controller: true,
          blockOwnerDeletion: true,
        },
        { apiVersion: API_VERSION, kind: pool.kind, name: pool.name, uid: facts.poolUid },
      ],
    },
    spec: {
      address: facts.cidr.addressString(),
      prefix: facts.prefix,
      ...(facts.gateway ? { gateway: facts.gateway } : {}),
      claimRef: { name },
      poolRef: { ...claim.spec.poolRef },
    },
  };
}

/** Whether the IPAddress is this claim's (its controller owner is the claim, by uid). */
export function isAddressOf(address: IPAddress, claim: IPAddressClaim): boolean {
  return (address.metadata.ownerReferences ?? []).some(
    (o) => o.controller === true && o.kind === "IPAddressClaim" && o.uid === claim.metadata.uid,
  );
}

/** Whether kubipam made the IPAddress (only kubipam sets an owner reference to one of its pools). */
export function isKubipamAddress(address: IPAddress): boolean {
  return (address.metadata.ownerReferences ?? []).some(
    (o) => o.apiVersion === API_VERSION && isPoolKind(o.kind),
  );
}

function sameSpec(a: IPAddress["spec"], b: IPAddress["spec"]): boolean {
  return (
    a.address === b.address &&
    a.prefix === b.prefix &&
    (a.gateway ?? "") === (b.gateway ?? "") &&
    a.claimRef?.name === b.claimRef.name &&
    a.poolRef?.apiGroup === b.poolRef.apiGroup &&
    a.poolRef?.kind === b.poolRef.kind &&
    a.poolRef?.name === b.poolRef.name
  );
}

export class AddressKeeper {
  constructor(private readonly p: ClaimDeps) {}

  /** Makes the claim's IPAddress stand as `desired` says. */
  async ensure(claim: IPAddressClaim, desired: IPAddress): Promise<AddressOutcome> {
    const key = objectKey(claim);
    let address = this.p.addresses.get(key);
    if (!address) {
      try {
        await this.p.writer.createAddress(desired);
        return { kind: "ok" };
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
      }
      address = await this.p.writer.getAddress(claim.metadata.namespace ?? "", claim.metadata.name ?? "");
      if (!address) return { kind: "waiting" };
    }
    if (!isAddressOf(address, claim)) {
      return {
        kind: "problem",
        message: `IPAddress ${key} exists but does not belong to this claim: delete it, kubipam then creates the claim's own`,
      };
    }
    if (address.metadata.deletionTimestamp) {
      // Deleted while the claim lives: let it go; the claim's reconcile creates it again (same address).
      await this.p.writer.unprotectAddress(address);
      return { kind: "waiting" };
    }
    if (!sameSpec(address.spec, desired.spec)) await this.p.writer.patchAddressSpec(address, desired.spec);
    return { kind: "ok" };
  }

  /**
   * An IPAddress kubipam made whose claim is gone (its ReleaseAddress finalizer stripped by hand, so
   * no release ran) or is another object now (same name, new uid): it goes too, rather than staying
   * protected for ever with an address that is free again. Decided on a live read of the claim.
   */
  async removeOrphan(address: IPAddress): Promise<void> {
    if (!isKubipamAddress(address)) return;
    const claim = await this.p.writer.getClaim(address.metadata.namespace ?? "", address.metadata.name ?? "");
    if (claim && isAddressOf(address, claim)) return;
    await this.p.writer.unprotectAddress(address);
    await this.p.writer.deleteAddress(address);
  }

  /** Removes the claim's IPAddress (its finalizer first); resolves once it is deleted or was absent. */
  async remove(claim: IPAddressClaim): Promise<void> {
    const namespace = claim.metadata.namespace ?? "";
    const name = claim.metadata.name ?? "";
    // A live read: the cache may not show an IPAddress created just before the claim was deleted.
    const address = await this.p.writer.getAddress(namespace, name);
    if (!address || !isAddressOf(address, claim)) return;
    await this.p.writer.unprotectAddress(address);
    await this.p.writer.deleteAddress(address);
  }
}
