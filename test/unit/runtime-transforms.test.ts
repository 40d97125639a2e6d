// Informer transforms: what compactObjects keeps and drops, the bounded string interner, and the deep
// walk that shares strings (skipping values unique to an object).

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubeObject } from "../../src/runtime/kube.ts";
import {
  compactObjects,
  internStrings,
  LAST_APPLIED_ANNOTATION,
  StringInterner,
  SubtreeInterner,
  shareSubtrees,
  stripManagedFields,
} from "../../src/runtime/transforms.ts";

interface Thing extends KubeObject {
  spec?: { items: (string | { reason: string; uid: string })[]; note: string };
}

const thing = (): Thing => ({
  apiVersion: "example.org/v1",
  kind: "Thing",
  metadata: {
    name: "a",
    namespace: "ns",
    uid: "0b5e7c1e-1111-2222-3333-444455556666",
    resourceVersion: "42",
    annotations: { [LAST_APPLIED_ANNOTATION]: '{"kind":"Thing"}', keep: "me" },
    managedFields: [{ manager: "kubectl" }],
  },
  spec: { items: ["x", { reason: "Because", uid: "u-1" }], note: "n" },
});

describe("StringInterner", () => {
  it("keeps one entry per distinct string and returns an equal string", () => {
    const interner = new StringInterner(10);
    assert.equal(interner.intern("abc"), "abc");
    assert.equal(interner.intern(["a", "bc"].join("")), "abc");
    assert.equal(interner.size, 1);
    interner.intern("def");
    assert.equal(interner.size, 2);
  });

  it("starts afresh once full, so it never holds more than its bound", () => {
    const interner = new StringInterner(3);
    for (const s of ["a", "b", "c", "d", "e"]) interner.intern(s);
    assert.ok(interner.size <= 3, `size ${interner.size}`);
    assert.equal(interner.intern("e"), "e");
  });

  it("refuses a bound that is not a positive integer", () => {
    assert.throws(() => new StringInterner(0), /maxEntries must be a positive integer, not 0/);
  });
});

describe("internStrings", () => {
  it("passes every string value through the interner except those under skipped keys", () => {
    const interner = new StringInterner();
    const obj = thing();
    const before = structuredClone(obj);
    assert.equal(internStrings(obj, interner, new Set(["uid", "resourceVersion"])), obj);
    assert.deepEqual(obj, before, "values are unchanged");
    // apiVersion, kind, name, namespace, two annotation values, manager, "x", reason, note.
    assert.equal(interner.size, 10);
    for (const unique of ["0b5e7c1e-1111-2222-3333-444455556666", "42", "u-1"]) {
      const sizeBefore: number = interner.size;
      interner.intern(unique);
      assert.equal(interner.size, sizeBefore + 1, `${unique} was not interned`);
    }
  });
});

describe("compactObjects", () => {
  it("drops managedFields and the kubectl apply copy, and keeps everything else", () => {
    const compact = compactObjects<Thing>({ interner: new StringInterner() });
    const obj = compact(thing());
    assert.equal(obj.metadata.managedFields, undefined);
    assert.deepEqual(obj.metadata.annotations, { keep: "me" });
    assert.equal(obj.metadata.uid, "0b5e7c1e-1111-2222-3333-444455556666");
    assert.deepEqual(obj.spec, thing().spec);
  });

  it("removes the annotations map when nothing is left in it, and is idempotent", () => {
    const compact = compactObjects<Thing>();
    const obj = thing();
    obj.metadata.annotations = { [LAST_APPLIED_ANNOTATION]: "{}" };
    const once = compact(obj);
    assert.equal(once.metadata.annotations, undefined);
    const again = compact(structuredClone(once));
    assert.deepEqual(again, once);
  });

  it("drops only the annotations it is told to drop", () => {
    const compact = compactObjects<Thing>({ dropAnnotations: ["keep"] });
    const obj = compact(thing());
    assert.deepEqual(obj.metadata.annotations, { [LAST_APPLIED_ANNOTATION]: '{"kind":"Thing"}' });
  });

  it("stripManagedFields leaves objects without managedFields as they are", () => {
    const obj = thing();
    obj.metadata.managedFields = undefined;
    const before = structuredClone(obj);
    assert.deepEqual(stripManagedFields(obj), before);
  });
});

describe("SubtreeInterner and shareSubtrees", () => {
  const conditions = (time: string) => [
    { type: "Ready", status: "True", reason: "Allocated", lastTransitionTime: time },
  ];

  it("gives equal subtrees one frozen copy and keeps different ones apart", () => {
    const subtrees = new SubtreeInterner();
    const a = { status: { conditions: conditions("t1") }, spec: { ipam: { name: "pool" } } };
    const b = { status: { conditions: conditions("t1") }, spec: { ipam: { name: "pool" } } };
    const c = { status: { conditions: conditions("t2") }, spec: { ipam: { name: "other" } } };
    for (const o of [a, b, c]) shareSubtrees(o, subtrees, ["spec", "status.conditions", "metadata.labels"]);
    assert.equal(a.status.conditions, b.status.conditions, "equal lists are one object");
    assert.equal(a.spec, b.spec);
    assert.notEqual(a.status.conditions, c.status.conditions);
    assert.deepEqual(c.status.conditions, conditions("t2"), "values are unchanged");
    assert.equal(subtrees.size, 4);
    assert.ok(Object.isFrozen(a.spec) && Object.isFrozen(a.spec.ipam), "frozen all the way down");
    assert.ok(Object.isFrozen(a.status.conditions[0]));
    assert.throws(() => {
      (a.spec.ipam as { name: string }).name = "changed";
    }, TypeError);
  });

  it("leaves missing paths and primitives alone, and is bounded", () => {
    const subtrees = new SubtreeInterner(2);
    const o: { spec: { size: number }; status?: unknown } = { spec: { size: 3 } };
    shareSubtrees(o, subtrees, ["status.conditions", "spec.size", "metadata.labels"]);
    assert.deepEqual(o, { spec: { size: 3 } });
    assert.equal(subtrees.size, 0);
    for (const n of [1, 2, 3]) subtrees.share({ n });
    assert.ok(subtrees.size <= 2, `size ${subtrees.size}`);
    assert.throws(() => new SubtreeInterner(-1), /maxEntries must be a positive integer, not -1/);
  });

  it("compactObjects shares subtrees after the strings, and shared parts are not walked again", () => {
    const strings = new StringInterner();
    const subtrees = new SubtreeInterner();
    const compact = compactObjects<Thing>({ interner: strings, subtrees, sharedPaths: ["spec"] });
    const first = compact(thing());
    const sizeAfterFirst: number = strings.size;
    const second = compact(thing());
    assert.equal(first.spec, second.spec);
    assert.ok(Object.isFrozen(second.spec));
    assert.equal(strings.size, sizeAfterFirst, "the second object added no new strings");
    assert.deepEqual(compact(structuredClone(second)), second, "idempotent");
  });
});
