import { Global, MiddlewareConsumer, Module, NestModule, RequestMethod } from '@nestjs/common';
import express from 'express';
import { ApiKeysModule } from '../api-keys/api-keys.module';
import { WebhookEventRepository } from '../billing/webhook-event.repository';
import { CallerVerifier } from '../common/caller-verifier';
import { PeriodicTaskRepository } from '../jobs/periodic-task.repository';
import { TenantStorageRepository } from '../tenants/tenant-storage.repository';
import { TenantsModule } from '../tenants/tenants.module';
import { ConsoleController } from './console.controller';
import { ConsoleSessionRepository } from './console-session.repository';
import { ConsoleSessionService } from './console-session.service';
import { OidcController } from './oidc.controller';
import { OidcService } from './oidc.service';

/**
 * The web console and its sessions (issue #18 items 2 and 4). Global: AdminAuthGuard, used by every
 * admin controller, accepts a console session (ConsoleSessionService) besides a bearer token
 * (CallerVerifier, which the console's sign-in uses too).
 */
@Global()
@Module({
  imports: [TenantsModule, ApiKeysModule],
  controllers: [ConsoleController, OidcController],
  // The read-only repositories of pages (webhook events, periodic tasks, storage) are the owners' classes,
  // provided here too because their modules do not export them; the console only calls their reads.
  providers: [ConsoleSessionRepository, ConsoleSessionService, CallerVerifier, OidcService, WebhookEventRepository, PeriodicTaskRepository, TenantStorageRepository],
  exports: [ConsoleSessionService, CallerVerifier],
})
export class ConsoleModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    // The sign-in and sign-out forms post urlencoded bodies; the app itself parses only JSON.
    consumer.apply(express.urlencoded({ extended: false, limit: '8kb' })).forRoutes({ path: 'console/login', method: RequestMethod.POST }, { path: 'console/logout', method: RequestMethod.POST });
  }
}
