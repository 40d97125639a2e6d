// CustomResourceDefinitions of kubipam, the one source of the manifests in deploy/ and of what the
// tests install. The schema rejects what admission can check cheaply (types, enums, bounds, obvious
// typos through the API server's CEL IP/CIDR library); the controller validates everything again and
// reports the contract's messages for whatever gets through.

import { stringify } from "yaml";
import { GROUP, MAX_COOLDOWN_SECONDS, VERSION } from "./types.ts";

export type JsonSchema = { [key: string]: unknown };

/** Longest range entry: two fully spelled IPv6 addresses with embedded IPv4 and a dash. */
const MAX_ENTRY_LENGTH = 100;
export const MAX_RANGE_ENTRIES = 1024;

const conditionsSchema: JsonSchema = {
  type: "array",
  maxItems: 16,
  "x-kubernetes-list-type": "map",
  "x-kubernetes-list-map-keys": ["type"],
  items: {
    type: "object",
    required: ["type", "status", "reason", "lastTransitionTime"],
    properties: {
      type: { type: "string", maxLength: 316 },
      status: { type: "string", enum: ["True", "False", "Unknown"] },
      reason: { type: "string", maxLength: 1024 },
      message: { type: "string", maxLength: 32768 },
      lastTransitionTime: { type: "string", format: "date-time" },
      observedGeneration: { type: "integer", format: "int64", minimum: 0 },
    },
  },
};

const decimal = (description: string): JsonSchema => ({ type: "string", maxLength: 40, description });

// An entry is a CIDR, an IP or `<ip>-<ip>`. IPv4-mapped IPv6 spellings (::ffff:a.b.c.d) count as IPv4
// in kubipam but are refused by the CEL IP library, so those are left to the controller.
const rangeEntryRule =
  "self.lowerAscii().contains('::ffff:') || " +
  "(self.contains('-') ? (self.split('-').size() == 2 && isIP(self.split('-')[0]) && isIP(self.split('-')[1])) : " +
  "(self.contains('/') ? isCIDR(self) : isIP(self)))";

/** An entry-list item in the §2 grammar, checked by the API server with `what` in its message. */
function entryItems(what: string): JsonSchema {
  return {
    type: "string",
    maxLength: MAX_ENTRY_LENGTH,
    "x-kubernetes-validations": [
      {
        rule: rangeEntryRule,
        // Used when the expression cannot render the entry (a line break in it, say).
        message: "each entry must be a CIDR (10.0.0.0/16), an IP (10.0.0.1) or a range (10.0.0.1-10.0.0.9)",
        messageExpression: `'invalid ${what} "' + self + '": use a CIDR (10.0.0.0/16), an IP (10.0.0.1) or a range (10.0.0.1-10.0.0.9)'`,
      },
    ],
  };
}

/**
 * The spec properties every range kind shares (IPAMRange; ClusterIPAMRange adds its own consent field
 * instead of allowedNamespaces). One builder, so the kinds cannot drift apart.
 */
export function rangeSpecProperties(): Record<string, JsonSchema> {
  return {
    ranges: {
      type: "array",
      maxItems: MAX_RANGE_ENTRIES,
      description: "CIDRs, inclusive ranges <ip>-<ip> and single IPs of one family forming the pool.",
      items: entryItems("ip range"),
    },
    chunkSize: {
      type: "integer",
      minimum: 0,
      maximum: 128,
      description: "Prefix length given to requests that specify no size.",
    },
    mode: {
      type: "string",
      enum: ["FirstMatch", "RoundRobin"],
      default: "FirstMatch",
      description: "FirstMatch: best fit, lowest address. RoundRobin: continue after the last allocation.",
    },
    exclude: {
      type: "array",
      maxItems: MAX_RANGE_ENTRIES,
      description:
        "CIDRs, ranges <ip>-<ip> and IPs of the range's family that are never handed out (not even to an explicit request).",
      items: entryItems("exclude entry"),
    },
    gateway: {
      type: "string",
      maxLength: MAX_ENTRY_LENGTH,
      description: "The network's gateway: never handed out; reported to Cluster API address claims.",
      "x-kubernetes-validations": [
        {
          rule: "self.lowerAscii().contains('::ffff:') || isIP(self)",
          message: "gateway must be one IP (10.0.0.1 or fd00::1)",
          messageExpression: "'invalid gateway \"' + self + '\": use one IP (10.0.0.1 or fd00::1)'",
        },
      ],
    },
    prefix: {
      type: "integer",
      minimum: 0,
      maximum: 128,
      description:
        "Prefix length of the network, reported with addresses given to Cluster API claims; default: the prefix of spec.ranges when it is exactly one CIDR.",
    },
    reuseCooldownSeconds: {
      type: "integer",
      minimum: 0,
      maximum: MAX_COOLDOWN_SECONDS,
      description:
        "Seconds a released block is kept from automatic allocation (an explicit request may take it at once). Default 0.",
    },
  };
}

/** The status properties every range kind shares (state, usage, persisted cursors and cooldowns). */
export function rangeStatusProperties(): Record<string, JsonSchema> {
  return {
    state: { type: "string", enum: ["Ready", "Invalid", "Deleting"] },
    message: { type: "string" },
    roundRobin: { type: "array", items: { type: "string", maxLength: 64 } },
    observedGeneration: { type: "integer", format: "int64" },
    conditions: conditionsSchema,
    size: decimal("Addresses in the pool."),
    allocated: decimal("Addresses allocated."),
    free: decimal("Addresses free now (not allocated, excluded or cooling down)."),
    excludedAddresses: decimal("Excluded addresses (exclude entries and gateway) not under an allocation."),
    coolingAddresses: decimal("Addresses released and cooling down (spec.reuseCooldownSeconds)."),
    pendingRemovals: { type: "array", items: { type: "string", maxLength: 64 } },
    cooling: {
      type: "array",
      description: "Released blocks cooling down, as <cidr>@<end time>; kept across controller restarts.",
      items: { type: "string", maxLength: 96 },
    },
  };
}

/**
 * The root of every kind's schema: spec required (without it, removing spec as a whole would bypass
 * the rules that live inside spec), root rules if any, then apiVersion/kind/metadata, spec, status.
 */
function objectSchema(o: { spec: JsonSchema; status?: JsonSchema; rules?: JsonSchema[] }): JsonSchema {
  return {
    type: "object",
    required: ["spec"],
    ...(o.rules ? { "x-kubernetes-validations": o.rules } : {}),
    properties: {
      apiVersion: { type: "string" },
      kind: { type: "string" },
      metadata: { type: "object" },
      spec: o.spec,
      ...(o.status ? { status: o.status } : {}),
    },
  };
}

/**
 * The schema of a range of either kind: the spec and status of the shared builders (so every field
 * added there is in both), plus the spec fields of that kind alone.
 */
function rangeSchema(ownSpecProperties: Record<string, JsonSchema>): JsonSchema {
  return objectSchema({
    spec: {
      type: "object",
      required: ["ranges"],
      properties: { ...rangeSpecProperties(), ...ownSpecProperties },
    },
    status: { type: "object", properties: rangeStatusProperties() },
  });
}

const ipamRangeSchema = rangeSchema({
  allowedNamespaces: {
    type: "array",
    maxItems: 256,
    items: { type: "string", maxLength: 63 },
    description: 'Other namespaces whose requests may use this range; "*" allows every namespace.',
  },
});

const labelSelectorSchema: JsonSchema = {
  type: "object",
  description:
    "Namespaces whose requests may use this range (a standard label selector; absent: every namespace).",
  "x-kubernetes-map-type": "atomic",
  properties: {
    matchLabels: { type: "object", additionalProperties: { type: "string" } },
    matchExpressions: {
      type: "array",
      items: {
        type: "object",
        required: ["key", "operator"],
        properties: {
          key: { type: "string" },
          operator: { type: "string", enum: ["In", "NotIn", "Exists", "DoesNotExist"] },
          values: { type: "array", items: { type: "string" }, "x-kubernetes-list-type": "atomic" },
        },
      },
      "x-kubernetes-list-type": "atomic",
    },
  },
};

/** ClusterIPAMRange: an IPAMRange's spec and status, with namespaceSelector in place of allowedNamespaces. */
const clusterRangeSchema = rangeSchema({ namespaceSelector: labelSelectorSchema });

const ipamRequestSchema = objectSchema({
  // On the root, not on status: a rule on status does not run when status is removed as a whole.
  rules: [
    {
      rule:
        "!has(oldSelf.status) || !has(oldSelf.status.cidr) || oldSelf.status.cidr == '' || " +
        "(has(self.status) && has(self.status.cidr) && self.status.cidr == oldSelf.status.cidr)",
      message: "status.cidr never changes once allocated (not even by removing status)",
    },
  ],
  spec: {
    type: "object",
    required: ["ipam"],
    "x-kubernetes-validations": [
      { rule: "self == oldSelf", message: "spec is immutable: delete the request and create a new one" },
    ],
    properties: {
      ipam: {
        type: "object",
        description:
          "The range to allocate from: an IPAMRange (kind absent or IPAMRange; namespace defaults to the request's) or a ClusterIPAMRange (no namespace).",
        "x-kubernetes-validations": [
          {
            rule: "!has(self.kind) || self.kind != 'ClusterIPAMRange' || !has(self.namespace) || self.namespace == ''",
            message: "spec.ipam.namespace must be empty for a ClusterIPAMRange (it is cluster-scoped)",
          },
        ],
        properties: {
          kind: { type: "string", enum: ["IPAMRange", "ClusterIPAMRange"] },
          name: { type: "string", maxLength: 253 },
          namespace: { type: "string", maxLength: 63 },
        },
      },
      size: { type: "integer", minimum: 0, maximum: 128, description: "Prefix length to allocate." },
      request: {
        type: "string",
        maxLength: MAX_ENTRY_LENGTH,
        "x-kubernetes-validations": [
          {
            rule: "self.matches('^\\\\s*[0-9A-Fa-f:.%#/]*\\\\s*$')",
            message:
              "request must be a CIDR, an IP or an expression: <n>, /<n>, %<hostbits>, #<count>, <i>/<n>, <i>/%<hostbits>",
          },
        ],
        description:
          "A CIDR or IP to reserve, or an expression: <n>, /<n>, %<hostbits>, #<count>, <i>/<n>, <i>/%<hostbits>.",
      },
      description: { type: "string", maxLength: 4096 },
    },
  },
  status: {
    type: "object",
    "x-kubernetes-validations": [
      {
        rule: "!has(oldSelf.cidr) || oldSelf.cidr == '' || (has(self.cidr) && self.cidr == oldSelf.cidr)",
        message: "status.cidr never changes once allocated",
      },
    ],
    properties: {
      state: { type: "string", enum: ["Ready", "Invalid", "Busy"] },
      message: { type: "string" },
      cidr: { type: "string", maxLength: 64 },
      observedGeneration: { type: "integer", format: "int64" },
      conditions: conditionsSchema,
    },
  },
});

const ipamAllocationSchema = objectSchema({
  spec: {
    type: "object",
    required: ["range", "cidr", "request"],
    "x-kubernetes-validations": [{ rule: "self == oldSelf", message: "an allocation is immutable" }],
    properties: {
      range: {
        type: "object",
        required: ["name", "uid"],
        properties: {
          // Absent: IPAMRange (records written before ClusterIPAMRange existed).
          kind: { type: "string", enum: ["IPAMRange", "ClusterIPAMRange"] },
          name: { type: "string", maxLength: 253 },
          uid: { type: "string", maxLength: 64 },
        },
      },
      cidr: { type: "string", maxLength: 64 },
      request: {
        type: "object",
        required: ["namespace", "name", "uid"],
        properties: {
          namespace: { type: "string", maxLength: 63 },
          name: { type: "string", maxLength: 253 },
          uid: { type: "string", maxLength: 64 },
          kind: {
            type: "string",
            enum: ["IPAMRequest", "IPAddressClaim"],
            description: "Kind of the holder (absent: IPAMRequest).",
          },
        },
      },
    },
  },
});

interface CrdOptions {
  kind: string;
  /** Default: Namespaced. */
  scope?: "Namespaced" | "Cluster";
  plural: string;
  singular: string;
  shortNames: string[];
  schema: JsonSchema;
  columns: { name: string; type: string; jsonPath: string; priority?: number; description?: string }[];
  status: boolean;
}

function crd(o: CrdOptions): JsonSchema {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${o.plural}.${GROUP}` },
    spec: {
      group: GROUP,
      scope: o.scope ?? "Namespaced",
      names: {
        kind: o.kind,
        listKind: `${o.kind}List`,
        plural: o.plural,
        singular: o.singular,
        shortNames: o.shortNames,
        categories: ["ipam"],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          schema: { openAPIV3Schema: o.schema },
          ...(o.status ? { subresources: { status: {} } } : {}),
          additionalPrinterColumns: [
            ...o.columns,
            { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
          ],
        },
      ],
    },
  };
}

/** The CRD manifests as objects, in install order. */
/** The printer columns of both kinds of range. */
const rangeColumns: CrdOptions["columns"] = [
  { name: "Mode", type: "string", jsonPath: ".spec.mode" },
  { name: "State", type: "string", jsonPath: ".status.state" },
  {
    name: "Allocated",
    type: "string",
    jsonPath: ".status.allocated",
    description: "Addresses allocated",
  },
  { name: "Size", type: "string", jsonPath: ".status.size", description: "Addresses in the pool" },
  { name: "Free", type: "string", jsonPath: ".status.free", priority: 1 },
  { name: "Ranges", type: "string", jsonPath: ".spec.ranges", priority: 1 },
  { name: "Message", type: "string", jsonPath: ".status.message", priority: 1 },
];

export function crdManifests(): JsonSchema[] {
  return [
    crd({
      kind: "IPAMRange",
      plural: "ipamranges",
      singular: "ipamrange",
      shortNames: ["iprange"],
      schema: ipamRangeSchema,
      status: true,
      columns: rangeColumns,
    }),
    crd({
      kind: "ClusterIPAMRange",
      plural: "clusteripamranges",
      singular: "clusteripamrange",
      shortNames: ["ciprange"],
      scope: "Cluster",
      schema: clusterRangeSchema,
      status: true,
      columns: rangeColumns,
    }),
    crd({
      kind: "IPAMRequest",
      plural: "ipamrequests",
      singular: "ipamrequest",
      shortNames: ["ipreq"],
      schema: ipamRequestSchema,
      status: true,
      columns: [
        { name: "IPAM", type: "string", jsonPath: ".spec.ipam.name" },
        { name: "Kind", type: "string", jsonPath: ".spec.ipam.kind", priority: 1 },
        { name: "Size", type: "integer", jsonPath: ".spec.size" },
        { name: "State", type: "string", jsonPath: ".status.state" },
        { name: "CIDR", type: "string", jsonPath: ".status.cidr" },
        { name: "Request", type: "string", jsonPath: ".spec.request", priority: 1 },
        { name: "Message", type: "string", jsonPath: ".status.message", priority: 1 },
      ],
    }),
    crd({
      kind: "IPAMAllocation",
      plural: "ipamallocations",
      singular: "ipamallocation",
      shortNames: ["ipalloc"],
      schema: ipamAllocationSchema,
      status: false,
      columns: [
        { name: "Range", type: "string", jsonPath: ".spec.range.name" },
        { name: "Kind", type: "string", jsonPath: ".spec.range.kind", priority: 1 },
        { name: "CIDR", type: "string", jsonPath: ".spec.cidr" },
        { name: "Request-Namespace", type: "string", jsonPath: ".spec.request.namespace" },
        { name: "Request", type: "string", jsonPath: ".spec.request.name" },
        { name: "Holder-Kind", type: "string", jsonPath: ".spec.request.kind", priority: 1 },
      ],
    }),
  ];
}

/** The CRD manifests as one multi-document YAML stream. */
export function crdYaml(): string {
  return crdManifests()
    .map((m) => stringify(m, { lineWidth: 0 }))
    .join("---\n");
}
