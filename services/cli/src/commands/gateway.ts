import type { Command } from 'commander';
import { createLogger, loadConfig, logConfigWarnings } from '@nodebatch/config';
import { startGateway } from '@nodebatch/gateway';
import type { GatewayHandle } from '@nodebatch/gateway';
import { DatabaseUnavailableError } from '@nodebatch/runtime';

/**
 * `nodebatch gateway`: one gateway replica (HTTP API, SSE/WebSocket progress,
 * the page), configured from the environment and CONFIG_FILE; PORT picks the port.
 */
export function registerGatewayCommand(program: Command): void {
  program
    .command('gateway')
    .description('serve the HTTP API, live progress streams (SSE, WebSocket), the page, /readyz and /metrics')
    .action(async () => {
      const { config, warnings } = loadConfig();
      const logger = createLogger({ level: config.log.level, name: 'gateway' });
      logConfigWarnings(logger, warnings);
      let gateway: GatewayHandle;
      try {
        gateway = await startGateway({ config, logger });
      } catch (err) {
        // createRuntime already logged an unreachable database with its checklist.
        if (!(err instanceof DatabaseUnavailableError))
          logger.fatal({ err }, `the gateway could not start: ${(err as Error).message}`);
        process.exit(1);
      }
      // The parent (tests, the demo, an orchestrator) reads this line to learn the port when PORT=0.
      process.stdout.write(`${JSON.stringify({ gatewayUrl: gateway.url, port: gateway.port })}\n`);
      const stop = (signal: NodeJS.Signals) => {
        logger.info({ signal }, 'stopping the gateway');
        gateway.close().then(
          () => process.exit(0),
          (err: unknown) => {
            logger.error({ err }, 'the gateway did not close cleanly');
            process.exit(1);
          },
        );
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
}
