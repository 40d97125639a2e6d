// Bad input: a table of malformed and hostile objects. Each one is either refused by the API server
// with a clear reason (the CRD schema and CEL rules) or ends `Invalid` with the contract's exact
// message (shared/docs/semantics.md §2, §3, §5). One controller process serves the whole file; it must
// never crash or restart, and a valid range keeps allocating all along.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  API_VERSION,
  type IPAMRange,
  type IPAMRequest,
  ipamAllocationResource,
  ipamRangeResource,
  ipamRequestResource,
} from "../../src/api/types.ts";
import type { KubeClient } from "../../src/runtime/kube.ts";
import { type ControllerProcess, spawnController } from "../../src/testing/controller-process.ts";
import { eventually, invariantsHold, type TestCluster, useCluster } from "../harness/index.ts";
import { type IpamFixture, ipamFixture } from "../harness/ipam.ts";

type Expect =
  /** The API server refuses the object (4xx); its message contains this text. */
  | { rejected: string }
  /** The object is stored and ends `Invalid` with exactly this status.message. */
  | { invalid: string };

interface Case {
  title: string;
  kind: "range" | "request";
  /** The whole object body; `metadata.name` defaults to a generated one. */
  body: { metadata?: { name?: string; namespace?: string }; spec?: unknown; [key: string]: unknown };
  expect: Expect;
}

const ZWSP = "\u200b";
const RLO = "\u202e";
const NBSP = "\u00a0";
const long = (n: number) => "a".repeat(n);

let cluster: TestCluster;
let f: IpamFixture;
let ns: string;
let other: string;
let controller: ControllerProcess;
const cases: Case[] = [];

const range = (title: string, spec: unknown, expect: Expect, body: Partial<Case["body"]> = {}): void => {
  cases.push({ title, kind: "range", body: { spec, ...body }, expect });
};
const request = (title: string, spec: unknown, expect: Expect, body: Partial<Case["body"]> = {}): void => {
  cases.push({ title, kind: "request", body: { spec, ...body }, expect });
};
const on = (name: string, extra: Record<string, unknown> = {}) => ({ ipam: { name }, ...extra });
const ENTRY_HINT = ": use a CIDR (10.0.0.0/16), an IP (10.0.0.1) or a range (10.0.0.1-10.0.0.9)";
const FORMS = "use a CIDR, an IP, <n>, /<n>, %<hostbits>, #<count>, <i>/<n> or <i>/%<hostbits>";
const REQUEST_HINT =
  "request must be a CIDR, an IP or an expression: <n>, /<n>, %<hostbits>, #<count>, <i>/<n>, <i>/%<hostbits>";
const badEntry = (entry: string) => ({ rejected: `invalid ip range "${entry}"${ENTRY_HINT}` });

// ---------------------------------------------------------------- ranges: entries
range("CIDR prefix past the width", { ranges: ["10.0.0.0/33"] }, badEntry("10.0.0.0/33"));
range("octet above 255", { ranges: ["10.0.0.256"] }, badEntry("10.0.0.256"));
range("three octets", { ranges: ["10.0.0"] }, badEntry("10.0.0"));
range("a word with a dash", { ranges: ["not-an-ip"] }, badEntry("not-an-ip"));
range("leading white space", { ranges: [" 10.0.0.0/24"] }, badEntry(" 10.0.0.0/24"));
// The message expression cannot carry a line break, so the API server shows the rule instead.
range("trailing newline", { ranges: ["10.0.0.0/24\n"] }, { rejected: "each entry must be a CIDR" });
range("leading zero in an octet", { ranges: ["010.0.0.1"] }, badEntry("010.0.0.1"));
range("two dashes", { ranges: ["10.0.0.1-10.0.0.2-10.0.0.3"] }, badEntry("10.0.0.1-10.0.0.2-10.0.0.3"));
range("empty entry", { ranges: [""] }, badEntry(""));
range("IPv6 with a zone", { ranges: ["fe80::1%eth0"] }, badEntry("fe80::1%eth0"));
range("full-width digits", { ranges: ["１０.0.0.0/8"] }, badEntry("１０.0.0.0/8"));
range("zero-width space inside", { ranges: [`10.0.0.0${ZWSP}/24`] }, badEntry(`10.0.0.0${ZWSP}/24`));
range("right-to-left override", { ranges: [`${RLO}10.0.0.0/24`] }, badEntry(`${RLO}10.0.0.0/24`));
range("entry longer than 100", { ranges: [`10.0.0.1-${"0".repeat(100)}`] }, { rejected: "Too long" });
range(
  "end before start",
  { ranges: ["10.0.0.9-10.0.0.1"] },
  {
    invalid: 'invalid ip range "10.0.0.9-10.0.0.1": end of range before start',
  },
);
range(
  "families differ in a-b",
  { ranges: ["10.0.0.1-fd00::1"] },
  {
    invalid: 'invalid ip range "10.0.0.1-fd00::1": start and end ip have different version',
  },
);
range(
  "mixed families",
  { ranges: ["10.0.0.0/24", "fd00::/64"] },
  {
    invalid: 'invalid ip ranges: "10.0.0.0/24" is IPv4 but "fd00::/64" is IPv6: one range holds one family',
  },
);
range(
  "IPv4-mapped IPv6 is IPv4, mixed with IPv6",
  { ranges: ["::ffff:10.0.0.1", "fd00::1"] },
  {
    invalid: 'invalid ip ranges: "::ffff:10.0.0.1" is IPv4 but "fd00::1" is IPv6: one range holds one family',
  },
);
range("IPv4-mapped garbage", { ranges: ["::ffff:zzz"] }, { invalid: 'invalid ip range "::ffff:zzz"' });
range(
  "IPv4-mapped with a prefix past 128",
  { ranges: ["::FFFF:1.2.3.4/200"] },
  {
    invalid: 'invalid ip range "::FFFF:1.2.3.4/200"',
  },
);
// ---------------------------------------------------------------- ranges: shape and sizes
range("no ranges", { chunkSize: 24 }, { rejected: "spec.ranges: Required value" });
range("no spec at all", undefined, { rejected: "spec: Required value" });
range("ranges not a list", { ranges: "10.0.0.0/8" }, { rejected: "spec.ranges: Invalid value" });
range("null entry", { ranges: [null] }, { rejected: "spec.ranges[0]" });
range("number entry", { ranges: [42] }, { rejected: "must be of type string" });
range(
  "1,025 entries",
  { ranges: Array.from({ length: 1025 }, (_, i) => `10.${i >> 8}.${i & 255}.1`) },
  { rejected: "must have at most 1024 items" },
);
range(
  "chunk size 129",
  { ranges: ["10.0.0.0/8"], chunkSize: 129 },
  {
    rejected: "should be less than or equal to 128",
  },
);
range(
  "negative chunk size",
  { ranges: ["10.0.0.0/8"], chunkSize: -1 },
  {
    rejected: "should be greater than or equal to 0",
  },
);
range(
  "chunk size 33 on IPv4",
  { ranges: ["10.0.0.0/8"], chunkSize: 33 },
  {
    invalid: "chunk size 33 too large: network 32",
  },
);
range(
  "chunk size as a string",
  { ranges: ["10.0.0.0/8"], chunkSize: "24" },
  {
    rejected: "must be of type integer",
  },
);
range(
  "fractional chunk size",
  { ranges: ["10.0.0.0/8"], chunkSize: 24.5 },
  {
    rejected: "must be of type integer",
  },
);
range(
  "astronomical chunk size",
  { ranges: ["10.0.0.0/8"], chunkSize: 1e21 },
  {
    rejected: "spec.chunkSize",
  },
);
range(
  "mode in lower case",
  { ranges: ["10.0.0.0/8"], mode: "firstmatch" },
  {
    rejected: 'Unsupported value: "firstmatch"',
  },
);
range("empty mode", { ranges: ["10.0.0.0/8"], mode: "" }, { rejected: 'Unsupported value: ""' });
range(
  "mode with a trailing blank",
  { ranges: ["10.0.0.0/8"], mode: "RoundRobin " },
  {
    rejected: 'Unsupported value: "RoundRobin "',
  },
);
range(
  "allowed namespace too long",
  { ranges: ["10.0.0.0/8"], allowedNamespaces: [long(64)] },
  {
    rejected: "Too long",
  },
);
range(
  "257 allowed namespaces",
  { ranges: ["10.0.0.0/8"], allowedNamespaces: Array.from({ length: 257 }, (_, i) => `ns-${i}`) },
  { rejected: "must have at most 256 items" },
);
range(
  "name with an underscore",
  { ranges: ["10.0.0.0/8"] },
  { rejected: "RFC 1123" },
  {
    metadata: { name: "bad_name" },
  },
);
range(
  "name of 254 characters",
  { ranges: ["10.0.0.0/8"] },
  { rejected: "253" },
  {
    metadata: { name: long(254) },
  },
);
range(
  "name in Unicode",
  { ranges: ["10.0.0.0/8"] },
  { rejected: "RFC 1123" },
  {
    metadata: { name: "räng€" },
  },
);

// ---------------------------------------------------------------- requests: sizes
request("size 129", on("ok4", { size: 129 }), { rejected: "should be less than or equal to 128" });
request("negative size", on("ok4", { size: -1 }), { rejected: "should be greater than or equal to 0" });
request("size 2^53", on("ok4", { size: 2 ** 53 }), { rejected: "spec.size" });
request("fractional size", on("ok4", { size: 1.5 }), { rejected: "must be of type integer" });
request("size as a string", on("ok4", { size: "24" }), { rejected: "must be of type integer" });
request("size 33 on IPv4", on("ok4", { size: 33 }), { invalid: "size 33 too large: network 32" });
request("size larger than every pool block", on("ok4", { size: 8 }), {
  invalid: "size 8 never fits: the largest block of the range is /16",
});
// ---------------------------------------------------------------- requests: expressions
request("letters outside hex", on("ok4", { request: "xyz" }), { rejected: REQUEST_HINT });
request("hex letters only", on("ok4", { request: "abc" }), { invalid: `invalid request "abc": ${FORMS}` });
request("/33", on("ok4", { request: "/33" }), { invalid: "size 33 too large: network 32" });
request("%33", on("ok4", { request: "%33" }), {
  invalid: 'invalid request "%33": 33 host bits too many: network 32',
});
request("#0", on("ok4", { request: "#0" }), {
  invalid: 'invalid request "#0": the count must be at least 1',
});
request("#2^32+1", on("ok4", { request: "#4294967297" }), {
  invalid: 'invalid request "#4294967297": count 4294967297 too large: network 32',
});
request("huge block index", on("ok4", { request: "99999999999999999999999/24" }), {
  invalid: "block 99999999999999999999999 of size 24 is past the end: the range holds 256 blocks of size 24",
});
request("block index just past the end", on("ok4", { request: "256/24" }), {
  invalid: "block 256 of size 24 is past the end: the range holds 256 blocks of size 24",
});
request("two prefixes", on("ok4", { request: "10.0.0.0/8/8" }), {
  invalid: `invalid request "10.0.0.0/8/8": ${FORMS}`,
});
request("double slash", on("ok4", { request: "//24" }), { invalid: `invalid request "//24": ${FORMS}` });
request("bare percent", on("ok4", { request: "%" }), { invalid: `invalid request "%": ${FORMS}` });
request("bare hash", on("ok4", { request: "#" }), { invalid: `invalid request "#": ${FORMS}` });
request("exponent notation", on("ok4", { request: "1e3" }), { invalid: `invalid request "1e3": ${FORMS}` });
request("hexadecimal prefix", on("ok4", { request: "0x10" }), { rejected: REQUEST_HINT });
request("full-width digits", on("ok4", { request: "２４" }), { rejected: REQUEST_HINT });
request("zero-width space", on("ok4", { request: `24${ZWSP}` }), { rejected: REQUEST_HINT });
request("no-break space", on("ok4", { request: `24${NBSP}` }), { rejected: REQUEST_HINT });
request("negative size expression", on("ok4", { request: "/-1" }), { rejected: REQUEST_HINT });
request("expression of 101 characters", on("ok4", { request: "1".repeat(101) }), { rejected: "Too long" });
request("size of 100 digits", on("ok4", { request: "1".repeat(100) }), {
  invalid: `size ${"1".repeat(100)} too large: network 32`,
});
request("IPv6 address on an IPv4 range", on("ok4", { request: "::" }), {
  invalid: 'invalid request "::": IPv6 but the range is IPv4',
});
request("IPv4 address on an IPv6 range", on("ok6", { request: "10.0.0.1" }), {
  invalid: 'invalid request "10.0.0.1": IPv4 but the range is IPv6',
});
request("/129 on IPv6", on("ok6", { request: "/129" }), { invalid: "size 129 too large: network 128" });
request("count past 2^128 on IPv6", on("ok6", { request: "#340282366920938463463374607431768211457" }), {
  invalid:
    'invalid request "#340282366920938463463374607431768211457": count 340282366920938463463374607431768211457 too large: network 128',
});
request("dedicated address outside the range", on("ok4", { request: "10.99.0.1" }), {
  invalid: "10.99.0.1/32 is outside the range (10.100.0.0/16)",
});
request("dedicated block partly outside", on("ok4", { request: "10.0.0.0/8" }), {
  invalid: "10.0.0.0/8 is outside the range (10.100.0.0/16)",
});
request("size and expression disagree", on("ok4", { size: 24, request: "/25" }), {
  invalid: 'invalid request "/25": it means size 25 but size is 24',
});
request("description over 4096", on("ok4", { description: long(4097) }), { rejected: "Too long" });
// ---------------------------------------------------------------- requests: references
request("no ipam", {}, { rejected: "spec.ipam: Required value" });
request("no spec at all", undefined, { rejected: "spec: Required value" });
request("empty ipam", { ipam: {} }, { invalid: "IPAMRange object not specified" });
request("empty range name", { ipam: { name: "" } }, { invalid: "IPAMRange object not specified" });
request("range name as a number", { ipam: { name: 42 } }, { rejected: "must be of type string" });
request("range name of 254 characters", { ipam: { name: long(254) } }, { rejected: "Too long" });
request("range that does not exist", on("missing"), { invalid: "IPAMRange {ns}/missing not found" });
request("range name in Unicode", on("räng€"), { invalid: "IPAMRange {ns}/räng€ not found" });
request("range name with a zero-width space", on(`ok4${ZWSP}`), {
  invalid: `IPAMRange {ns}/ok4${ZWSP} not found`,
});
request(
  "range in a namespace that does not exist",
  { ipam: { name: "ok4", namespace: "no-such-ns" } },
  {
    invalid: "IPAMRange no-such-ns/ok4 not found",
  },
);
request("range namespace too long", { ipam: { name: "ok4", namespace: long(64) } }, { rejected: "Too long" });
request(
  "foreign range without consent",
  { ipam: { name: "guarded", namespace: "{other}" } },
  {
    invalid:
      "IPAMRange {other}/guarded does not admit requests from namespace {ns}: add it to the range's spec.allowedNamespaces",
  },
);
request("range that is invalid", on("mixed-ref"), {
  invalid:
    'IPAMRange {ns}/mixed-ref not valid: invalid ip ranges: "10.0.0.0/24" is IPv4 but "fd00::/64" is IPv6: one range holds one family',
});
request("name with capitals", on("ok4"), { rejected: "RFC 1123" }, { metadata: { name: "Request-A" } });
request(
  "name with a zero-width space",
  on("ok4"),
  { rejected: "RFC 1123" },
  {
    metadata: { name: `req${ZWSP}` },
  },
);

// ---------------------------------------------------------------- helpers

const fill = (text: string) => text.replaceAll("{ns}", ns).replaceAll("{other}", other);

function pathOf(kind: "range" | "request", namespace = ns): string {
  return `/apis/${API_VERSION}/namespaces/${namespace}/${kind === "range" ? "ipamranges" : "ipamrequests"}`;
}

/** The API server's answer to a raw create; hostile bodies do not fit the typed client. */
async function createRaw(c: Case, name: string): Promise<{ status: number; message: string }> {
  const body = JSON.parse(fill(JSON.stringify(c.body))) as Case["body"];
  const object = {
    apiVersion: API_VERSION,
    kind: c.kind === "range" ? "IPAMRange" : "IPAMRequest",
    ...body,
    metadata: { name, ...body.metadata },
  };
  const response = await cluster.rest.raw("POST", pathOf(c.kind), { body: object });
  let message = response.text;
  try {
    message = (JSON.parse(response.text) as { message?: string }).message ?? response.text;
  } catch {
    // not JSON
  }
  return { status: response.status, message };
}

async function patchRaw(
  path: string,
  patch: unknown,
  contentType = "application/merge-patch+json",
): Promise<{ status: number; message: string }> {
  const response = await cluster.rest.raw("PATCH", path, { body: patch, contentType });
  let message = response.text;
  try {
    message = (JSON.parse(response.text) as { message?: string }).message ?? response.text;
  } catch {
    // not JSON
  }
  return { status: response.status, message };
}

/** Keeps a valid range allocating while the bad input is processed: request, wait Ready, delete. */
function keepAllocating(client: KubeClient) {
  let stop = false;
  let served = 0;
  const failures: string[] = [];
  const loop = (async () => {
    for (let i = 0; !stop; i++) {
      const name = `healthy-${i}`;
      try {
        await client.create<IPAMRequest>(ipamRequestResource, {
          apiVersion: API_VERSION,
          kind: "IPAMRequest",
          metadata: { name, namespace: ns },
          spec: { ipam: { name: "healthy" } },
        });
        const done = await f.settled(name, (r) => r.status?.state === "Ready");
        assert.match(done.status?.cidr ?? "", /^10\.101\.0\.\d+\/32$/);
        served++;
        await f.deleteRequest(name);
        await eventually(async () => assert.equal(await f.getRequest(name), undefined), {
          timeoutMs: 30_000,
        });
      } catch (error) {
        failures.push(`${name}: ${error instanceof Error ? error.message : String(error)}`);
        return;
      }
    }
  })();
  return {
    served: () => served,
    failures,
    async stop(): Promise<void> {
      stop = true;
      await loop;
    },
  };
}

// ---------------------------------------------------------------- the tests

let healthy: ReturnType<typeof keepAllocating>;
let pid: number | undefined;

before(async () => {
  cluster = await useCluster();
  ns = await cluster.createNamespace("bad-input");
  other = await cluster.createNamespace("bad-input-other");
  f = ipamFixture(cluster, ns);
  await f.range("healthy", { ranges: ["10.101.0.0/28"] });
  await f.range("ok4", { ranges: ["10.100.0.0/16"] });
  await f.range("ok6", { ranges: ["fd00:100::/48"] });
  await f.range("mixed-ref", { ranges: ["10.0.0.0/24", "fd00::/64"] });
  await f.range("guarded", { ranges: ["10.102.0.0/24"] }, other);
  controller = spawnController(cluster.kubeconfigPath, "bad-input", ["--workers", "4"]);
  pid = controller.child.pid;
  healthy = keepAllocating(f.client);
  await eventually(() => assert.ok(healthy.served() >= 1, "the healthy range serves"), { timeoutMs: 60_000 });
});

after(async () => {
  await healthy?.stop();
  await controller?.kill("SIGTERM");
  f?.client.close();
});

describe("bad input", () => {
  it(`${cases.length} malformed or hostile objects: refused with a reason, or Invalid with the contract's message`, async () => {
    assert.ok(cases.length >= 60, `the table holds ${cases.length} cases`);
    const outcomes = new Map<string, { status: number; message: string }>();
    const names = cases.map((c, i) => c.body.metadata?.name ?? `${c.kind}-${i}`);
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < cases.length) {
          const i = next++;
          const c = cases[i] as Case;
          outcomes.set(names[i] as string, await createRaw(c, names[i] as string));
        }
      }),
    );
    const wrong: string[] = [];
    cases.forEach((c, i) => {
      const outcome = outcomes.get(names[i] as string);
      if (!outcome) return;
      if ("rejected" in c.expect) {
        if (
          outcome.status < 400 ||
          outcome.status >= 500 ||
          !outcome.message.includes(fill(c.expect.rejected))
        ) {
          wrong.push(
            `${c.title}: expected refusal with "${c.expect.rejected}", got ${outcome.status} ${outcome.message}`,
          );
        }
      } else if (outcome.status !== 201) {
        wrong.push(`${c.title}: expected it stored, got ${outcome.status} ${outcome.message}`);
      }
    });
    assert.deepEqual(wrong, []);

    // Everything stored ends Invalid with exactly the contract's message.
    await eventually(
      async () => {
        const [ranges, requests] = await Promise.all([
          f.client.listAll<IPAMRange>(ipamRangeResource, { namespace: ns }),
          f.client.listAll<IPAMRequest>(ipamRequestResource, { namespace: ns }),
        ]);
        const byName = new Map<string, { status?: { state?: string; message?: string } }>();
        for (const r of ranges.items) byName.set(`range/${r.metadata.name}`, r);
        for (const r of requests.items) byName.set(`request/${r.metadata.name}`, r);
        const pending: string[] = [];
        cases.forEach((c, i) => {
          if (!("invalid" in c.expect)) return;
          const object = byName.get(`${c.kind}/${names[i]}`);
          const expected = { state: "Invalid", message: fill(c.expect.invalid) };
          const actual = { state: object?.status?.state, message: object?.status?.message };
          if (actual.state !== expected.state || actual.message !== expected.message) {
            pending.push(`${c.title}: ${JSON.stringify(actual)} != ${JSON.stringify(expected)}`);
          }
        });
        assert.deepEqual(pending, []);
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
  });

  it("edits of immutable fields and status tampering are refused", async () => {
    await f.request("victim", { ipam: { name: "ok4" }, size: 30 });
    const victim = await f.settled("victim", (r) => r.status?.state === "Ready");
    const cidr = victim.status?.cidr ?? "";
    const path = `${pathOf("request")}/victim`;
    const refusals: [string, unknown, string, string?][] = [
      [
        "spec.size changed",
        { spec: { size: 29 } },
        "spec is immutable: delete the request and create a new one",
      ],
      ["spec.ipam.name changed", { spec: { ipam: { name: "ok6" } } }, "spec is immutable"],
      ["spec.request added", { spec: { request: "/30" } }, "spec is immutable"],
      ["spec.description added", { spec: { description: "x" } }, "spec is immutable"],
      ["spec.ipam removed", { spec: { ipam: null } }, "spec.ipam: Required value"],
    ];
    const statusRefusals: [string, unknown, string][] = [
      [
        "status.cidr changed",
        { status: { cidr: "10.100.255.0/30" } },
        "status.cidr never changes once allocated",
      ],
      ["status.cidr removed", { status: { cidr: null } }, "status.cidr never changes once allocated"],
      ["status.cidr emptied", { status: { cidr: "" } }, "status.cidr never changes once allocated"],
      ["status.state outside the enum", { status: { state: "Hacked" } }, 'Unsupported value: "Hacked"'],
    ];
    const wrong: string[] = [];
    for (const [title, patch, reason] of refusals) {
      const { status, message } = await patchRaw(path, patch);
      if (status !== 422 || !message.includes(reason)) wrong.push(`${title}: ${status} ${message}`);
    }
    for (const [title, patch, reason] of statusRefusals) {
      const { status, message } = await patchRaw(`${path}/status`, patch);
      if (status !== 422 || !message.includes(reason)) wrong.push(`${title}: ${status} ${message}`);
    }
    // Ranges: a bad entry and a bad mode are refused on update as on create.
    const rangePath = `${pathOf("range")}/ok4`;
    for (const [title, patch, reason] of [
      ["range entry broken", { spec: { ranges: ["10.100.0.0/33"] } }, 'invalid ip range "10.100.0.0/33"'],
      ["range mode broken", { spec: { mode: "Random" } }, 'Unsupported value: "Random"'],
      ["range status state outside the enum", { status: { state: "Bogus" } }, 'Unsupported value: "Bogus"'],
    ] as const) {
      const { status, message } = await patchRaw(
        title.includes("status") ? `${rangePath}/status` : rangePath,
        patch,
      );
      if (status !== 422 || !message.includes(reason)) wrong.push(`${title}: ${status} ${message}`);
    }
    // An allocation object cannot be edited either.
    const allocations = await f.client.listAll(ipamAllocationResource, { namespace: ns });
    const held = allocations.items.find((a) => (a as { spec?: { cidr?: string } }).spec?.cidr === cidr);
    assert.ok(held, "the victim's allocation object exists");
    {
      const { status, message } = await patchRaw(
        `/apis/${API_VERSION}/namespaces/${ns}/ipamallocations/${held.metadata.name}`,
        { spec: { cidr: "10.100.255.0/30" } },
      );
      if (status !== 422 || !message.includes("an allocation is immutable")) {
        wrong.push(`allocation cidr changed: ${status} ${message}`);
      }
    }
    assert.deepEqual(wrong, []);
    const after = await f.getRequest("victim");
    assert.equal(after?.status?.cidr, cidr, "the allocation did not move");
    assert.equal(after?.spec.size, 30);
  });

  it("removing the whole spec of a request is refused", async () => {
    await f.request("spec-less", { ipam: { name: "ok4" }, size: 30 });
    await f.settled("spec-less", (r) => r.status?.state === "Ready");
    const { status, message } = await patchRaw(`${pathOf("request")}/spec-less`, { spec: null });
    assert.equal(status, 422, message);
    assert.match(message, /spec: Required value|spec is immutable/);
  });

  it("status tampering the API server lets through is undone by the controller", async () => {
    await f.request("tampered", { ipam: { name: "ok4" }, size: 30 });
    const before = await f.settled("tampered", (r) => r.status?.state === "Ready");
    await f.request("tampered-invalid", on("missing-too"));
    await f.settled("tampered-invalid", (r) => r.status?.state === "Invalid");
    const writes: [string, unknown][] = [
      [`${pathOf("request")}/tampered/status`, { status: { state: "Busy", message: "tampered" } }],
      [`${pathOf("request")}/tampered-invalid/status`, { status: { state: "Ready", message: "" } }],
      [`${pathOf("range")}/ok4/status`, { status: { state: "Invalid", message: "tampered" } }],
      [`${pathOf("range")}/mixed-ref/status`, { status: { state: "Ready", message: "" } }],
    ];
    for (const [path, patch] of writes) {
      const { status, message } = await patchRaw(path, patch);
      assert.equal(status, 200, message);
    }
    await eventually(async () => {
      const request = await f.getRequest("tampered");
      assert.deepEqual(
        { state: request?.status?.state, message: request?.status?.message, cidr: request?.status?.cidr },
        { state: "Ready", message: "", cidr: before.status?.cidr },
      );
      const invalid = await f.getRequest("tampered-invalid");
      assert.deepEqual(
        { state: invalid?.status?.state, message: invalid?.status?.message },
        { state: "Invalid", message: `IPAMRange ${ns}/missing-too not found` },
      );
      const ok4 = await f.getRange("ok4");
      assert.deepEqual(
        { state: ok4?.status?.state, message: ok4?.status?.message },
        { state: "Ready", message: "" },
      );
      const mixed = await f.getRange("mixed-ref");
      assert.equal(mixed?.status?.state, "Invalid");
    });
  });

  it("forged allocation objects are collected", async () => {
    const forged = [
      { name: "ok4.10-100-200-0-24", cidr: "10.100.200.0/24" },
      { name: "ok4.garbage", cidr: "garbage" },
    ];
    for (const { name, cidr } of forged) {
      await f.client.create(ipamAllocationResource, {
        apiVersion: API_VERSION,
        kind: "IPAMAllocation",
        metadata: { name, namespace: ns },
        spec: {
          range: { name: "ok4", uid: "forged" },
          cidr,
          request: { namespace: ns, name: "ghost", uid: "00000000-0000-0000-0000-000000000000" },
        },
      });
    }
    await eventually(
      async () => {
        const left = await f.client.listAll(ipamAllocationResource, { namespace: ns });
        const names = new Set(left.items.map((a) => a.metadata.name));
        assert.deepEqual(
          forged.filter((x) => names.has(x.name)).map((x) => x.name),
          [],
          "forged allocations are gone",
        );
      },
      { timeoutMs: 30_000 },
    );
  });

  it("the controller never restarted, and the valid range kept allocating", async () => {
    const served = healthy.served();
    await eventually(() => assert.ok(healthy.served() >= served + 2, "the healthy range still serves"), {
      timeoutMs: 60_000,
    });
    await healthy.stop();
    assert.deepEqual(healthy.failures, []);
    assert.equal(controller.child.pid, pid);
    assert.equal(controller.child.exitCode, null, "the controller is still running");
    assert.equal(controller.child.signalCode, null);
    assert.doesNotMatch(controller.output(), /uncaught|unhandled|internal error validating spec/i);
    await invariantsHold(f.client, { namespaces: [ns] }, 30_000);
  });
});
