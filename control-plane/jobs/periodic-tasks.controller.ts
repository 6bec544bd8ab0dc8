import { Controller, Get, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { AdminAuthGuard } from '../common/admin-auth.guard';
import { ApiErrors } from '../common/api-docs';
import { Permission } from '../common/permissions';
import { PeriodicTaskListView } from './dto/periodic-task.dto';
import { PeriodicTaskRepository } from './periodic-task.repository';

/** Fleet-wide periodic work: when each task last ran, where, and how it ended. */
@ApiTags('operations')
@ApiBearerAuth()
@ApiErrors()
@UseGuards(AdminAuthGuard)
@Controller('v1/periodic-tasks')
export class PeriodicTasksController {
  constructor(private readonly tasks: PeriodicTaskRepository) {}

  @Get()
  @ApiOperation({ summary: 'Periodic tasks (lifecycle sweep, reconciler, storage sweep): interval, last run, its outcome and result, next run' })
  @ApiOkResponse({ type: PeriodicTaskListView })
  @Permission('operations:read')
  async list(): Promise<PeriodicTaskListView> {
    const items = await this.tasks.list();
    return {
      items: items.map((t) => ({
        name: t.name, intervalMs: t.intervalMs, runs: Number(t.runCount), nextRunAt: t.nextRunAt,
        lastRun: t.lastStartedAt && { worker: t.lastWorker, startedAt: t.lastStartedAt, finishedAt: t.lastFinishedAt, outcome: t.lastOutcome, error: t.lastError, result: t.lastResult },
      })),
    };
  }
}
