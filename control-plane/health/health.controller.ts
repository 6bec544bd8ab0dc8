import { Controller, Get, Inject, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { DataSource } from 'typeorm';
import type { KvStore } from '../../common/kv-store';
import { DATA_SOURCE, KV_STORE } from '../common/tokens';
import { checkReadiness } from '../../common/http/readiness';

@ApiExcludeController()
@Controller('health')
export class HealthController {
  constructor(@Inject(DATA_SOURCE) private readonly ds: DataSource, @Inject(KV_STORE) private readonly kv: KvStore) {}

  @Get('live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('ready')
  async ready(@Res() res: Response): Promise<void> {
    const result = await checkReadiness({
      database: async () => void (await this.ds.query('SELECT 1')),
      cache: async () => {
        if (!(await this.kv.ping())) throw new Error('cache did not answer');
      },
    });
    res.status(result.ok ? 200 : 503).json(result.body);
  }
}
