import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { goPlatform, pickArchive, wantedVersion } from "../../src/cli/control-plane/index.ts";

const HASH = "AB".repeat(64);
const INDEX_URL = "https://mirror.example/envtest/envtest-releases.yaml";

// The shape of controller-tools' envtest-releases.yaml, versions deliberately out of order.
const INDEX = `
releases:
  v1.34.1:
    envtest-v1.34.1-linux-amd64.tar.gz:
      hash: ${HASH}
      selfLink: https://github.com/kubernetes-sigs/controller-tools/releases/download/envtest-v1.34.1/envtest-v1.34.1-linux-amd64.tar.gz
  v1.34.10:
    envtest-v1.34.10-darwin-arm64.tar.gz:
      hash: ${HASH}
      selfLink: envtest-v1.34.10-darwin-arm64.tar.gz
  v1.34.3:
    envtest-v1.34.3-linux-amd64.tar.gz:
      hash: ${HASH}
      selfLink: envtest-v1.34.3-linux-amd64.tar.gz
  v1.34.4-rc.0:
    envtest-v1.34.4-rc.0-linux-amd64.tar.gz:
      hash: ${HASH}
      selfLink: envtest-v1.34.4-rc.0-linux-amd64.tar.gz
  v1.35.0:
    envtest-v1.35.0-linux-amd64.tar.gz:
      hash: ${HASH}
      selfLink: envtest-v1.35.0-linux-amd64.tar.gz
`;

describe("envtest index", () => {
  test("the newest release patch of the minor for this OS/arch, its link resolved against the index", () => {
    assert.deepEqual(pickArchive(INDEX, INDEX_URL, { minor: "1.34" }, "linux", "amd64"), {
      version: "v1.34.3",
      name: "envtest-v1.34.3-linux-amd64.tar.gz",
      hash: HASH.toLowerCase(),
      url: "https://mirror.example/envtest/envtest-v1.34.3-linux-amd64.tar.gz",
    });
    const mac = pickArchive(INDEX, INDEX_URL, { minor: "1.34" }, "darwin", "arm64");
    assert.equal("version" in mac && mac.version, "v1.34.10");
  });

  test("a pinned version is taken exactly", () => {
    const picked = pickArchive(INDEX, INDEX_URL, { exact: "v1.34.1", minor: "1.34" }, "linux", "amd64");
    assert.equal("url" in picked && picked.url, INDEX.match(/selfLink: (https:\S+v1\.34\.1-linux\S+)/)?.[1]);
  });

  test("no archive for this OS/arch is reported, with what the index has", () => {
    assert.deepEqual(pickArchive(INDEX, INDEX_URL, { minor: "1.34" }, "linux", "s390x"), {
      missing:
        "the envtest index lists no envtest-v1.34.*-linux-s390x.tar.gz (it lists v1.34.10, v1.34.3, v1.34.1 for other platforms)",
    });
  });

  test("malformed indexes are named", () => {
    const cases: [string, RegExp][] = [
      ["releases: [", /is not YAML/],
      ["items: {}", /has no "releases" map/],
      [
        "releases:\n  v1.34.0:\n    envtest-v1.34.0-linux-amd64.tar.gz:\n      hash: abc\n      selfLink: x",
        /no SHA-512 hash and selfLink for envtest-v1\.34\.0-linux-amd64\.tar\.gz/,
      ],
    ];
    for (const [text, message] of cases) {
      assert.throws(() => pickArchive(text, INDEX_URL, { minor: "1.34" }, "linux", "amd64"), message);
    }
  });

  test("versions and platforms in Go's names", () => {
    assert.deepEqual(wantedVersion({}), { minor: "1.34" });
    assert.deepEqual(wantedVersion({ KUBIPAM_KUBERNETES_VERSION: "1.33.2" }), {
      exact: "v1.33.2",
      minor: "1.33",
    });
    assert.deepEqual(goPlatform("linux", "x64"), { os: "linux", arch: "amd64" });
    assert.deepEqual(goPlatform("darwin", "arm64"), { os: "darwin", arch: "arm64" });
    assert.deepEqual(goPlatform("linux", "ppc64"), { os: "linux", arch: "ppc64le" });
  });
});
