// `kubectl ipam ui` flags: ports and which addresses count as this machine only.

import assert from "node:assert/strict";
import { it } from "node:test";
import { parsePort } from "../../src/cli/ui/command.ts";
import { isLoopback } from "../../src/cli/ui/server.ts";

it("takes a port from 0 to 65535 and explains anything else", () => {
  assert.equal(parsePort(undefined), 0);
  assert.equal(parsePort("8300"), 8300);
  assert.equal(parsePort("65535"), 65535);
  for (const bad of ["65536", "-1", "80a", ""]) {
    assert.throws(() => parsePort(bad), {
      message: `invalid --port "${bad}": use a port number from 0 to 65535 (0: any free port)`,
    });
  }
});

it("serves without a warning only on loopback addresses", () => {
  for (const address of ["127.0.0.1", "127.1.2.3", "::1", "localhost"])
    assert.equal(isLoopback(address), true);
  for (const address of ["0.0.0.0", "::", "192.168.1.5", "10.0.0.1"])
    assert.equal(isLoopback(address), false);
});
