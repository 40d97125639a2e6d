// Everything a benchmark run starts registers how to stop it here; `cleanup()` stops it all, newest
// first, once (at the end, on SIGINT/SIGTERM, or when the watchdog fires).

type Task = () => void | Promise<void>;

const tasks: Task[] = [];
let cleaning: Promise<void> | undefined;

/** Registers `task` for the cleanup; the returned function unregisters it (the thing stopped itself). */
export function atCleanup(task: Task): () => void {
  tasks.push(task);
  return () => {
    const i = tasks.indexOf(task);
    if (i >= 0) tasks.splice(i, 1);
  };
}

/** True once the cleanup began (processes ending now are expected to end). */
export function cleaningUp(): boolean {
  return cleaning !== undefined;
}

/** Runs every registered task, newest first, each once; safe to call more than once. */
export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const task of tasks.splice(0).reverse()) {
      try {
        await task();
      } catch {
        // keep stopping the rest
      }
    }
  })();
  return cleaning;
}
