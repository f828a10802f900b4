import { describe, expect, it } from 'vitest';
import { resolveCluster, type ClusterDirectory } from './batch-targets.js';
import { InvalidRequestError } from './errors.js';

const directory = (names: string[], defaultName?: string): ClusterDirectory => ({
  names,
  defaultName,
  modeOf: () => 'kubernetes',
  inventory: () => undefined,
});

describe('resolveCluster', () => {
  it('takes the named cluster, else the default one', () => {
    expect(resolveCluster(directory(['prod', 'lab'], 'prod'), 'lab')).toBe('lab');
    expect(resolveCluster(directory(['prod', 'lab'], 'prod'), undefined)).toBe('prod');
  });

  it('refuses an unknown cluster, and a batch naming none when no cluster is the default, naming the known ones', () => {
    const unknown = () => resolveCluster(directory(['prod', 'lab'], 'prod'), 'north');
    expect(unknown).toThrow(InvalidRequestError);
    expect(unknown).toThrow('body.cluster: unknown cluster "north"; known clusters: prod, lab');
    const unnamed = () => resolveCluster(directory(['east', 'west']), undefined);
    expect(unnamed).toThrow(InvalidRequestError);
    expect(unnamed).toThrow(
      'body.cluster: name the cluster: none of the configured clusters is the default; known clusters: east, west',
    );
  });
});
