// What the UI knows of the cluster: ranges of both kinds, records, requests and claims, indexed by the
// range they concern, fed by the informers (watch.ts). It answers the page's reads (view-data.ts over
// a cached PoolModel per range) and tells subscribers which ranges changed, a batch at a time.

import { poolKey, poolOfObject, RANGE_KIND } from "../../api/pool-ref.ts";
import type { IPAMAllocation, IPAMRequest } from "../../api/types.ts";
import {
  CLAIM_KIND,
  type ClaimObject,
  type HolderRef,
  type RangeObject,
  rangeKeyOfClaim,
  rangeKeyOfRecord,
  rangeKeyOfRequest,
} from "./objects.ts";
import { type PoolModel, poolModel } from "./pool-model.ts";
import { parseViewBlock, type RangeSummary, type RangeView, rangeSummary, rangeView } from "./view-data.ts";

/** Objects of one type by `namespace/name`, and their keys by the range they concern. */
class RangeIndex<T extends { metadata: { namespace?: string; name?: string } }> {
  readonly byKey = new Map<string, T>();
  private readonly rangeOf = new Map<string, string>();
  private readonly byRange = new Map<string, Set<string>>();

  constructor(private readonly rangeKeyOf: (object: T) => string | undefined) {}

  /** Stores `object`; returns the ranges it concerned before and now. */
  put(object: T): string[] {
    const key = `${object.metadata.namespace ?? ""}/${object.metadata.name ?? ""}`;
    const before = this.remove(key);
    this.byKey.set(key, object);
    const range = this.rangeKeyOf(object);
    if (range === undefined) return before;
    this.rangeOf.set(key, range);
    const keys = this.byRange.get(range) ?? new Set<string>();
    this.byRange.set(range, keys);
    keys.add(key);
    return [...before, range];
  }

  delete(object: T): string[] {
    return this.remove(`${object.metadata.namespace ?? ""}/${object.metadata.name ?? ""}`);
  }

  of(range: string): T[] {
    return [...(this.byRange.get(range) ?? [])].map((key) => this.byKey.get(key)!);
  }

  private remove(key: string): string[] {
    this.byKey.delete(key);
    const range = this.rangeOf.get(key);
    if (range === undefined) return [];
    this.rangeOf.delete(key);
    const keys = this.byRange.get(range);
    keys?.delete(key);
    if (keys?.size === 0) this.byRange.delete(range);
    return [range];
  }
}

export type ChangeListener = (rangeKeys: string[]) => void;

export type ViewResult = { ok: true; view: RangeView } | { ok: false; status: number; message: string };

export class ClusterState {
  private readonly ranges = new Map<string, RangeObject>();
  private readonly records = new RangeIndex<IPAMAllocation>(rangeKeyOfRecord);
  private readonly requests = new RangeIndex<IPAMRequest>(rangeKeyOfRequest);
  private readonly claims = new RangeIndex<ClaimObject>(rangeKeyOfClaim);
  private readonly models = new Map<string, PoolModel>();
  /** Views already computed, by range and block, until that range changes (pages read the same view). */
  private readonly views = new Map<string, Map<string, ViewResult>>();
  private readonly listeners = new Set<ChangeListener>();
  private readonly pending = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  /** Problems reading the cluster, by source (shown on the page). */
  readonly warnings = new Map<string, string>();

  /** @param batchMs changes within this time reach subscribers as one batch. */
  constructor(private readonly batchMs = 50) {}

  putRange(range: RangeObject): void {
    const key = poolKey(poolOfObject(range));
    this.changed([key]);
    this.ranges.set(key, range);
  }
  deleteRange(range: RangeObject): void {
    const key = poolKey(poolOfObject(range));
    this.changed([key]);
    this.ranges.delete(key);
  }
  putRecord(record: IPAMAllocation): void {
    this.changed(this.records.put(record));
  }
  deleteRecord(record: IPAMAllocation): void {
    this.changed(this.records.delete(record));
  }
  putRequest(request: IPAMRequest): void {
    this.changed(this.requests.put(request));
  }
  deleteRequest(request: IPAMRequest): void {
    this.changed(this.requests.delete(request));
  }
  putClaim(claim: ClaimObject): void {
    this.changed(this.claims.put(claim));
  }
  deleteClaim(claim: ClaimObject): void {
    this.changed(this.claims.delete(claim));
  }

  setWarning(source: string, message: string | undefined): void {
    if (message === undefined ? !this.warnings.has(source) : this.warnings.get(source) === message) return;
    if (message === undefined) this.warnings.delete(source);
    else this.warnings.set(source, message);
    this.changed([""]);
  }

  /** Calls `listener` with the keys of the ranges that changed ("" for warnings); returns unsubscribe. */
  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Every range, by kind (IPAMRange first), namespace and name. */
  summaries(): RangeSummary[] {
    return [...this.ranges.keys()]
      .map((key) => rangeSummary(this.model(key)!))
      .sort(
        (a, b) =>
          Number(a.kind !== RANGE_KIND) - Number(b.kind !== RANGE_KIND) ||
          a.namespace.localeCompare(b.namespace) ||
          a.name.localeCompare(b.name),
      );
  }

  /** One range's map: `range` is `namespace/name` or a ClusterIPAMRange's name; `block` zooms in. */
  view(range: string, block: string | undefined): ViewResult {
    const cached = this.views.get(range)?.get(block ?? "");
    if (cached) return cached;
    const result = this.computeView(range, block);
    const byBlock = this.views.get(range) ?? new Map<string, ViewResult>();
    this.views.set(range, byBlock);
    // A few zoom levels per range are worth keeping; any block a URL names is not.
    if (byBlock.size >= 8) byBlock.clear();
    byBlock.set(block ?? "", result);
    return result;
  }

  private computeView(range: string, block: string | undefined): ViewResult {
    const model = this.model(range);
    if (!model) {
      const what = range.includes("/") ? `IPAMRange ${range}` : `ClusterIPAMRange ${range}`;
      return {
        ok: false,
        status: 404,
        message: `${what} not found (or not visible with the chosen namespace)`,
      };
    }
    const view = parseViewBlock(model, block);
    if (typeof view === "string") return { ok: false, status: 400, message: view };
    const waiting: HolderRef[] = [
      ...this.requests.of(range).map((r) => ({ kind: "IPAMRequest" as const, ...refOf(r) })),
      ...this.claims.of(range).map((c) => ({ kind: CLAIM_KIND as typeof CLAIM_KIND, ...refOf(c) })),
    ];
    const objects = { requests: this.requests.byKey, claims: this.claims.byKey, waiting };
    return { ok: true, view: rangeView(model, objects, view) };
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.listeners.clear();
  }

  private model(key: string): PoolModel | undefined {
    const range = this.ranges.get(key);
    if (!range) return undefined;
    let model = this.models.get(key);
    if (!model) {
      model = poolModel(range, this.records.of(key));
      this.models.set(key, model);
    }
    return model;
  }

  private changed(keys: string[]): void {
    for (const key of keys) {
      this.models.delete(key);
      if (key === "") this.views.clear();
      else this.views.delete(key);
      this.pending.add(key);
    }
    if (keys.length === 0 || this.timer || this.listeners.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const batch = [...this.pending];
      this.pending.clear();
      for (const listener of [...this.listeners]) listener(batch);
    }, this.batchMs);
  }
}

function refOf(object: { metadata: { namespace?: string; name?: string } }): {
  namespace: string;
  name: string;
} {
  return { namespace: object.metadata.namespace ?? "", name: object.metadata.name ?? "" };
}
