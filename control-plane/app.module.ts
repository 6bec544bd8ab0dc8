import { DynamicModule, Module } from '@nestjs/common';
import { CoreModule, ControlPlaneDeps } from './core.module';
import { HealthController } from './health/health.controller';
import { MetricsController } from './metrics/metrics.controller';

@Module({})
export class AppModule {
  static forRoot(deps: ControlPlaneDeps, features: DynamicModule['imports'] = []): DynamicModule {
    return {
      module: AppModule,
      imports: [CoreModule.forRoot(deps), ...(features ?? [])],
      controllers: [HealthController, MetricsController],
    };
  }
}
