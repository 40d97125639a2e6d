// The fault suite's harness (test/faults), one import for its three parts: seeded randomness,
// failing requests and partitions, and a private control plane with a restartable kube-apiserver.

export {
  type FaultInjector,
  type FaultKind,
  type FaultOptions,
  type Partition,
  partition,
  randomFaults,
} from "./request-faults.ts";
export { RestartableControlPlane } from "./restartable-control-plane.ts";
export { faultSeed, type Random, randomInt, seededRandom, shuffle } from "./seeded-random.ts";
