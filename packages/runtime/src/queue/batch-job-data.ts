import { z } from 'zod';

/**
 * What a batch job carries: only the task it runs. The task's TaskCreated
 * event in the log is the truth for action, nodes, params and concurrency, so
 * a job can never disagree with what users see, and a retried or handed-back
 * job resumes from the log rather than from a copy.
 *
 * The task id doubles as the BullMQ job id (a second enqueue of the same task
 * is the same job); BullMQ refuses ids that contain `:` or are plain integers.
 */
export const BatchJobDataSchema = z.object({
  taskId: z
    .string()
    .min(1)
    .max(200)
    .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" and "-" only')
    .refine((id) => !/^\d+$/.test(id), 'must not be a plain integer'),
});

export type BatchJobData = z.infer<typeof BatchJobDataSchema>;
