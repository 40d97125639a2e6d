// etcd's v3 JSON gateway, for what the API server does not expose: the current revision and
// compaction (fault tests resume watches from a compacted resourceVersion to provoke 410 Gone).

import http from "node:http";

function postJson(url: string, body: unknown): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const request = http.request(
      url,
      {
        method: "POST",
        headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(payload) },
        timeout: 10_000,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json: unknown = text;
          try {
            json = JSON.parse(text);
          } catch {
            // keep the text for the error message
          }
          resolve({ status: response.statusCode ?? 0, json });
        });
      },
    );
    request.on("timeout", () => request.destroy(new Error(`POST ${url} timed out`)));
    request.on("error", reject);
    request.end(payload);
  });
}

/** etcd's current revision: the resourceVersion of the latest write to the API server. */
export async function etcdRevision(etcdUrl: string): Promise<number> {
  const { status, json } = await postJson(`${etcdUrl}/v3/kv/range`, {
    key: Buffer.from("/").toString("base64"),
    count_only: true,
  });
  const revision = Number((json as { header?: { revision?: string } }).header?.revision);
  if (status !== 200 || !Number.isInteger(revision)) {
    throw new Error(`etcd range answered ${status}: ${JSON.stringify(json)}`);
  }
  return revision;
}

/** Compacts etcd's history up to `revision`: lists and watches from older revisions then get 410. */
export async function compactEtcd(etcdUrl: string, revision: number): Promise<void> {
  const { status, json } = await postJson(`${etcdUrl}/v3/kv/compaction`, {
    revision: String(revision),
    physical: true,
  });
  if (status !== 200) throw new Error(`etcd compaction answered ${status}: ${JSON.stringify(json)}`);
}
