import { DynamicModule, Module } from '@nestjs/common';
import { ApiKeysModule } from './api-keys/api-keys.module';
import { BillingModule } from './billing/billing.module';
import { ConsoleModule } from './console/console.module';
import { CoreModule, ControlPlaneDeps } from './core.module';
import { HealthController } from './health/health.controller';
import { MetricsController } from './metrics/metrics.controller';
import { OperatorsModule } from './operators';
import { TenantsModule } from './tenants/tenants.module';

/** The control plane's Nest modules: the adapters it is handed (CoreModule) and every feature. */
@Module({})
export class AppModule {
  static forRoot(deps: ControlPlaneDeps): DynamicModule {
    return {
      module: AppModule,
      imports: [CoreModule.forRoot(deps), OperatorsModule, TenantsModule, ApiKeysModule, BillingModule, ConsoleModule],
      controllers: [HealthController, MetricsController],
    };
  }
}
