import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time of one call frame in a profile, in µs. */
interface FrameTime {
  functionName: string;
  url: string;
  lineNumber: number;
  us: number;
}

/** Self time per call frame (idle included, as functionName "(idle)"). */
export function selfTimes(profile: CpuProfile): FrameTime[] {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, index) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0));
  });
  return [...selfUs].map(([id, us]) => ({ ...byId.get(id)!.callFrame, us }));
}

/**
 * Self time, in seconds, of the frames whose script URL matches `match` in
 * every profile in `dir`; undefined when there is no profile. A time, not a
 * share of the process's busy time: start-up (module loading) dominates a
 * short process's profile and would dilute a share.
 */
export function selfSeconds(dir: string, match: (url: string) => boolean): number | undefined {
  if (!existsSync(dir)) return undefined;
  const files = readdirSync(dir).filter((name) => name.endsWith('.cpuprofile'));
  if (files.length === 0) return undefined;
  let matched = 0;
  for (const file of files) {
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
    for (const frame of selfTimes(profile)) if (match(frame.url)) matched += frame.us;
  }
  return matched / 1e6;
}
