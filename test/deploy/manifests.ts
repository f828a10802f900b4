import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

export const deployDir = join(import.meta.dirname, '..', '..', 'deploy', 'kubernetes');

export interface Manifest {
  file: string;
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

/** Every document of every YAML file in deploy/kubernetes, with the file it came from. */
export function loadManifests(): Manifest[] {
  return readdirSync(deployDir)
    .filter((file) => file.endsWith('.yaml') && file !== 'kustomization.yaml')
    .flatMap((file) =>
      parseAllDocuments(readFileSync(join(deployDir, file), 'utf8')).map((doc) => {
        if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map(String).join('; ')}`);
        return { file, ...(doc.toJS() as Omit<Manifest, 'file'>) } as Manifest;
      }),
    );
}
