import { Controller, Get, Inject, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { DataSource } from 'typeorm';
import type { KvStore } from '../../common/kv-store';
import { DATA_SOURCE, KV_STORE } from '../common/tokens';
import { checkReadiness, sharedCheck } from '../../common/http/readiness';

@ApiExcludeController()
@Controller('health')
export class HealthController {
  /** Public route: at most one database and cache check per second, however many probes arrive. */
  private readonly check = sharedCheck(() =>
    checkReadiness({
      database: async () => void (await this.ds.query('SELECT 1')),
      cache: async () => {
        if (!(await this.kv.ping())) throw new Error('cache did not answer');
      },
    }),
  );

  constructor(@Inject(DATA_SOURCE) private readonly ds: DataSource, @Inject(KV_STORE) private readonly kv: KvStore) {}

  @Get('live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('ready')
  async ready(@Res() res: Response): Promise<void> {
    const result = await this.check();
    res.status(result.ok ? 200 : 503).json(result.body);
  }
}
