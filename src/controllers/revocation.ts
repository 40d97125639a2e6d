// The message of a revocation: counted, so that every revocation is a real change of the holder's
// status. A write that changes nothing leaves the resourceVersion as it was, and a stale publication
// conditional on that version could still land; the count makes the argument independent of what
// else the message says (docs/internals.md, "Never twice").

const COUNT = /revocation (\d+)\)$/;

/**
 * `text` with `details` and the next revocation count after the one `previous` carries:
 * `<text> (<detail>; …; revocation <n>)`.
 */
export function revocationMessage(
  previous: string | undefined,
  text: string,
  details: string[] = [],
): string {
  const count = Number(COUNT.exec(previous ?? "")?.[1] ?? 0) + 1;
  return `${text} (${[...details, `revocation ${count}`].join("; ")})`;
}
