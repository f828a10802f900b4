/**
 * The part of the core a web page loads: the fold and the shape of a task's state. Nothing here
 * imports Node.js or a server library, so a bundler can take it as it is (the gateway's console
 * folds the events it streams with these very rules, invariant 1).
 */
export { foldTask, reduceTask } from './reducer.js';
export { initialTaskState, isTerminalStatus, TERMINAL_TASK_STATUSES } from './task-state.js';
export type { NodeState, NodeStatus, TaskState, TaskStatus } from './task-state.js';
