import { Global, Module } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { ActorInterceptor } from './actor.interceptor';
import { OperatorRepository } from './operator.repository';
import { AuditController, OperatorsController } from './operators.controller';
import { OperatorsService } from './operators.service';

/**
 * Operators, roles and personal tokens (issue #18). Global: AdminAuthGuard, used by every admin
 * controller in every module, authenticates tokens through OperatorsService.
 */
@Global()
@Module({
  controllers: [OperatorsController, AuditController],
  providers: [OperatorRepository, OperatorsService, { provide: APP_INTERCEPTOR, useClass: ActorInterceptor }],
  exports: [OperatorsService],
})
export class OperatorsModule {}
