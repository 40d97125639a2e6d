// The generic controller runtime (no IPAM in here): client, informers, work queues, controllers, leader
// election, events, conditions, finalizers, metrics, probes, logging and a manager that wires them.
export * from "./conditions.ts";
export * from "./controller.ts";
export * from "./deferred-informer.ts";
export * from "./events.ts";
export * from "./finalizers.ts";
export * from "./health-server.ts";
export * from "./informer.ts";
export * from "./kube.ts";
export * from "./leader-election.ts";
export * from "./logger.ts";
export * from "./manager.ts";
export * from "./metrics.ts";
export * from "./transforms.ts";
export * from "./util.ts";
export * from "./workqueue.ts";
