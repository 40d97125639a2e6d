// A watchdog that makes the local control plane die with its parent.
//
// Node cannot ask Linux for PR_SET_PDEATHSIG, and a SIGKILLed process runs no exit handlers, so the
// cleanup lives in a separate tiny process: a POSIX shell loop whose stdin is a pipe from this
// process. The parent tells it, one line each, the pids it must stop ("pid <n>"). The kernel closes
// the pipe whenever the parent goes away — normal exit, crash, SIGKILL — so the loop sees end of file
// and then: SIGKILL to every registered pid, a bounded wait until they are gone, and `rm -rf` of the
// control plane's temporary folder. A parent that cleaned up by itself sends "release" first, and the
// janitor exits without touching anything.
//
// The janitor and the children run in their own process groups (spawned detached), so a Ctrl-C in a
// terminal reaches only the parent, which then stops everything in order.

import { type ChildProcess, spawn } from "node:child_process";
import { Socket } from "node:net";

const SCRIPT = `
trap '' INT HUP
dir=$1
rounds=$2
pids=""
# gone PID: no such process, or a zombie (its new parent may be slow to reap it). The state comes
# from /proc on Linux and from ps where there is no /proc (macOS).
gone() {
  kill -0 "$1" 2>/dev/null || return 0
  if [ -d /proc/self ]; then
    [ -r "/proc/$1/stat" ] || return 1
    read -r _ _ state _ < "/proc/$1/stat" || return 0
  else
    state=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
  fi
  case "$state" in *Z*) return 0 ;; esac
  return 1
}
while IFS= read -r line; do
  case "$line" in
    "pid "*) pids="$pids \${line#pid }" ;;
    release) exit 0 ;;
  esac
done
# A throwaway cluster has nothing worth a graceful shutdown: SIGKILL, wait until gone, remove.
for p in $pids; do kill -KILL "$p" 2>/dev/null; done
i=0
while [ "$i" -lt "$rounds" ]; do
  alive=""
  for p in $pids; do gone "$p" || alive=1; done
  [ -z "$alive" ] && break
  sleep 0.1
  i=$((i + 1))
done
[ -n "$dir" ] && rm -rf "$dir"
exit 0
`;

export class Janitor {
  readonly #process: ChildProcess;
  #released = false;

  /** Starts a janitor that removes `dir` (recursively) when this process goes away. */
  constructor(dir: string, waitSeconds = 10) {
    this.#process = spawn("/bin/sh", ["-c", SCRIPT, "kubipam-janitor", dir, String(waitSeconds * 10)], {
      stdio: ["pipe", "ignore", "ignore"],
      detached: true,
    });
    // Never keep the event loop alive for the janitor: it must outlive us, not the other way round.
    this.#process.unref();
    const stdin = this.#process.stdin;
    if (stdin) {
      stdin.on("error", () => {});
      if (stdin instanceof Socket) stdin.unref();
    }
  }

  get pid(): number | undefined {
    return this.#process.pid;
  }

  /** Registers a process that must be stopped if this process dies. */
  watch(pid: number): void {
    this.#write(`pid ${pid}\n`);
  }

  /** Tells the janitor that everything was cleaned up; it exits without acting. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#write("release\n");
    this.#process.stdin?.end();
  }

  #write(line: string): void {
    const stdin = this.#process.stdin;
    if (stdin && !stdin.destroyed && stdin.writable) stdin.write(line);
  }
}
