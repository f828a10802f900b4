export * from './node-operator.js';
export * from './errors.js';
export * from './validation.js';
export * from './batch-params.js';
export * from './simulated-cluster.js';
export * from './kubernetes-node-operator.js';
export * from './kubernetes-api-calls.js';
export * from './load-kube-config.js';
export * from './create-node-operator.js';
export {
  mergeTaints,
  removeTaintRefs,
  copyableTaints,
  isClusterManagedTaint,
  CLUSTER_MANAGED_TAINT_PREFIXES,
} from './taints.js';
export * from './label-selector.js';
export * from './drain-filters.js';
export { validateDrainOptions } from './kubernetes-drain.js';
export * from './cordon-reason.js';
export { systemClock, type Clock } from './clock.js';
export * from './node-inventory.js';
