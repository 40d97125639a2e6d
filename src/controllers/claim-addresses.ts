// The IPAddress of a published claim: what it must say (§8: the claim's name and namespace; address,
// prefix, gateway, claimRef, poolRef; owner references to the claim and the pool; the cluster-name
// label; ProtectAddress), creating it, putting a user's edit of its spec or of kubipam's metadata back, letting a deleted one go
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

import type { AddressMetadataRepair, ClaimDeps } from "./claim-ports.ts";

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

type OwnerReference = NonNullable<IPAddress["metadata"]["ownerReferences"]>[number];

function sameOwner(a: OwnerReference, b: OwnerReference): boolean {
  return (
    a.uid === b.uid &&
    a.kind === b.kind &&
    a.name === b.name &&
    a.apiVersion === b.apiVersion &&
    (a.controller ?? false) === (b.controller ?? false) &&
    (a.blockOwnerDeletion ?? false) === (b.blockOwnerDeletion ?? false)
  );
}

/**
 * The metadata kubipam keeps on the IPAddress (§8): ProtectAddress, the cluster-name label as the
 * claim has it, and the owner references to the claim and the pool. Others' finalizers, labels and
 * (non-controller) owner references stay. Undefined when nothing is to be put back.
 */
export function metadataRepair(address: IPAddress, desired: IPAddress): AddressMetadataRepair | undefined {
  const repair: AddressMetadataRepair = {};
  const finalizers = address.metadata.finalizers ?? [];
  if (!finalizers.includes(PROTECT_ADDRESS_FINALIZER)) {
    repair.finalizers = [...finalizers, PROTECT_ADDRESS_FINALIZER];
  }
  const want = desired.metadata.labels?.[CLUSTER_NAME_LABEL];
  if (address.metadata.labels?.[CLUSTER_NAME_LABEL] !== want) repair.clusterName = want ?? null;
  const owners = address.metadata.ownerReferences ?? [];
  const wanted = desired.metadata.ownerReferences ?? [];
  if (!wanted.every((w) => owners.some((o) => sameOwner(o, w)))) {
    const others = owners.filter((o) => o.controller !== true && !wanted.some((w) => w.uid === o.uid));
    repair.ownerReferences = [...wanted, ...others];
  }
  return Object.keys(repair).length > 0 ? repair : undefined;
}

/**
 * Whether an IPAddress with no controller owner (its owner references removed by hand) is this
 * claim's: it names the claim and carries the address kubipam holds for it.
 */
function isStrippedAddressOf(address: IPAddress, claim: IPAddressClaim, desired: IPAddress): boolean {
  const controlled = (address.metadata.ownerReferences ?? []).some((o) => o.controller === true);
  return (
    !controlled &&
    address.spec.claimRef?.name === claim.metadata.name &&
    address.spec.address === desired.spec.address
  );
}

export class AddressKeeper {
  constructor(private readonly p: ClaimDeps) {}

  /** Makes the claim's IPAddress stand as `desired` says. */
  async ensure(claim: IPAddressClaim, desired: IPAddress): Promise<AddressOutcome> {
    const key = objectKey(claim);
    const address = this.p.addresses.get(key) ?? (await this.createOrRead(claim, desired));
    if (address === "created") return { kind: "ok" };
    if (!address) return { kind: "waiting" };
    if (!isAddressOf(address, claim) && !isStrippedAddressOf(address, claim, desired)) {
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
    const metadata = metadataRepair(address, desired);
    if (metadata || !sameSpec(address.spec, desired.spec)) {
      // One write, conditional on the resourceVersion seen: a newer edit is looked at again (409).
      await this.p.writer.repairAddress(address, desired.spec, metadata ?? {});
    }
    return { kind: "ok" };
  }

  /** Creates the IPAddress; when it exists already (a cache behind), reads it instead. */
  private async createOrRead(
    claim: IPAddressClaim,
    desired: IPAddress,
  ): Promise<IPAddress | "created" | undefined> {
    try {
      await this.p.writer.createAddress(desired);
      return "created";
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
    return this.p.writer.getAddress(claim.metadata.namespace ?? "", claim.metadata.name ?? "");
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
