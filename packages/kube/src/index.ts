export * from './node-operator.js';
export * from './errors.js';
export * from './validation.js';
export * from './batch-params.js';
export * from './simulated-cluster.js';
export { mergeTaints, removeTaintRefs } from './taints.js';
export { systemClock, backoffDelay, type Clock } from './clock.js';
