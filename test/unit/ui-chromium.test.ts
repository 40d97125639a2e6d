// Finding Chromium for the UI tests: a missing browser is an error that says how to install it.

import assert from "node:assert/strict";
import { it } from "node:test";
import { CHROMIUM_MISSING, chromiumExecutable } from "../../src/testing/chromium.ts";

it("names the install step when the given Chromium does not exist", () => {
  assert.throws(
    () => chromiumExecutable({ KUBIPAM_CHROMIUM: "/nonexistent/chromium" }),
    (error: Error) =>
      error.message.startsWith("KUBIPAM_CHROMIUM=/nonexistent/chromium does not exist.") &&
      error.message.includes("scripts/install-chromium.sh") &&
      error.message.includes("apt-get install -y chromium"),
  );
  assert.match(CHROMIUM_MISSING, /^Chromium not found: /);
});
