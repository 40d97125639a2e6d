/** The kubipam library: the pure IP address allocation engine (see docs/ipam-library.md). */
export * from "./ipam/index.ts";
