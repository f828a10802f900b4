import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisCluster, type RedisCluster } from './redis-cluster.js';

describe('startRedisCluster', () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await startRedisCluster();
  }, 120_000);
  afterAll(async () => {
    await cluster?.destroy();
  });

  it('starts three masters that together serve every slot', async () => {
    expect(cluster.masters).toHaveLength(3);
    expect(cluster.nodes).toBe(cluster.masters.map((master) => `127.0.0.1:${master.port}`).join(','));
    const node = new Redis(cluster.masters[0]!.url);
    try {
      const info = String(await node.call('CLUSTER', 'INFO'));
      expect(info).toContain('cluster_state:ok');
      expect(info).toContain('cluster_slots_assigned:16384');
      expect(info).toContain('cluster_size:3');
    } finally {
      node.disconnect();
    }
  });

  it('a master stopped and started again on its port and dir keeps its keys and rejoins', async () => {
    const client = new Cluster(cluster.masters.map((master) => ({ host: '127.0.0.1', port: master.port })));
    try {
      await client.set('restart-key', 'kept');
      const slot = Number(await client.call('CLUSTER', 'KEYSLOT', 'restart-key'));
      const master = await cluster.masterOf(slot);
      await master.stop();
      expect(master.running).toBe(false);
      await master.start();
      await cluster.waitUntilOk();
      expect(await cluster.masterOf(slot)).toBe(master);
      const direct = new Redis(master.url);
      try {
        expect(await direct.get('restart-key')).toBe('kept');
      } finally {
        direct.disconnect();
      }
    } finally {
      client.disconnect();
    }
  }, 120_000);
});
