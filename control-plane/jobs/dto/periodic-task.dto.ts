import { ApiProperty } from '@nestjs/swagger';
import { ApiDateTime } from '../../common/api-docs';

/** OpenAPI shapes of GET /v1/periodic-tasks (periodic-tasks.controller.ts builds the JSON). */

export class PeriodicTaskRunView {
  @ApiProperty({ nullable: true, type: String, description: 'Worker id that ran it' }) worker!: string | null;
  @ApiDateTime() startedAt!: Date;
  @ApiDateTime({ nullable: true, description: 'null while running' }) finishedAt!: Date | null;
  @ApiProperty({ enum: ['ok', 'failed'], nullable: true }) outcome!: 'ok' | 'failed' | null;
  @ApiProperty({ nullable: true, type: String }) error!: string | null;
  @ApiProperty({ nullable: true, description: "The task's own summary of the run (JSON; shape depends on the task)" }) result!: unknown;
}

export class PeriodicTaskView {
  @ApiProperty({ example: 'reconcile' }) name!: string;
  @ApiProperty() intervalMs!: number;
  @ApiProperty({ description: 'Runs so far' }) runs!: number;
  @ApiDateTime() nextRunAt!: Date;
  @ApiProperty({ type: PeriodicTaskRunView, nullable: true, description: 'null if it never ran' }) lastRun!: PeriodicTaskRunView | null;
}

export class PeriodicTaskListView {
  @ApiProperty({ type: [PeriodicTaskView] }) items!: PeriodicTaskView[];
}
