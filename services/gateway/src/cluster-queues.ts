import type { NodebatchConfig } from '@nodebatch/config';
import {
  createBatchQueue,
  queueBackendKind,
  type BatchJobData,
  type BatchQueue,
  type QueueBackendKind,
} from '@nodebatch/runtime';
import type { Logger } from 'pino';

/** The producer side of every cluster's batch queue: a batch goes to the queue of its cluster. */
interface ClusterQueues {
  readonly backend: QueueBackendKind;
  /** Enqueues the task on its cluster's queue (see batchQueueName); errors as BatchQueue.enqueue. */
  enqueue(data: BatchJobData, cluster: string): Promise<void>;
  close(): Promise<void>;
}

/** Opens a cluster's queue on its first batch: a gateway holds connections only for clusters in use. */
export function createClusterQueues(options: { config: NodebatchConfig; logger: Logger }): ClusterQueues {
  const queues = new Map<string, BatchQueue>();
  const queueOf = (cluster: string): BatchQueue => {
    let queue = queues.get(cluster);
    if (!queue) {
      queue = createBatchQueue({ ...options, cluster });
      queues.set(cluster, queue);
    }
    return queue;
  };
  return {
    backend: queueBackendKind(options.config),
    enqueue: (data, cluster) => queueOf(cluster).enqueue(data),
    async close() {
      await Promise.allSettled([...queues.values()].map((queue) => queue.close()));
    },
  };
}
