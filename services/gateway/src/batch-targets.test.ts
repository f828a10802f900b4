import { describe, expect, it } from 'vitest';
import { resolveCluster, type ClusterDirectory } from './batch-targets.js';
import { InvalidRequestError } from './errors.js';

const directory = (names: string[], defaultName?: string): ClusterDirectory => ({
  names,
  defaultName,
  inventory: () => undefined,
});

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidRequestError);
    return (error as Error).message;
  }
  throw new Error('expected an InvalidRequestError');
}

describe('resolveCluster', () => {
  it('takes the named cluster, else the default one', () => {
    expect(resolveCluster(directory(['prod', 'lab'], 'prod'), 'lab')).toBe('lab');
    expect(resolveCluster(directory(['prod', 'lab'], 'prod'), undefined)).toBe('prod');
  });

  it('refuses an unknown cluster, and a batch naming none when no cluster is the default, naming the known ones', () => {
    expect(refusal(() => resolveCluster(directory(['prod', 'lab'], 'prod'), 'north'))).toBe(
      'body.cluster: unknown cluster "north"; known clusters: prod, lab',
    );
    expect(refusal(() => resolveCluster(directory(['east', 'west']), undefined))).toBe(
      'body.cluster: name the cluster: none of the configured clusters is the default; known clusters: east, west',
    );
  });
});
