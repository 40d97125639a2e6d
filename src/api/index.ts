/**
 * `kubipam/api`: the resource types of ipam.mandelsoft.org/v1alpha1, their constants (group, version,
 * finalizer, condition types and reasons, resource descriptors) and the CRD manifests as data, made by
 * the same code that renders deploy/ and installs them in the tests; and the subset of Cluster API's
 * IPAM types kubipam serves as a provider (IPAddressClaim, IPAddress, Cluster; finalizers, reasons).
 */
export * from "./cluster-api.ts";
export * from "./conditions.ts";
export { crdManifests, crdYaml, type JsonSchema, MAX_RANGE_ENTRIES } from "./crds.ts";
export { selectorMatches, selectorProblem } from "./label-selector.ts";
export * from "./pool-ref.ts";
export * from "./types.ts";
